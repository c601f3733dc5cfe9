"""CastMatch roadmap on Airflow, one DAG per week (castmatch_week_01 ... castmatch_week_12): each week's agent work units, gates and go/no-go decisions.

Built from include/roadmaps/castmatch/*.yaml by castmatch.factory (CASTMATCH_ROADMAP_DIR selects
another roadmap). Parsing reads only that YAML. One file per family of DAGs, so an error in one
family's files never hides another family.
"""

from castmatch.factory import build_dags

globals().update(build_dags(family="weeks"))
