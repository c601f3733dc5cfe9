"""Level 1 of the escalation ladder on a real failure: Redis killed before a week's gate checks it.
The gate's probe opens an incident; level 1 restarts Redis with the configured command (no shell),
the incident resolves, the gate passes, the guarded work runs, and the agents the protocol names
find the change in their next prompts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from castmatch.config import load_roadmap
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
