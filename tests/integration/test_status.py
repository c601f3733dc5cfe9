"""The status matrix comes from the store: the seed's snapshot first, then stored work."""

from __future__ import annotations

from castmatch.config import load_roadmap
from castmatch.status import render_matrix, status_matrix
from castmatch.store import Store

SEED_MATRIX = [
    ("devops-infrastructure-developer", "ACTIVE", 70, "Redis fixes"),
    ("backend-api-developer", "ACTIVE", 80, "Claude API"),
    ("frontend-ui-developer", "WAITING", 60, "API integration"),
    ("ai-ml-developer", "BLOCKED", 30, "Infrastructure"),
    ("integration-workflow-developer", "STANDBY", 20, "OAuth prep"),
    ("testing-qa-developer", "STANDBY", 15, "Framework setup"),
    ("design-review-qa", "ACTIVE", 40, "Quality gates"),
    ("task-completion-enforcer", "ACTIVE", 25, "Gate setup"),
    ("visual-systems-architect", "ACTIVE", 50, "Design tokens"),
    ("typography-content-designer", "ACTIVE", 45, "Chat typography"),
    ("layout-grid-engineer", "ACTIVE", 35, "Grid system"),
]
DONE = {"summary": "delivered as specified", "content": "the deliverable content", "status": "done",
        "blockers": [], "progress": 100}


RUN = "castmatch:roadmap:manual__1"


def keys(unit, agent, run_key=RUN):
    return {"dag_id": "castmatch_week_01", "run_key": run_key, "run_id": "r1", "work_unit_id": unit, "agent_id": agent}


class TestStatusMatrix:
    def test_empty_store_shows_the_seed_snapshot(self, pg_url):
        matrix = status_matrix(load_roadmap(), Store(pg_url), None)
        got = [(a["id"], a["status"], a["progress"], a["current_task"]) for a in matrix["agents"]]
        assert got == SEED_MATRIX
        assert all(w["done"] == 0 and w["total"] > 0 for w in matrix["weeks"])
        text = render_matrix(matrix)
        assert "AGENT STATUS MATRIX" in text and "🔴 BLOCKED" in text and "W01 0/" in text

    def test_states_follow_stored_work(self, pg_url):
        config = load_roadmap()
        store = Store(pg_url)
        devops = "devops-infrastructure-developer"
        store.unit_started(**keys("fix_redis_connection", devops), try_number=1)
        assert _agent(config, store, devops)["status"] == "ACTIVE"
        assert _agent(config, store, devops)["current_task"] == "Fix Redis connection issues"

        store.save_deliverable(**keys("fix_redis_connection", devops), week=1, deliverable=DONE,
                               backend="offline", model="m", try_number=1)
        after = _agent(config, store, devops)
        assert after["status"] == "STANDBY" and after["progress"] > 70
        assert after["current_task"] == config.work_units["restart_configure_containers"].title

        backend = "backend-api-developer"
        store.unit_failed(**keys("prepare_anthropic_endpoints", backend), try_number=3, error="boom")
        assert _agent(config, store, backend)["status"] == "BLOCKED"

        frontend = "frontend-ui-developer"
        store.save_deliverable(**keys("prepare_chat_ui_for_ai", frontend), week=1, deliverable=DONE,
                               backend="offline", model="m", try_number=1)
        # next unit connect_chat_ui_to_claude waits on the conversation service
        assert _agent(config, store, frontend)["status"] == "WAITING"

        week1 = status_matrix(config, store, RUN)["weeks"][0]
        assert (week1["week"], week1["done"]) == (1, 2)

    def test_a_new_run_starts_from_the_seed_baselines(self, pg_url):
        config, store = load_roadmap(), Store(pg_url)
        devops = "devops-infrastructure-developer"
        store.save_deliverable(**keys("fix_redis_connection", devops), week=1, deliverable=DONE,
                               backend="offline", model="m", try_number=1)
        assert _agent(config, store, devops)["progress"] > 70
        fresh = status_matrix(config, store, "castmatch:roadmap:manual__2")
        got = [(a["id"], a["status"], a["progress"], a["current_task"]) for a in fresh["agents"]]
        assert got == SEED_MATRIX and fresh["weeks"][0]["done"] == 0


def _agent(config, store, agent_id):
    return next(a for a in status_matrix(config, store, RUN)["agents"] if a["id"] == agent_id)


class TestChains:
    def test_empty_store_shows_the_seed_chain_statuses(self, pg_url):
        from castmatch.chains import chains_report

        report = chains_report(load_roadmap(), Store(pg_url), None)
        assert [c["status"] for c in report] == ["IN PROGRESS", "WAITING", "BLOCKED", "IN PROGRESS", "WAITING", "PENDING"]
        assert [c["group"] for c in report] == ["active"] * 4 + ["pending"] * 2

    def test_status_follows_the_trigger_units(self, pg_url):
        from castmatch.chains import chains_report

        config, store = load_roadmap(), Store(pg_url)
        devops = "devops-infrastructure-developer"
        store.save_deliverable(**keys("fix_redis_connection", devops), week=1, deliverable=DONE,
                               backend="offline", model="m", try_number=1)
        first = next(c for c in chains_report(config, store, RUN) if c["id"] == "infrastructure_to_ai_services")
        assert first["status"] == "IN PROGRESS"
        store.unit_failed(**keys("setup_gpu_infrastructure", devops), try_number=3, error="GPU quota")
        first = next(c for c in chains_report(config, store, RUN) if c["id"] == "infrastructure_to_ai_services")
        assert first["status"] == "BLOCKED"
        store.save_deliverable(**keys("setup_gpu_infrastructure", devops), week=1, deliverable=DONE,
                               backend="offline", model="m", try_number=4)
        first = next(c for c in chains_report(config, store, RUN) if c["id"] == "infrastructure_to_ai_services")
        assert first["status"] == "DONE"


class TestLateUnits:
    def test_a_unit_is_late_after_the_last_day_of_its_span(self, pg_url):
        import datetime as dt
        from pathlib import Path

        example = load_roadmap(Path(__file__).resolve().parents[2] / "include" / "roadmaps" / "example")
        store, run_key = Store(pg_url), "example:roadmap:manual__late"
        now = dt.datetime.now(dt.UTC)
        # compressed clock, 1 s a day: Day 1 began 3.5 days ago, so days 1-2 are over and day 4 runs
        store.register_run(run_key=run_key, roadmap_id="example", kind="roadmap", dag_id="example_roadmap",
                           run_id="manual__late", clock="compressed", origin=now - dt.timedelta(seconds=3.5))
        store.unit_started(dag_id="example_week_01", run_key=run_key, run_id="w1", work_unit_id="w01_lead_developer",
                           agent_id="lead-developer", try_number=1)
        matrix = status_matrix(example, store, run_key)
        assert [(u["id"], u["days"]) for u in matrix["late"]] == [("w01_lead_developer", "1-2")]
        assert "LATE   1 unit(s) past their last day: w01_lead_developer (day 1-2, lead-developer)" in render_matrix(matrix)

        store.save_deliverable(dag_id="example_week_01", run_key=run_key, run_id="w1", work_unit_id="w01_lead_developer",
                               agent_id="lead-developer", week=1, deliverable=DONE, backend="offline", model="m",
                               try_number=1)
        assert status_matrix(example, store, run_key)["late"] == []  # delivered; days 3-5 not over yet
