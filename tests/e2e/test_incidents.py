"""Level 1 of the escalation ladder on a real failure: Redis killed before a week's gate checks it.
The gate's probe opens an incident; level 1 restarts Redis with the configured command (no shell),
the incident resolves, the gate passes, the guarded work runs, and the agents the protocol names
find the change in their next prompts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from castmatch.config import load_roadmap
from castmatch.store import Store
from tests.airflow_stack import free_port, wait_until
from tests.helpers import castmatch_json, dags_test

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "roadmaps" / "example"


def redis_server(port: int, *, daemon: bool = False, pidfile: Path | None = None) -> list[str]:
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if daemon:
        command += ["--daemonize", "yes", "--pidfile", str(pidfile)]
    return command


def with_redis_protocol(tmp_path: Path) -> Path:
    """The example roadmap, its foundation gate also checking Redis, and the seed's Redis protocol."""
    roadmap = tmp_path / "roadmap"
    shutil.copytree(EXAMPLE, roadmap)
    gates = roadmap / "gates.yaml"
    gates.write_text("probes:\n  - {id: redis, kind: redis, conn_id: castmatch_redis}\n" + gates.read_text().replace(
        "    criteria:\n", "    criteria:\n      - {id: redis_up, text: Redis answers, kind: probe, probes: [redis]}\n", 1))
    ops = roadmap / "operations.yaml"
    ops.write_text(ops.read_text().replace("standup:", """auto_resolution:
  - id: redis_connection_issues
    category: Infrastructure Failures
    issue: Redis Connection Issues
    steps: [Auto-restart Redis container, Fallback to Redis Cloud if local fails, Notify Backend agent]
    when: {kinds: [probe_failed], subjects: [redis]}
    actions:
      - {kind: reprobe}
      - {kind: restart, command: ["${CASTMATCH_REDIS_RESTART}"], timeout_seconds: 20}
      - {kind: reprobe}
      - {kind: fallback, connection: castmatch_redis, fallback_connection: castmatch_redis_fallback}
      - {kind: reprobe}
      - {kind: notify, agents: [backend-developer]}
standup:""", 1))
    assert load_roadmap(roadmap).issues == []
    return roadmap


@pytest.mark.e2e
class TestLevelOneRestartsRedis:
    def test_redis_killed_is_restarted_and_the_gate_passes(self, pg_url, airflow_db, redis_prefix, tmp_path):
        roadmap = with_redis_protocol(tmp_path)
        port = free_port()
        pidfile = tmp_path / "redis.pid"
        url = f"redis://127.0.0.1:{port}/0"
        redis = subprocess.Popen(redis_server(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis as redis_py

        wait_until(lambda: redis_py.Redis(port=port, socket_connect_timeout=0.5).ping(), 20, "redis", every=0.1)
        redis.send_signal(signal.SIGKILL)  # Redis dies before the week checks it
        redis.wait()
        env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(roadmap), "AIRFLOW_CONN_CASTMATCH_REDIS": url,
               "CASTMATCH_REDIS_URL": url,
               "CASTMATCH_REDIS_RESTART": " ".join(redis_server(port, daemon=True, pidfile=pidfile))}
        try:
            run = dags_test("example_week_01", "2026-12-07T00:00:00+00:00", env, conf={"clock": "compressed"})
        finally:
            if pidfile.exists():
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
        assert "state=success" in run.stdout, run.stdout[-4000:]
        assert "incident #" in run.stdout and "level 1 redis_connection_issues restart: ok" in run.stdout

        def report(*args):
            return castmatch_json(*args, "--roadmap", str(roadmap), database_url=pg_url)

        [incident] = [i for i in report("incidents") if i["kind"] == "probe_failed"]
        assert (incident["subject"], incident["state"], incident["level"]) == ("redis", "resolved", 1)
        steps = [(a["action"], a["outcome"]) for a in incident["actions"]]
        assert steps == [("opened", "ok"), ("redis_connection_issues:reprobe", "failed"),
                         ("redis_connection_issues:restart", "ok"), ("redis_connection_issues:reprobe", "ok"),
                         ("redis_connection_issues:notify", "ok"), ("resolved", "ok")], steps
        assert "level 1 (redis_connection_issues): probe redis ok again" in incident["resolution"]
        gate = report("gates")["gates"][0]
        assert gate["status"] == "PASSED"
        assert report("status")["weeks"][0]["done"] == 4  # the guarded work ran

        # the backend agent's next prompt says what changed (its inbox, quoted as data)
        from castmatch.llm.prompt import build_request
        from castmatch.store import Store

        config, store = load_roadmap(roadmap), Store(pg_url)
        run_key = report("runs")[0]["run_key"]
        notices = store.agent_notices(run_key=run_key, agent_id="backend-developer")
        assert len(notices) == 1 and "restart" in notices[0]["message"]
        unit = config.work_units["w02_backend_developer"]
        request = build_request(config, unit, {}, week=2, notices=notices)
        assert "<notices>" in request.user_message and "probe failed redis: restart" in request.user_message
        assert store.agent_notices(run_key=run_key, agent_id="frontend-developer") == []


FAST_LLM = """conn_id: anthropic_default
max_tokens: 1024
timeout_seconds: 5
repair_attempts: 1
retry: {attempts: 3, backoff_seconds: 0.05, min_backoff_seconds: 0.05, max_backoff_seconds: 0.2, task_retry_delay_seconds: 1}
prices:
  claude-sonnet-4-5: {input: 3.00, output: 15.00, cache_write: 3.75, cache_read: 0.30}
"""
BLOCKED = {"summary": "Blocked on the API gateway", "content": "Cannot build the backend without gateway credentials.",
           "status": "blocked", "blockers": ["API gateway credentials missing"], "progress": 10}


def responder(body: dict) -> dict:
    """The fake Claude's answers: the backend developer blocks on its week 1 unit; at level 2 it
    proposes an invalid renegotiation, the lead developer a valid reassignment, the reviewer escalation."""
    from tests.fakes.fake_anthropic import default_tool_input

    tool = body["tool_choice"]["name"]
    system = body["system"][0]["text"]
    user = body["messages"][0]["content"]
    user = user if isinstance(user, str) else " ".join(b.get("text", "") for b in user)
    if tool == "propose_resolution":
        if system.startswith("You are the backend developer"):
            return {"action": "renegotiate_dependency", "reason": "drop the gateway", "dependency": "w01_api_gateway"}
        if system.startswith("You are the lead developer"):
            return {"action": "reassign", "reason": "the frontend developer knows the API contracts",
                    "agent": "frontend-developer"}
        return {"action": "escalate", "reason": "people should decide"}
    if tool == "submit_deliverable" and system.startswith("You are the backend developer") \
            and "Work unit `w01_backend_developer`" in user:
        return BLOCKED
    tool_spec = next(t for t in body["tools"] if t["name"] == tool)
    return default_tool_input(tool_spec, body)


RETRY_THEN_ALERT = """auto_resolution:
  - id: blocked_work
    category: Work
    issue: A unit is blocked
    steps: [Retry it with the reason]
    when: {kinds: [unit_blocked]}
    actions: [{kind: retry}]
notifications:
  - id: dependency_unblocked
    event: Dependency Unblocked
    notify: [waiting_agents]
    when: {unblocked: true}
standup:"""


@pytest.mark.e2e
class TestLevelTwoCollaboration:
    def test_a_blocked_unit_is_retried_then_reassigned_by_the_agents_and_the_waiting_unit_starts(
            self, pg_url, airflow_db, redis_prefix, tmp_path):
        from airflow.models.dagrun import DagRun

        from tests.fakes.fake_anthropic import FakeAnthropic
        from tests.fakes.fake_slack import FakeSlack

        roadmap = tmp_path / "roadmap"
        shutil.copytree(EXAMPLE, roadmap)
        (roadmap / "llm.yaml").write_text(FAST_LLM)
        team = roadmap / "team.yaml"
        team.write_text(team.read_text().replace("    name: Frontend Developer\n",
                                                 "    name: Frontend Developer\n    can_cover: [backend-developer]\n"))
        ops = roadmap / "operations.yaml"
        ops.write_text(ops.read_text().replace("standup:", RETRY_THEN_ALERT, 1))
        assert load_roadmap(roadmap).issues == []

        def report(*args):
            return castmatch_json(*args, "--roadmap", str(roadmap), "--run", run_key, database_url=pg_url)

        with FakeAnthropic(responder=responder) as claude, FakeSlack() as slack:
            env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(roadmap), "CASTMATCH_LLM": "live",
                   "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                       {"conn_type": "anthropic", "password": claude.api_key, "host": claude.url}),
                   "AIRFLOW_CONN_CASTMATCH_SLACK_API": slack.api_connection()}
            week = dags_test("example_week_01", "2026-12-07T00:00:00+00:00", env, conf={"clock": "compressed"})
            assert "state=failed" in week.stdout and "w01_backend_developer is blocked" in week.stdout
            run_key = castmatch_json("runs", "--roadmap", str(roadmap), database_url=pg_url)[0]["run_key"]
            [blocked] = report("incidents")
            assert (blocked["kind"], blocked["subject"], blocked["level"]) == ("unit_blocked", "w01_backend_developer", 1)
            assert "API gateway credentials missing" in blocked["detail"]
            assert [a["action"] for a in blocked["actions"]] == ["opened", "rerun_pending", "blocked_work:retry"]

            # level 1: the sweep (its DAG runs every cycle) runs the unit again, the reason in its prompt
            sweep = dags_test("example_incidents", "2026-12-07T01:00:00+00:00", env)
            assert "state=success" in sweep.stdout, sweep.stdout[-3000:]
            [retry] = DagRun.find(dag_id="example_incident_work")  # triggered, not yet run
            assert retry.run_id == f"incident_{blocked['id']}__w01_backend_developer"
            retried = dags_test("example_incident_work", "2026-12-07T01:30:00+00:00", env, conf=retry.conf)
            assert "state=failed" in retried.stdout  # blocked again
            prompt = claude.requests[-1].body["messages"][0]["content"]
            prompt = prompt if isinstance(prompt, str) else " ".join(b.get("text", "") for b in prompt)
            assert "API gateway credentials missing" in prompt and "it runs again now" in prompt

            # level 2: the next sweep asks the agents around the unit
            sweep = dags_test("example_incidents", "2026-12-07T02:00:00+00:00", env)
            assert "state=success" in sweep.stdout, sweep.stdout[-3000:]
            [incident] = report("incidents")
            proposals = [(a["action"], a["outcome"], a["actor"]) for a in incident["actions"] if a["level"] == 2]
            assert proposals == [
                ("escalated_to_level_2", "ok", "example-orchestrator"),
                ("proposal:renegotiate_dependency", "rejected", "backend-developer"),
                ("proposal:reassign", "applied", "lead-developer"),
                ("proposal:escalate", "proposed", "reviewer"),
                ("rerun_requested", "ok", "example-orchestrator"),  # the changed unit, run again once
            ], proposals
            rejected = next(a for a in incident["actions"] if a["outcome"] == "rejected")
            assert "invalid: 'w01_api_gateway' is not a dependency of w01_backend_developer" in rejected["detail"]
            calls = Store(pg_url).llm_calls(run_key=run_key, purpose="incident")
            assert [c["outcome"] for c in calls] == ["ok", "ok", "ok"]  # the level 2 calls are booked

            # the sweep triggered the unit's run again in its run, as changed: run it as the scheduler would
            [triggered] = [r for r in DagRun.find(dag_id="example_incident_work")
                           if r.run_id.startswith("incident_") and r.run_id != retry.run_id]
            assert triggered.run_id == f"incident_{incident['id']}__w01_backend_developer__2"  # once, even retried
            assert triggered.conf == {"run_key": run_key, "work_unit": "w01_backend_developer", "clock": "compressed"}
            assert slack.posts == []
            work = dags_test("example_incident_work", "2026-12-07T02:30:00+00:00", env, conf=triggered.conf)
            assert "state=success" in work.stdout, work.stdout[-3000:]
            delivered = Store(pg_url).upstream_deliverables(["w01_backend_developer"], run_key=run_key)
            assert delivered["w01_backend_developer"]["agent_id"] == "frontend-developer"

            # Dependency Unblocked: the review that waited on it starts without a person, one alert
            [unblocked] = [r for r in DagRun.find(dag_id="example_incident_work")
                           if r.run_id.startswith("unblocked_")]
            assert unblocked.conf == {"run_key": run_key, "work_unit": "w01_review", "clock": "compressed"}
            [message] = slack.messages()
            assert "*Dependency Unblocked*: w01_backend_developer" in message["text"]
            assert "Told: reviewer" in message["text"]
            review = dags_test("example_incident_work", "2026-12-07T03:00:00+00:00", env, conf=unblocked.conf)
            assert "state=success" in review.stdout, review.stdout[-3000:]
            assert len(slack.posts) == 1  # nothing waited on the review: no second alert
        assert "w01_review" in Store(pg_url).upstream_deliverables(["w01_review"], run_key=run_key)
        [alert] = report("alerts")
        assert (alert["notification"], alert["status"], alert["agents"]) == (
            "dependency_unblocked", "sent", ["reviewer"])
        sweep = dags_test("example_incidents", "2026-12-07T04:00:00+00:00", env)
        [incident] = report("incidents")
        assert incident["state"] == "resolved" and "w01_backend_developer delivered" in incident["resolution"]


def nobody_can_fix(body: dict) -> dict:
    """The backend developer stays blocked, and every agent asked at level 2 says: people decide."""
    if body["tool_choice"]["name"] == "propose_resolution":
        return {"action": "escalate", "reason": "the gateway contract is a business decision"}
    return responder(body)


@pytest.mark.e2e
class TestLevelThreePeople:
    def test_people_are_asked_and_their_answer_extends_the_timeline(
            self, pg_url, airflow_db, redis_prefix, tmp_path):
        from airflow.models.dagrun import DagRun

        from tests.fakes.fake_anthropic import FakeAnthropic

        roadmap = tmp_path / "roadmap"
        shutil.copytree(EXAMPLE, roadmap)
        (roadmap / "llm.yaml").write_text(FAST_LLM)
        ops = roadmap / "operations.yaml"
        ops.write_text(ops.read_text() + """escalation:
  - {level: 1, name: Automated Resolution, after_minutes: 0, actions: [Service restarts]}
  - {level: 2, name: Agent Collaboration, after_minutes: 30, actions: [Cross-agent problem solving]}
  - {level: 3, name: Human Oversight, after_minutes: 120, actions: [Strategic decisions], people: [asha]}
""")
        assert load_roadmap(roadmap).issues == []
        with FakeAnthropic(responder=nobody_can_fix) as claude:
            env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(roadmap), "CASTMATCH_LLM": "live",
                   "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                       {"conn_type": "anthropic", "password": claude.api_key, "host": claude.url})}
            week = dags_test("example_week_01", "2026-12-07T00:00:00+00:00", env, conf={"clock": "compressed"})
            assert "state=failed" in week.stdout
            for hour in (1, 2):  # level 2 (every agent escalates), then level 3
                sweep = dags_test("example_incidents", f"2026-12-07T0{hour}:00:00+00:00", env)
                assert "state=success" in sweep.stdout, sweep.stdout[-3000:]

        def report(*args):
            return castmatch_json(*args, "--roadmap", str(roadmap), database_url=pg_url)

        [incident] = report("incidents")
        assert incident["level"] == 3 and incident["actions"][-1]["action"] == "people_asked"
        [review] = DagRun.find(dag_id="example_incident_review")
        assert review.conf == {"run_key": incident["run_key"], "incident": incident["id"], "clock": "compressed"}

        # the review waits for a person (Required Actions); asha answers from a terminal
        def extend(request):
            out = subprocess.run([str(Path(sys.executable).parent / "castmatch"), "answer",
                                  f"{request.dag_id}/{request.task_id}", "--run", request.run_id,
                                  "--option", "Extend timeline", "--param", "days=3",
                                  "--reason", "the gateway contract needs a week", "--as", "asha",
                                  "--roadmap", str(roadmap)], capture_output=True, text=True, env=env)
            assert out.returncode == 0, out.stderr

        answered = dags_test("example_incident_review", "2026-12-07T03:00:00+00:00", env, conf=review.conf,
                             answers={"decide": extend})
        assert "WAITING FOR A PERSON" in answered.stdout
        assert "state=success" in answered.stdout, answered.stdout[-3000:]
        [incident] = report("incidents")
        assert incident["state"] == "resolved"
        assert incident["resolution"] == "timeline extended by 3 day(s) by asha: the gateway contract needs a week"
        store = Store(pg_url)
        assert store.extension_days(incident["run_key"]) == 3.0  # the remaining weeks start 3 days later
        from castmatch.runs import run_clock

        config = load_roadmap(roadmap)
        shifted = run_clock(config, store, incident["run_key"], "compressed")
        assert shifted.shift_days == 3.0
