"""Incidents in the real store: one per problem whatever retries and sweeps do, the ladder timed on
the run's clock, resolution when the check that opened it passes, and `castmatch incidents`."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from castmatch.config import load_roadmap
from castmatch.incidents import open_incident, sweep
from castmatch.store import Store
from tests.helpers import castmatch_json

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "roadmaps" / "example"
RUN = "example:roadmap:manual__incident"
DONE = {"summary": "delivered", "content": "the content", "status": "done", "blockers": [], "progress": 100}


def _run(store, clock="real", origin=None):
    store.register_run(run_key=RUN, roadmap_id="example", kind="roadmap", dag_id="example_roadmap",
                       run_id="manual__incident", clock=clock, origin=origin)


class TestIncidents:
    def test_the_same_problem_opens_one_incident_and_reopens_when_it_returns(self, pg_url):
        config, store = load_roadmap(EXAMPLE), Store(pg_url)
        _run(store)
        first = open_incident(config, store, run_key=RUN, kind="unit_failed", subject="w01_lead_developer",
                              agents=["lead-developer"], detail="failed after 3 tries")
        # a retry, a rerun and a second scheduler see the same problem
        results = []
        threads = [threading.Thread(target=lambda: results.append(open_incident(
            config, store, run_key=RUN, kind="unit_failed", subject="w01_lead_developer", agents=["lead-developer"],
            detail="again"))) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert {r["id"] for r in results} == {first["id"]}
        [row] = store.incidents(roadmap_id="example", run_key=RUN, with_actions=True)
        assert [a["action"] for a in row["actions"]] == ["opened"] and row["detail"].startswith("failed after 3")

        store.save_deliverable(dag_id="example_week_01", run_key=RUN, run_id="w1", work_unit_id="w01_lead_developer",
                               agent_id="lead-developer", week=1, deliverable=DONE, backend="offline", model="m",
                               try_number=4)
        assert sweep(config, store)["resolved"] == 1
        [row] = store.incidents(roadmap_id="example", run_key=RUN)
        assert row["state"] == "resolved" and "w01_lead_developer delivered" in row["resolution"]
        again = open_incident(config, store, run_key=RUN, kind="unit_failed", subject="w01_lead_developer",
                              agents=["lead-developer"], detail="failed on a rerun")
        assert again["id"] == first["id"] and again["state"] == "open" and again["level"] == 1

    def test_the_ladder_follows_the_run_clock_one_level_per_sweep_exactly_once(self, pg_url):
        config, store = load_roadmap(EXAMPLE), Store(pg_url)
        _run(store)
        incident = open_incident(config, store, run_key=RUN, kind="gate_vetoed", subject="foundation_gate",
                                 agents=["reviewer"], detail="vetoed")
        opened = incident["opened_at"]
        assert sweep(config, store, now=opened + dt.timedelta(minutes=29))["escalated"] == 0  # L2 after 30 min
        # two sweeps at once (two schedulers): one escalation
        counts = []
        threads = [threading.Thread(target=lambda: counts.append(
            sweep(config, store, now=opened + dt.timedelta(minutes=31))["escalated"])) for _ in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sum(counts) == 1
        assert store.incidents(roadmap_id="example", run_key=RUN)[0]["level"] == 2
        assert sweep(config, store, now=opened + dt.timedelta(minutes=119))["escalated"] == 0  # L3 after 2 h
        top = sweep(config, store, now=opened + dt.timedelta(minutes=121))
        assert top["escalated"] == 1  # people are asked: the review DAG is triggered, once per incident
        assert top["triggers"] == [{"trigger_dag_id": "example_incident_review",
                                    "trigger_run_id": f"incident_{incident['id']}__review",
                                    "conf": {"run_key": RUN, "incident": incident["id"], "clock": "real"}}]
        assert sweep(config, store, now=opened + dt.timedelta(days=3))["escalated"] == 0  # the top of the ladder
        [row] = castmatch_json("incidents", "--roadmap", str(EXAMPLE), "--run", RUN, database_url=pg_url)
        assert (row["kind"], row["subject"], row["state"], row["level"], row["level_name"]) == (
            "gate_vetoed", "foundation_gate", "open", 3, "Human Oversight")
        assert [a["action"] for a in row["actions"]] == ["opened", "escalated_to_level_2", "collaboration",
                                                         "escalated_to_level_3", "people_asked"]
        asked = row["actions"][2]  # the offline backend cannot ask agents: said, not pretended
        assert asked["outcome"] == "skipped" and "NOT ASKED: offline backend" in asked["detail"]
        assert "reviewer" in asked["detail"]

    def test_on_the_compressed_clock_the_ladder_is_compressed_too(self, pg_url):
        config, store = load_roadmap(EXAMPLE), Store(pg_url)
        now = dt.datetime.now(dt.UTC)
        _run(store, clock="compressed", origin=now)
        incident = open_incident(config, store, run_key=RUN, kind="no_go", subject="final_check",
                                 agents=["lead-developer"], detail="NO-GO")
        # 30 min of roadmap time at 1 s a roadmap day is 21 ms; L3 (2 h) comes at 83 ms, one level per sweep
        assert sweep(config, store, now=incident["opened_at"] + dt.timedelta(milliseconds=15))["escalated"] == 0
        assert sweep(config, store, now=incident["opened_at"] + dt.timedelta(milliseconds=25))["escalated"] == 1
        assert sweep(config, store, now=incident["opened_at"] + dt.timedelta(milliseconds=60))["escalated"] == 0
        assert castmatch_json("incidents", "--roadmap", str(EXAMPLE), "--run", RUN, "--open",
                              database_url=pg_url)[0]["level"] == 2


class TestPeopleAnswer:
    def test_no_answer_keeps_the_work_stopped_and_says_so(self, pg_url):
        from castmatch.oversight import apply_answer

        config, store = load_roadmap(EXAMPLE), Store(pg_url)
        _run(store)
        incident = open_incident(config, store, run_key=RUN, kind="unit_blocked", subject="w01_backend_developer",
                                 agents=["backend-developer"], detail="blocked")
        # what the standard provider hands the task when the response window passed unanswered
        timed_out = {"chosen_options": ["Keep stopped"], "params_input": {}, "responded_by_user": None,
                     "timedout": True}
        done, rerun = apply_answer(config, store, incident, timed_out)
        assert rerun is None and done == "nobody answered within the response window: the work stays stopped"
        [row] = store.incidents(roadmap_id="example", run_key=RUN, with_actions=True)
        assert row["state"] == "open" and row["actions"][-1]["action"] == "decision:keep_stopped"

    def test_a_reassignment_by_a_person_is_checked_and_run_again_by_the_next_sweep(self, pg_url):
        from castmatch.oversight import apply_answer

        config, store = load_roadmap(EXAMPLE), Store(pg_url)
        _run(store)
        incident = open_incident(config, store, run_key=RUN, kind="unit_blocked", subject="w01_backend_developer",
                                 agents=["backend-developer"], detail="blocked")
        person = {"name": "asha", "id": "asha"}
        done, rerun = apply_answer(config, store, incident, {"chosen_options": ["Reassign"], "responded_by_user": person,
                                                             "params_input": {"agent": "frontend-developer", "reason": "x"}})
        assert "frontend-developer cannot cover backend-developer" in done and rerun is None  # can_cover is empty
