"""CastMatch roadmap on Airflow, one DAG per dependency chain, run by the assets its trigger units (or gates) publish.

Built from include/roadmaps/castmatch/*.yaml by castmatch.factory (CASTMATCH_ROADMAP_DIR selects
another roadmap). Parsing reads only that YAML. One file per family of DAGs, so an error in one
family's files never hides another family.
"""

from castmatch.factory import build_dags

globals().update(build_dags(family="chains"))
