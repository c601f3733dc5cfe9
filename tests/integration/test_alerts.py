"""Trigger-based alerts and level 1's work remedies in the real store, with a loopback Slack: one
message per event whatever retries do, the agents' inbox, the run's watch (a late blocked chain, a
budget running out), and the units that waited on a blocker starting once it is delivered."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
from pathlib import Path

import pytest

from castmatch.config import load_roadmap
from castmatch.incidents import open_incident, sweep, unblocked_triggers
from castmatch.store import Store
from tests.fakes.fake_slack import FakeSlack
from tests.helpers import castmatch_json

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "roadmaps" / "example"
RUN = "example:roadmap:manual__alerts"
DONE = {"summary": "delivered", "content": "the content", "status": "done", "blockers": [], "progress": 100}
NOTIFICATIONS = """notifications:
  - id: quality_gate_failures
    event: Quality Gate Failures
    notify: [responsible_agent, gate_enforcers]
    when: {incidents: [gate_vetoed]}
  - id: dependency_unblocked
    event: Dependency Unblocked
    notify: [waiting_agents]
    when: {unblocked: true}
auto_resolution:
  - id: failed_work
    category: Work
    issue: A unit fails
    steps: [Retry with the failure reason]
    when: {kinds: [unit_failed]}
    actions: [{kind: llm_history}, {kind: retry}]
  - id: blocked_agents
    category: Work
    issue: Blocked Agents
    steps: [Provide alternative work paths]
    when: {kinds: [unit_blocked]}
    actions: [{kind: alternative_path}]
  - id: overloaded_agents
    category: Work
    issue: Overloaded Agents
    steps: [Auto-redistribute tasks]
    when: {kinds: [budget_exceeded]}
    actions: [{kind: redistribute}]
"""


@pytest.fixture
def roadmap(tmp_path) -> Path:
    """The example roadmap with two alerts, level 1 work protocols, a chain timeline and budgets."""
    root = tmp_path / "roadmap"
    shutil.copytree(EXAMPLE, root)
    ops = root / "operations.yaml"
    ops.write_text(ops.read_text().replace("standup:", NOTIFICATIONS + "standup:", 1).replace(
        "      consumers: [w01_backend_developer, w01_frontend_developer]\n",
        "      consumers: [w01_backend_developer, w01_frontend_developer]\n"
        "    timeline: {description: Week 1 Day 2, week: 1, day: 2}\n", 1))
    team = root / "team.yaml"
    team.write_text(team.read_text().replace("    name: Frontend Developer\n",
                                             "    name: Frontend Developer\n    can_cover: [backend-developer]\n"))
    (root / "llm.yaml").write_text("prices:\n  claude-sonnet-4-5: {input: 3.00, output: 15.00, cache_write: 3.75, cache_read: 0.30}\n"
                                   "budgets:\n  per_agent: {usd: 1.00}\n  warn_at: 0.8\n")
    assert load_roadmap(root).issues == []
    return root


def _run(store, clock="real", origin=None):
    store.register_run(run_key=RUN, roadmap_id="example", kind="roadmap", dag_id="example_roadmap",
                       run_id="manual__alerts", clock=clock, origin=origin)


def _deliver(store, unit: str, agent: str, week: int = 1):
    store.unit_started(dag_id="example_week_01", run_key=RUN, run_id="w1", work_unit_id=unit, agent_id=agent,
                       try_number=1)
    store.save_deliverable(dag_id="example_week_01", run_key=RUN, run_id="w1", work_unit_id=unit, agent_id=agent,
                           week=week, deliverable=DONE, backend="offline", model="m", try_number=1)


def _fail(store, unit: str, agent: str, error: str = "the answer broke"):
    store.unit_started(dag_id="example_week_01", run_key=RUN, run_id="w1", work_unit_id=unit, agent_id=agent,
                       try_number=1)
    store.unit_failed(dag_id="example_week_01", run_key=RUN, run_id="w1", work_unit_id=unit, agent_id=agent,
                      try_number=1, error=error)


class TestAlerts:
    def test_a_gate_failure_tells_its_agents_and_slack_once(self, roadmap, pg_url, monkeypatch):
        config, store = load_roadmap(roadmap), Store(pg_url)
        _run(store)
        with FakeSlack() as slack:
            monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_SLACK_API", slack.api_connection("#casting-ops"))
            monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_SLACK", slack.connection())  # the bot wins over it
            threads = [threading.Thread(target=lambda: open_incident(
                config, store, run_key=RUN, kind="gate_vetoed", subject="foundation_gate", agents=["reviewer"],
                detail="Foundation gate vetoed: the reviewer rejects the foundations")) for _ in range(3)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            # the task retried, the gate judged again: the same event, no second message
            open_incident(config, store, run_key=RUN, kind="gate_vetoed", subject="foundation_gate",
                          agents=["reviewer"], detail="vetoed again")
        [message] = slack.posts
        assert message["path"] == "/api/chat.postMessage" and message["channel"] == "#casting-ops"
        text = message["text"]
        assert text.startswith(":bell: *Quality Gate Failures*: foundation_gate") and RUN in text
        assert "the reviewer rejects the foundations" in text
        assert "Told: lead-developer, reviewer" in text  # the judged unit's lead, then the enforcer
        assert "Required Actions: http://" in text and "/required_actions" in text
        assert "/dags/example_incidents" in text and "castmatch incidents --run" in text
        for agent in ("lead-developer", "reviewer"):  # their inbox: what their next prompts include
            [notice] = store.agent_notices(run_key=RUN, agent_id=agent)
            assert "Quality Gate Failures" in notice["message"]
        assert store.agent_notices(run_key=RUN, agent_id="frontend-developer") == []
        [row] = castmatch_json("alerts", "--roadmap", str(roadmap), "--run", RUN, database_url=pg_url)
        assert (row["notification"], row["status"], row["channel"]) == (
            "quality_gate_failures", "sent", "castmatch_slack_api #casting-ops")

    def test_through_the_webhook_and_without_slack_it_is_recorded_and_says_not_sent(self, roadmap, pg_url,
                                                                                     monkeypatch):
        config, store = load_roadmap(roadmap), Store(pg_url)
        _run(store)
        monkeypatch.delenv("AIRFLOW_CONN_CASTMATCH_SLACK_API", raising=False)
        with FakeSlack() as slack:
            monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_SLACK", slack.connection())
            open_incident(config, store, run_key=RUN, kind="gate_vetoed", subject="foundation_gate",
                          agents=["reviewer"], detail="vetoed")
        [message] = slack.posts
        assert message["path"] == "/services/T000/B000/XXXX" and "Quality Gate Failures" in message["text"]
        monkeypatch.delenv("AIRFLOW_CONN_CASTMATCH_SLACK")
        other = RUN + "_2"
        open_incident(config, store, run_key=other, kind="gate_vetoed", subject="foundation_gate",
                      agents=["reviewer"], detail="vetoed")
        [row] = [r for r in store.alerts(roadmap_id="example") if r["run_key"] == other]
        assert row["status"] == "not_sent" and "no Slack connection" in row["detail"]
        assert len(store.agent_notices(run_key=other, agent_id="reviewer")) == 1  # the agents are still told

    def test_units_waiting_on_a_delivered_blocker_start_and_one_alert_is_sent(self, roadmap, pg_url, monkeypatch):
        config, store = load_roadmap(roadmap), Store(pg_url)
        _run(store, clock="compressed", origin=dt.datetime.now(dt.UTC))
        _deliver(store, "w01_lead_developer", "lead-developer")
        _deliver(store, "w01_frontend_developer", "frontend-developer")
        _fail(store, "w01_backend_developer", "backend-developer")
        # w01_review waits on the failed unit: the week's DAG skipped it
        assert unblocked_triggers(config, store, run_key=RUN, blocker="w01_backend_developer", clock="compressed") == []
        _deliver(store, "w01_backend_developer", "frontend-developer")  # delivered by the incident's rerun
        with FakeSlack() as slack:
            monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_SLACK_API", slack.api_connection())
            first = unblocked_triggers(config, store, run_key=RUN, blocker="w01_backend_developer", clock="compressed",
                                       dag_id="example_incident_work", run_id="incident_1__w01_backend_developer")
            again = unblocked_triggers(config, store, run_key=RUN, blocker="w01_backend_developer",
                                       clock="compressed")  # the task retried
        assert [t["conf"] for t in first] == [{"run_key": RUN, "work_unit": "w01_review", "clock": "compressed"}]
        assert first == again  # the same run id: Airflow starts it once
        [message] = slack.messages()
        assert "*Dependency Unblocked*: w01_backend_developer" in message["text"]
        assert "w01_review no longer wait" in message["text"] and "Told: reviewer" in message["text"]
        assert "/dags/example_incident_work/runs/incident_1__w01_backend_developer" in message["text"]
        [notice] = store.agent_notices(run_key=RUN, agent_id="reviewer")
        assert "w01_review" in notice["message"]


class TestLevelOneWork:
    def test_a_failed_unit_runs_again_with_the_reason_and_what_claude_calls_did(self, roadmap, pg_url):
        config, store = load_roadmap(roadmap), Store(pg_url)
        _run(store)
        for attempt, (outcome, error) in enumerate([("error", "RateLimitError"), ("error", "RateLimitError"),
                                                    ("malformed", "MalformedAnswer")], start=1):
            store.record_llm_call(attempt=attempt, model="claude-sonnet-4-5", backend="live", request_hash=f"h{attempt}",
                                  outcome=outcome, error_class=error, run_key=RUN, purpose="agent",
                                  agent_id="backend-developer", work_unit_id="w01_backend_developer")
        incident = open_incident(config, store, run_key=RUN, kind="unit_failed", subject="w01_backend_developer",
                                 agents=["backend-developer"], detail="w01_backend_developer: the answer broke twice")
        [row] = store.incidents(roadmap_id="example", run_key=RUN, with_actions=True)
        steps = [(a["action"], a["outcome"]) for a in row["actions"]]
        assert steps == [("opened", "ok"), ("failed_work:llm_history", "failed"), ("rerun_pending", "ok"),
                         ("failed_work:retry", "ok")], steps
        history = row["actions"][1]["detail"]
        assert "3 call(s)" in history and "2x RateLimitError" in history and "1 malformed" in history
        [notice] = store.agent_notices(run_key=RUN, agent_id="backend-developer")
        assert "the answer broke twice" in notice["message"] and "runs again" in notice["message"]
        # the next sweep runs it again once; the ladder waits for it that sweep
        counts = sweep(config, store, now=incident["opened_at"] + dt.timedelta(minutes=31))
        assert counts["escalated"] == 0
        assert counts["triggers"] == [{"trigger_dag_id": "example_incident_work",
                                       "trigger_run_id": f"incident_{incident['id']}__w01_backend_developer",
                                       "conf": {"run_key": RUN, "work_unit": "w01_backend_developer", "clock": "real"}}]
        later = sweep(config, store, now=incident["opened_at"] + dt.timedelta(minutes=32))
        assert later["escalated"] == 1 and later["triggers"] == []  # still failing: level 2

    def test_a_blocked_agent_gets_an_alternative_path_and_an_agent_out_of_budget_is_covered(self, roadmap, pg_url):
        config, store = load_roadmap(roadmap), Store(pg_url)
        _run(store)
        _deliver(store, "w01_lead_developer", "lead-developer")
        _fail(store, "w01_backend_developer", "backend-developer")
        blocked = open_incident(config, store, run_key=RUN, kind="unit_blocked", subject="w01_backend_developer",
                                agents=["backend-developer"], detail="gateway credentials missing")
        [row] = store.incidents(roadmap_id="example", run_key=RUN, with_actions=True)
        path = row["actions"][-1]
        # week 2's backend unit needs week 1's: nothing of theirs is ready without the blocked one
        assert (path["action"], path["outcome"]) == ("blocked_agents:alternative_path", "failed")
        assert "no ready unit" in path["detail"]
        assert blocked["state"] == "open"

        over = open_incident(config, store, run_key=RUN, kind="budget_exceeded", subject="w01_backend_developer",
                             agents=["backend-developer"], detail="agent backend-developer budget $1.00 spent")
        row = next(r for r in store.incidents(roadmap_id="example", run_key=RUN, with_actions=True)
                   if r["id"] == over["id"])
        moved = row["actions"][-1]
        assert (moved["action"], moved["outcome"]) == ("overloaded_agents:redistribute", "ok")
        assert "reassigned from backend-developer to frontend-developer" in moved["detail"]
        assert store.unit_override(run_key=RUN, work_unit_id="w01_backend_developer")["lead_agent"] == \
            "frontend-developer"
        [notice] = store.agent_notices(run_key=RUN, agent_id="frontend-developer")
        assert "w01_backend_developer is now yours" in notice["message"]


class TestRunWatch:
    def test_a_chain_blocked_past_its_timeline_and_a_budget_near_its_limit_open_incidents(self, roadmap, pg_url):
        config, store = load_roadmap(roadmap), Store(pg_url)
        origin = dt.datetime.now(dt.UTC)
        _run(store, clock="compressed", origin=origin)  # 1 s a roadmap day: week 1 day 2 ends 2 s in
        _fail(store, "w01_lead_developer", "lead-developer")
        store.record_llm_call(attempt=1, model="claude-sonnet-4-5", backend="live", request_hash="b", outcome="ok",
                              run_key=RUN, purpose="agent", agent_id="reviewer", cost_usd=0.85)
        early = origin + dt.timedelta(seconds=1)
        sweep(config, store, now=early)
        kinds = {(r["kind"], r["subject"]) for r in store.incidents(roadmap_id="example", run_key=RUN)}
        assert kinds == {("budget_near_limit", "agent reviewer")}  # the chain's timeline has not ended yet
        sweep(config, store, now=origin + dt.timedelta(seconds=3))
        sweep(config, store, now=origin + dt.timedelta(seconds=4))  # watched again: still one incident each
        rows = {(r["kind"], r["subject"]): r for r in store.incidents(roadmap_id="example", run_key=RUN)}
        chain = rows[("chain_blocked", "foundations_to_team")]
        assert chain["state"] == "open" and "BLOCKED past its timeline (Week 1 Day 2" in chain["detail"]
        assert "w01_lead_developer (failed)" in chain["detail"]
        assert set(chain["agents"]) == {"lead-developer", "backend-developer", "frontend-developer"}
        budget = rows[("budget_near_limit", "agent reviewer")]
        assert budget["agents"] == ["reviewer"] and "85% spent (warn at 80%)" in budget["detail"]
        assert len(rows) == 2
        # the chain's trigger is delivered after all: the sweep resolves its incident
        _deliver(store, "w01_lead_developer", "lead-developer")
        store.save_gate_result(run_key=RUN, dag_id="example_week_01", run_id="w1", gate_id="foundation_gate",
                               status="PASSED", criteria=[], blocked_units=[], decided_by="reviewer")
        sweep(config, store, now=origin + dt.timedelta(seconds=5))
        chain = next(r for r in store.incidents(roadmap_id="example", run_key=RUN) if r["kind"] == "chain_blocked")
        assert chain["state"] == "resolved" and "chain foundations_to_team DONE" in chain["resolution"]
        assert json.loads(json.dumps(castmatch_json("incidents", "--roadmap", str(roadmap), "--run", RUN, "--open",
                                                    database_url=pg_url)))[0]["kind"] == "budget_near_limit"
