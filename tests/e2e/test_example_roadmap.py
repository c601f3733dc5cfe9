"""A new team's roadmap: the shipped example (what `castmatch init` writes) validates, builds its DAGs
beside nothing of CastMatch, and its week 1 runs offline end to end: units delivered, the veto gate
judged by the agent marked enforcer, the chain triggered by a unit and a gate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from castmatch.config import load_roadmap
from tests.helpers import castmatch_json, dags_test

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "roadmaps" / "example"


@pytest.mark.e2e
class TestExampleRoadmap:
    def test_week_one_runs_offline_end_to_end(self, pg_url, airflow_db, redis_prefix, monkeypatch):
        from airflow.dag_processing.dagbag import DagBag

        config = load_roadmap(EXAMPLE)
        assert config.issues == []
        monkeypatch.setenv("CASTMATCH_ROADMAP_DIR", str(EXAMPLE))
        bag = DagBag(str(ROOT / "dags"))
        assert bag.import_errors == {}
        assert sorted(bag.dags) == sorted([f"example_week_{w:02d}" for w in range(1, 5)] + [
            "example_roadmap", "example_daily_standup", "example_incidents", "example_incident_work", "example_incident_review",
            "example_chain_foundations_to_team"])
        week1 = bag.dags["example_week_01"]
        # defaults a team did not write: priority (the middle one), the reviewer's veto via @enforcers
        unit = config.work_units["w01_backend_developer"]
        assert config.priority_weight(unit) == 20
        # the priority first, then the critical path ahead of it (the units after it)
        assert week1.get_task(unit.id).priority_weight == 20 * 100 + config.units_after[unit.id]
        assert week1.get_task("w01_backend_developer").upstream_task_ids == {"w01_lead_developer", "release_foundation_gate"}

        env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(EXAMPLE)}
        run = dags_test("example_week_01", "2026-12-07T00:00:00+00:00", env, conf={"clock": "compressed"})
        assert "state=success" in run.stdout, run.stdout[-3000:]

        def report(*args):
            return castmatch_json(*args, "--roadmap", str(EXAMPLE), database_url=pg_url)

        status = report("status")
        assert status["weeks"][0] == {"week": 1, "done": 4, "total": 4}
        assert {a["id"] for a in status["agents"]} == {"lead-developer", "backend-developer", "frontend-developer", "reviewer"}
        gate = report("gates")["gates"][0]
        assert gate["status"] == "PASSED" and gate["enforcers"] == ["reviewer"]
        review = next(c for c in gate["criteria"] if c["kind"] == "review")
        assert review["ok"] and "reviewer" in review["reason"]
        usage = report("usage")
        assert {a["id"] for a in usage["agents"]} >= {"lead-developer", "backend-developer"}
        chain = report("chains")[0]
        assert chain["status"] == "DONE"
        assert chain["trigger_gates"] == [{"id": "foundation_gate", "passed": True}]
