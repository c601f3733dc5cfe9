"""Answers to veto overrides and NO-GO reviews, as stored (real PostgreSQL), including the answer
Airflow's scheduler gives when nobody answers in time (the request's default, no user)."""

from __future__ import annotations

import datetime as dt

import pytest

from castmatch.config import load_roadmap
from castmatch.gates import gates_report
from castmatch.overrides import NOBODY, record_gate_answer, record_no_go_answer
from castmatch.store import Store

AT = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)
RUN = {"run_key": "castmatch:roadmap:r1", "dag_id": "castmatch_week_01", "run_id": "r1"}


def answered(option: str, reason: str = "", user: str | None = "priya") -> dict:
    """The resume event of a HITL request, as Airflow builds it (``HITLDetail.as_resume_event_payload``)."""
    return {"chosen_options": [option], "params_input": {"reason": reason}, "responded_at": AT,
            "responded_by_user": {"id": user, "name": user} if user else None, "timedout": user is None}


@pytest.fixture(scope="module")
def config():
    return load_roadmap()


@pytest.fixture
def vetoed(pg_url, config):
    store = Store(pg_url)
    gate = next(g for g in config.all_gates if g.id == "infrastructure_gate")
    store.save_gate_result(run_key=RUN["run_key"], gate_id=gate.id, status="VETOED", blocked_units=list(gate.blocks),
                           criteria=[{"id": "containers_running_stable", "text": "All containers running stable",
                                      "kind": "probe", "ok": False, "reason": "redis: connection refused"}],
                           reason="containers_running_stable: redis: connection refused",
                           decided_by="castmatch-orchestrator")
    return store, gate


class TestVetoOverride:
    def test_approve_records_overridden_with_who_when_why_and_the_veto(self, config, vetoed):
        store, gate = vetoed
        record_gate_answer(store, gate, answered("Approve", "fallback live"), approved=True, **RUN)
        row = next(g for g in gates_report(config, store, RUN["run_key"])["gates"] if g["id"] == gate.id)
        assert row["status"] == "OVERRIDDEN" and row["decided_by"] == "priya" and row["blocked_units"] == []
        assert row["reason"] == "veto overridden by priya: fallback live (veto: containers_running_stable: redis: connection refused)"
        assert row["criteria"][0]["reason"] == "redis: connection refused"  # what was judged is kept
        (event,) = store.events("gate_overridden")
        assert event["data"] == {"gate": gate.id, "by": "priya", "at": AT.isoformat(), "reason": "fallback live",
                                 "veto": "containers_running_stable: redis: connection refused"}

    def test_no_answer_in_time_upholds_the_veto_and_names_nobody(self, config, vetoed):
        store, gate = vetoed
        record_gate_answer(store, gate, answered("Reject", user=None), approved=False, **RUN)
        row = next(g for g in gates_report(config, store, RUN["run_key"])["gates"] if g["id"] == gate.id)
        assert row["status"] == "VETOED" and row["decided_by"] == "castmatch-orchestrator"
        (event,) = store.events("gate_veto_upheld")
        assert event["data"]["by"] == NOBODY and event["data"]["reason"] == "(no reason given)"
        assert event["message"].endswith("veto upheld: nobody answered within the response window")
        assert store.events("gate_overridden") == []


class TestNoGoReview:
    def test_overturn_makes_the_decision_go_by_that_person_and_keeps_the_automatic_reason(self, config, pg_url):
        store = Store(pg_url)
        point = next(d for d in config.gates.decision_points if d.id == "day14_check")
        store.save_decision(run_key=RUN["run_key"], decision_point=point.id, week=point.week, decision="NO_GO",
                            decided_by="castmatch-orchestrator", reason="KPIs failed: beta_users (missing)",
                            gates={"chat_interface_gate": "PASSED"}, kpis_ok=False)
        record_no_go_answer(store, point, answered("Overturn to GO", "beta list signed"), overturned=True, **RUN)
        (decision,) = store.decisions(RUN["run_key"])  # upserted per run and point: one row
        assert (decision["decision"], decision["decided_by"]) == ("GO", "priya")
        assert decision["reason"] == "overturned by priya: beta list signed (was NO-GO: KPIs failed: beta_users (missing))"
        assert decision["gates"] == {"chat_interface_gate": "PASSED"} and decision["kpis_ok"] is False
        assert [e["data"]["by"] for e in store.events("decision_overturned")] == ["priya"]

    def test_keep_leaves_the_no_go(self, config, pg_url):
        store = Store(pg_url)
        point = next(d for d in config.gates.decision_points if d.id == "day7_check")
        store.save_decision(run_key=RUN["run_key"], decision_point=point.id, week=point.week, decision="NO_GO",
                            decided_by="castmatch-orchestrator", reason="gates not passed", gates={}, kpis_ok=True)
        record_no_go_answer(store, point, answered("Keep NO-GO", user=None), overturned=False, **RUN)
        (decision,) = store.decisions(RUN["run_key"])
        assert decision["decision"] == "NO_GO" and decision["decided_by"] == "castmatch-orchestrator"
        assert [e["data"]["by"] for e in store.events("no_go_upheld")] == [NOBODY]


class TestSlackAnnouncement:
    def test_posts_the_rendered_text_to_the_webhook_and_skips_without_one(self, monkeypatch):
        import json

        from castmatch.notify import SlackAnnouncement
        from tests.fakes.fake_slack import FakeSlackWebhook

        note = SlackAnnouncement("*{{ subject }}* for {{ who }}")
        monkeypatch.delenv("AIRFLOW_CONN_CASTMATCH_SLACK", raising=False)
        note({"subject": "Gate vetoed", "who": "lead"})  # no connection: nothing posted, no failure
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_SLACK", json.dumps({"conn_type": "slackwebhook", "password": ""}))
        note({"subject": "Gate vetoed", "who": "lead"})  # a connection without a URL (docker-compose default)
        with FakeSlackWebhook() as slack:
            monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_SLACK", slack.connection())
            SlackAnnouncement("*{{ subject }}* for {{ who }}")({"subject": "Gate vetoed", "who": "lead"})
        assert [(p["path"], p["text"]) for p in slack.posts] == [("/services/T000/B000/XXXX", "*Gate vetoed* for lead")]
