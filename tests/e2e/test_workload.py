"""Workload balancing at a checkpoint (real store): an overloaded agent's lowest-priority unit moves
to a capable peer with room and runs as that peer; an idle agent gets its preparatory unit; a
blocked agent gets an alternative unit; competing units are ordered by the seed's priorities."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from castmatch.checkpoints import take
from castmatch.config import load_roadmap
from castmatch.store import Store
from tests.helpers import castmatch_json, dags_test

RUN = "castmatch:roadmap:manual__workload"
DONE = {"summary": "delivered", "content": "the content", "status": "done", "blockers": [], "progress": 100}
DEVOPS, BACKEND, TESTING, LAYOUT, VISUAL = ("devops-infrastructure-developer", "backend-api-developer",
                                            "testing-qa-developer", "layout-grid-engineer", "visual-systems-architect")


def _roadmap(copy):
    team = copy / "team.yaml"
    text = team.read_text()
    text = text.replace(f"  - id: {DEVOPS}\n", f"  - id: {DEVOPS}\n    capacity: 1\n")
    text = text.replace(f"  - id: {BACKEND}\n", f"  - id: {BACKEND}\n    capacity: 2\n    can_cover: [{DEVOPS}]\n")
    text = text.replace(f"  - id: {LAYOUT}\n", f"  - id: {LAYOUT}\n    preparatory: [continue_design_system]\n")
    team.write_text(text)
    week = copy / "weeks" / "week_02.yaml"  # the testing lead also owns next week's monitoring set-up
    text = week.read_text()
    start = text.index("  - id: setup_basic_monitoring")
    end = text.index("\n  - id:", start + 1)
    week.write_text(text[:start] + text[start:end].replace(f"agents: [{DEVOPS}]", f"agents: [{TESTING}]") + text[end:])
    return load_roadmap(copy)


def _state(store):
    """Week 1 under way: Redis fixed and the containers restarted (DevOps now has two ready units for
    one slot), the test framework failed, the frontend at work."""
    store.register_run(run_key=RUN, roadmap_id="castmatch", kind="roadmap", dag_id="castmatch_roadmap",
                       run_id="manual__workload", clock="real")
    for unit in ("fix_redis_connection", "restart_configure_containers"):
        store.save_deliverable(dag_id="castmatch_week_01", run_key=RUN, run_id="w1", work_unit_id=unit, agent_id=DEVOPS,
                               week=1, deliverable=DONE, backend="offline", model="m", try_number=1)
    store.unit_started(dag_id="castmatch_week_01", run_key=RUN, run_id="w1", work_unit_id="prepare_chat_ui_for_ai",
                       agent_id="frontend-ui-developer", try_number=1)
    store.unit_failed(dag_id="castmatch_week_01", run_key=RUN, run_id="w1", work_unit_id="setup_test_framework",
                      agent_id=TESTING, try_number=3, error="no test runner image", state="failed")


@pytest.mark.e2e
class TestWorkload:
    def test_overloaded_idle_blocked_and_competing_agents(self, pg_url, airflow_db, roadmap_copy):
        config, store = _roadmap(roadmap_copy), Store(pg_url)
        _state(store)
        midday = next(c for c in config.operations.checkpoints if c.id == "daily_midday")
        now = dt.datetime.now(dt.UTC)
        first, started = take(config, store, RUN, midday, 400, now - dt.timedelta(minutes=61),
                              since=now - dt.timedelta(days=1))
        decisions = {(a["rule"], a["agent"]): a for a in first["actions"] if a["kind"] == "workload"}
        assert decisions[("overloaded", DEVOPS)]["outcome"].endswith("waiting before moving work")  # not an hour yet
        assert first["figures"]["workload"]["agents"][DEVOPS]["load"] == 2
        # two HIGH units for one slot: the longer critical path ahead first
        assert decisions[("conflict", DEVOPS)]["order"] == ["verify_postgresql_stability", "setup_gpu_infrastructure"]
        # blocked: a ready unit of theirs that does not need the failed one (next week's)
        assert decisions[("blocked", TESTING)]["unit"] == "setup_basic_monitoring"
        assert (decisions[("idle", LAYOUT)]["unit"], decisions[("idle", LAYOUT)]["outcome"]) == (
            "continue_design_system", "preparatory unit started")
        assert {t["conf"]["work_unit"] for t in started} == {"setup_basic_monitoring", "continue_design_system"}

        record, triggers = take(config, store, RUN, midday, 401, now, since=now - dt.timedelta(minutes=61))
        moved = next(a for a in record["actions"] if a.get("rule") == "overloaded")
        # the lower-priority of the two (same priority: the shorter critical path ahead) goes to the only
        # agent who may cover DevOps and has room
        assert (moved["agent"], moved["unit"], moved["to"], moved["outcome"]) == (
            DEVOPS, "setup_gpu_infrastructure", BACKEND, "moved")
        assert {t["trigger_dag_id"] for t in triggers} == {"castmatch_incident_work"}

        # the moved unit runs as the backend developer (its prompt, its budget), as the sweep would start it
        trigger = next(t for t in triggers if t["conf"]["work_unit"] == "setup_gpu_infrastructure")
        env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(roadmap_copy), "CASTMATCH_DATABASE_URL": pg_url}
        out = dags_test("castmatch_incident_work", now.replace(microsecond=0).isoformat(), env, conf=trigger["conf"])
        assert out.returncode == 0, out.stdout[-3000:]
        [delivered] = [d for d in store.deliverables(run_key=RUN) if d["work_unit_id"] == "setup_gpu_infrastructure"]
        assert delivered["agent_id"] == BACKEND and delivered["status"] == "done"
        status = castmatch_json("status", "--roadmap", str(roadmap_copy), "--run", RUN, database_url=pg_url)
        rows = {a["id"]: a for a in status["agents"]}
        assert rows[BACKEND]["moved_in"] == ["setup_gpu_infrastructure"]
        assert rows[DEVOPS]["moved_out"] == ["setup_gpu_infrastructure"]
        assert rows[LAYOUT]["moved_in"] == ["continue_design_system"] and rows[VISUAL]["moved_out"] == [
            "continue_design_system"]
