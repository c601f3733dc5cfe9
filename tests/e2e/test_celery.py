"""Scale-out, proven without Docker: scripts/celery_stack.sh starts the compose file's topology as
processes (a fresh metadata database on the local PostgreSQL, Redis as the broker, api-server,
scheduler, dag-processor, triggerer and two Celery workers, one per track queue), and week 1 of the
CastMatch roadmap runs on it on the live backend against the fake Messages API. Near its end the
development track's worker is SIGKILLed, with everything it started, while it runs an agent unit:
the surviving worker takes over the queue and the unit's retry, and the week still succeeds."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import uuid
from collections import defaultdict
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from castmatch.config import load_roadmap
from castmatch.store import Store
from tests.airflow_stack import AirflowApi, free_port, wait_until
from tests.conftest import PG_ADMIN_URL
from tests.fakes.fake_anthropic import default_tool_input

STARTS_AIRFLOW = True  # tests/conftest.py: one whole Airflow at a time under pytest -n 2

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "scripts" / "celery_stack.sh"
WORKERS = {"development": "worker-a", "design_quality": "worker-b"}  # track queue -> the worker on it
# The development track's last unit (it depends on the track's longest chain): when it runs, every
# other development unit is done, so the loss touches it alone.
HELD_UNIT = "e2e_conversation_flow_testing"
WINDOW, LIMIT = 4.0, 3  # the shared rate limit: 3 requests a model in any 4 s, across both workers
HEARTBEAT_TIMEOUT = 15  # s: config/celery.env says 120; a test waits less for the scheduler to notice


def stack(command: str, *args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(STACK), command, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def kill_host(pid: int) -> int:
    """SIGKILL a worker and every process it started (a lost host); how many died."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)
    return len(procs)


@pytest.mark.e2e
class TestCeleryStack:
    def test_week_one_runs_on_both_workers_by_track_and_survives_losing_one(self, roadmap_copy, pg_url, redis_prefix,
                                                                            fake_claude, tmp_path):
        llm = roadmap_copy / "llm.yaml"
        text = llm.read_text().replace("task_retry_delay_seconds: 60", "task_retry_delay_seconds: 1")
        text = text.replace("rate_limit_window_seconds: 60", f"rate_limit_window_seconds: {WINDOW:g}")
        llm.write_text(re.sub(r"requests_per_minute: \d+", f"requests_per_minute: {LIMIT}", text))
        config = load_roadmap(roadmap_copy)
        assert config.issues == []

        held, release = threading.Event(), threading.Event()

        def responder(body: dict) -> dict:
            if not body.get("tools"):  # the Claude probe's 1-token query
                return {}
            if f"`{HELD_UNIT}`" in json.dumps(body["messages"][0]) and not held.is_set():
                held.set()  # the first attempt stays in flight until its worker is gone
                release.wait(300)
            return default_tool_input(body["tools"][0], body)

        fake_claude.responder = responder
        fake_claude.latency = 0.2
        name = f"cmcel{uuid.uuid4().hex[:8]}"
        port = free_port()
        queues = " ".join(f"{worker}:default,{queue}" for queue, worker in WORKERS.items())
        env = {**os.environ, "CELERY_STACK_DIR": str(tmp_path / "stack"), "CELERY_STACK_NAME": name,
               "CELERY_STACK_PORT": str(port), "CELERY_STACK_PG": PG_ADMIN_URL, "CELERY_WORKERS": queues,
               "CASTMATCH_ROADMAP_DIR": str(roadmap_copy), "CASTMATCH_DATABASE_URL": pg_url,
               "CASTMATCH_LLM": "live", "CASTMATCH_CLOCK": "compressed", "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
               "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
               "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
               "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                   {"conn_type": "anthropic", "password": fake_claude.api_key, "host": fake_claude.url})}
        for key in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER"):  # the test session's own Airflow
            env.pop(key)
        metadata = sa.create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}_airflow")
        try:
            started = stack("start", env=env)
            assert started.returncode == 0, started.stdout + started.stderr
            airflow = AirflowApi(port)
            airflow.unpause("castmatch_week_01")
            run_id = airflow.trigger("castmatch_week_01", {"clock": "compressed"})

            def tasks() -> dict[str, dict]:
                return {t["task_id"]: t for t in airflow.task_instances("castmatch_week_01", run_id)}

            wait_until(held.is_set, 300, f"{HELD_UNIT}'s call to be in flight", every=0.2)
            development = [u.id for u in config.weeks[1].work_units
                           if config.agents[u.agents[0]].track == "development" and u.id != HELD_UNIT]
            wait_until(lambda: all(tasks()[u]["state"] == "success" for u in development), 120,
                       "the other development units", every=0.5)
            victim = tasks()[HELD_UNIT]
            assert (victim["state"], victim["hostname"]) == ("running", "worker-a")
            pid = int((tmp_path / "stack" / "pids" / "worker-a.pid").read_text())
            assert kill_host(pid) >= 3  # the worker, its pool process and the task it supervises
            release.set()
            # what an operator does when a track's host is lost: the surviving worker takes its queue
            moved = stack("run", "celery", "--app", "airflow.providers.celery.executors.celery_executor.app",
                          "control", "add_consumer", "development", "-d", f"worker-b@{socket.gethostname()}",
                          env=env, timeout=60)
            assert moved.returncode == 0 and "add consumer" in moved.stdout.lower(), moved.stdout + moved.stderr
            state = airflow.wait_run("castmatch_week_01", run_id, 420)
            assert state == "success", [(t, v["state"]) for t, v in tasks().items() if v["state"] != "success"]

            with metadata.connect() as conn:  # where every try ran, from the metadata database
                rows = conn.execute(sa.text(
                    "SELECT task_id, try_number, hostname, queue FROM task_instance WHERE run_id = :r UNION ALL "
                    "SELECT task_id, try_number, hostname, queue FROM task_instance_history WHERE run_id = :r"),
                    {"r": run_id}).all()
        finally:
            release.set()
            cleaned = stack("clean", env=env, timeout=120)
            metadata.dispose()
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        leftovers = [p.info["pid"] for p in psutil.process_iter(["pid", "environ"])
                     if (p.info["environ"] or {}).get("CELERY_STACK_NAME") == name]
        assert leftovers == [], "the stack left processes running"

        tries = defaultdict(dict)
        for task_id, try_number, hostname, queue in rows:
            tries[task_id][try_number] = (hostname, queue)
        assert {h for runs in tries.values() for h, _ in runs.values() if h} == set(WORKERS.values())
        for unit in config.weeks[1].work_units:
            queue = config.team.track(config.agents[unit.agents[0]].track).queue
            expected = {1: (WORKERS[queue], queue)}
            if unit.id == HELD_UNIT:  # lost with worker-a, retried on the worker that took its queue
                expected[2] = ("worker-b", queue)
            assert tries[unit.id] == expected, unit.id

        store = Store(pg_url)
        delivered = [d["work_unit_id"] for d in store.deliverables()]
        assert sorted(delivered) == sorted(u.id for u in config.weeks[1].work_units)  # exactly one each
        attempts = [(c["try_number"], c["outcome"]) for c in store.llm_calls() if c["work_unit_id"] == HELD_UNIT
                    and c["purpose"] == "agent"]
        assert attempts == [(1, "lost"), (2, "ok")], attempts  # both attempts in the audit ledger

        # the shared Redis limiter held across both workers: per model, never more than LIMIT in a window
        by_model = defaultdict(list)
        for request in fake_claude.requests:
            if request.path == "/v1/messages":
                by_model[request.body["model"]].append(request.time)
        assert sum(len(t) for t in by_model.values()) > 2 * LIMIT
        for model, times in by_model.items():
            times.sort()
            for i, start in enumerate(times):
                within = [t for t in times[i:] if t < start + WINDOW - 0.2]  # slack for loopback jitter
                assert len(within) <= LIMIT, f"{len(within)} {model} requests within {WINDOW:g} s"
