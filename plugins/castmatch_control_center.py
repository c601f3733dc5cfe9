"""The Orchestrator Control Center inside the Airflow UI: "Control Center" in the navigation and
a "CastMatch" tab on DAG runs, both served by the ``castmatch`` package's FastAPI app."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from castmatch.web import LazyApp


class CastMatchControlCenter(AirflowPlugin):
    name = "castmatch_control_center"
    # built on the first request: task and DAG-processor processes load plugins too
    fastapi_apps = [{"app": LazyApp(), "url_prefix": "/castmatch", "name": "CastMatch Control Center"}]
    external_views = [
        {"name": "Control Center", "href": "castmatch/control-center", "destination": "nav",
         "url_route": "castmatch-control-center", "category": "browse"},
        {"name": "CastMatch", "href": "castmatch/control-center?dag_id={DAG_ID}&run_id={RUN_ID}",
         "destination": "dag_run", "url_route": "castmatch-run"},
    ]
