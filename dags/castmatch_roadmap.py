"""CastMatch roadmap on Airflow: one DAG per week (castmatch_week_01 ... castmatch_week_12) and the
castmatch_roadmap driver that runs them in order on the roadmap clock.

Built from include/roadmaps/castmatch/*.yaml by castmatch.factory (CASTMATCH_ROADMAP_DIR selects
another roadmap). Parsing reads only that YAML.
"""

from castmatch.factory import build_dags

globals().update(build_dags())
