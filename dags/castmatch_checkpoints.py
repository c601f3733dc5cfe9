"""CastMatch roadmap on Airflow: the checkpoints of the operating rhythm (morning, midday, evening,
Friday week review, Monday week start, stakeholder updates), one DAG each on its cron.

Built from include/roadmaps/castmatch/operations.yaml by castmatch.factory (CASTMATCH_ROADMAP_DIR
selects another roadmap). Parsing reads only that YAML. One file per family of DAGs, so an error in
one family's files never hides another family.
"""

from castmatch.factory import build_dags

globals().update(build_dags(family="checkpoints"))
