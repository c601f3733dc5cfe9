"""CastMatch roadmap on Airflow, the castmatch_roadmap driver: runs the week DAGs in order on the roadmap clock.

Built from include/roadmaps/castmatch/*.yaml by castmatch.factory (CASTMATCH_ROADMAP_DIR selects
another roadmap). Parsing reads only that YAML. One file per family of DAGs, so an error in one
family's files never hides another family.
"""

from castmatch.factory import build_dags

globals().update(build_dags(family="roadmap"))
