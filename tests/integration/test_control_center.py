"""The Control Center's routes inside Airflow's own API app (the plugin mounted as the API server
mounts it), on the real PostgreSQL store: no route answers an anonymous request, a logged-in user
gets the page and the JSON, the matrix is `castmatch status --json`'s, and a vetoed gate's held-back
units are named with the gate and the reason."""

from __future__ import annotations

import pytest

from castmatch.config import load_roadmap
from castmatch.store import Store
from tests.helpers import castmatch_json, week_one_with_a_veto

ROUTES = ["/castmatch/control-center", "/castmatch/api/snapshot", "/castmatch/static/control_center.js",
          "/castmatch/static/control_center.css"]
RUN = "castmatch:roadmap:manual__control_center"


@pytest.fixture
def client(airflow_db, pg_url, monkeypatch):
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    purge_cached_app()
    with TestClient(create_app()) as client:
        yield client
    purge_cached_app()


def token() -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="priya", role="viewer"))


class TestControlCenterApi:
    def test_no_route_answers_without_a_login(self, client):
        for route in ROUTES:
            answer = client.get(route)
            assert answer.status_code in (401, 403), (route, answer.status_code)
            bad = client.get(route, headers={"Authorization": "Bearer not-a-token"})
            assert bad.status_code in (401, 403), (route, bad.status_code)

    def test_a_logged_in_user_gets_the_page_and_the_snapshot_of_the_run(self, client, pg_url, monkeypatch):
        store = Store(pg_url)
        week_one_with_a_veto(store, monkeypatch, RUN)
        auth = {"Authorization": f"Bearer {token()}"}
        for route in ROUTES:
            assert client.get(route, headers=auth).status_code == 200, route
        client.cookies.set("_token", token())  # the UI's session cookie works as well
        page = client.get("/castmatch/control-center")
        assert page.status_code == 200 and "Agent status matrix" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
        client.cookies.clear()

        snap = client.get("/castmatch/api/snapshot", headers=auth).json()
        status = castmatch_json("status", "--run", RUN, database_url=pg_url)
        assert snap["run"]["run_key"] == RUN
        assert {k: v for k, v in snap["matrix"].items() if k != "units"} == status
        assert len(snap["matrix"]["agents"]) == 11
        blocked = {b["unit"]: b for b in snap["blocked"]}
        gate = next(g for g in load_roadmap().all_gates if g.id == "infrastructure_gate")
        assert set(blocked) == set(gate.blocks)
        first = blocked[gate.blocks[0]]
        assert first["gate"] == "infrastructure_gate" and first["gate_status"] == "VETOED"
        assert "Infrastructure Gate" in first["gate_name"] and "Connection refused" in first["reason"]
        [incident] = [i for i in snap["incidents"] if i["kind"] == "gate_vetoed"]
        assert incident["next_level_in_seconds"] > 0  # level 2 after 30 min
        assert snap["requests"]["available"] is True

        # the "CastMatch" tab of a DAG run: the week's Airflow run resolves to its roadmap run
        tab = client.get("/castmatch/api/snapshot?dag_id=castmatch_week_01&run_id=w1", headers=auth).json()
        assert tab["run"]["run_key"] == RUN
        other = client.get("/castmatch/api/snapshot?dag_id=some_dag&run_id=r1", headers=auth)
        assert other.status_code == 404 and "not a run of the roadmap" in other.json()["detail"]
        missing = client.get("/castmatch/api/snapshot?run_key=nope", headers=auth)
        assert missing.status_code == 404 and "no run 'nope'" in missing.json()["detail"]

    def test_before_any_run_the_panels_say_what_will_appear(self, client):
        snap = client.get("/castmatch/api/snapshot", headers={"Authorization": f"Bearer {token()}"}).json()
        assert snap["run"] is None and snap["roadmap"]["driver_dag"] == "castmatch_roadmap"
        assert [a["status"] for a in snap["matrix"]["agents"]]  # the seed's baselines
        assert snap["blocked"] == [] and snap["incidents"] == []

    def test_the_plugin_is_listed_by_airflow_with_its_views(self, airflow_db):
        import os
        import subprocess

        from tests.airflow_stack import BIN

        out = subprocess.run([str(BIN / "airflow"), "plugins", "-o", "json"], capture_output=True, text=True,
                             env=os.environ.copy(), check=True).stdout
        import json

        listed = json.loads(out[out.index("[{"):].splitlines()[0])  # after any log line
        [plugin] = [p for p in listed if p["name"] == "castmatch_control_center"]
        views = str(plugin.get("external_views"))
        assert "Control Center" in views and "castmatch/control-center" in views and "dag_run" in views
        assert "/castmatch" in str(plugin.get("fastapi_apps"))

    def test_loading_the_plugin_imports_nothing_of_the_web_stack(self):
        """Every task process loads plugins (its template context): the app is built on the first
        request in the API server, not at import."""
        import os
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        probe = ("import sys; sys.path.insert(0, 'plugins'); import castmatch_control_center; "
                 "print(sorted(m for m in ('fastapi', 'airflow.api_fastapi.core_api.security') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True,
                             env=os.environ.copy(), check=True).stdout.strip().splitlines()[-1]
        assert out == "[]"
