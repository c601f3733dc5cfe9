"""The escalation ladder's timers live in the store, not in a process: the scheduler SIGKILLed while
an incident waits for level 2, then started again, escalates it within one sweep cycle, exactly once.

The incident arises the way it does for a user: the probes DAG samples a Redis that is down."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from castmatch.config import load_roadmap
from castmatch.store import Store
from tests.airflow_stack import BIN, AirflowStack, free_port, wait_until

STARTS_AIRFLOW = True  # tests/conftest.py: one whole Airflow at a time under pytest -n 2

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "roadmaps" / "example"
CYCLE = dt.timedelta(seconds=15)  # update_frequency_minutes below: the sweep's cycle
LADDER = """update_frequency_minutes: 0.25
escalation:
  - {level: 1, name: Automated Resolution, after_minutes: 0, actions: [Service restarts]}
  - {level: 2, name: Agent Collaboration, after_minutes: 0.5, actions: [Cross-agent problem solving]}
  - {level: 3, name: Human Oversight, after_minutes: 600, actions: [Strategic decisions]}
"""


def scheduler_pids(stack: AirflowStack) -> list[int]:
    """The ``airflow scheduler`` processes ``airflow standalone`` started (its process group). Read
    through psutil: ``ps`` cuts its lines at $COLUMNS when one is set, and a long venv path hides the
    command's end."""
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            args = proc.info["cmdline"] or []
            if os.getpgid(proc.info["pid"]) == stack.proc.pid and args[-2:] and Path(args[-2]).name == "airflow" \
                    and args[-1] == "scheduler":
                pids.append(proc.info["pid"])
        except (ProcessLookupError, psutil.Error):  # gone meanwhile
            continue
    return pids


@pytest.mark.faults
class TestSchedulerKilled:
    def test_the_ladder_survives_a_scheduler_killed_and_escalates_once_within_a_cycle(self, pg_url, redis_prefix,
                                                                                       tmp_path):
        roadmap = tmp_path / "roadmap"
        shutil.copytree(EXAMPLE, roadmap)
        ops = roadmap / "operations.yaml"
        ops.write_text(LADDER + ops.read_text())
        gates = roadmap / "gates.yaml"
        gates.write_text("probes:\n  - {id: redis, kind: redis, conn_id: castmatch_redis}\n" + gates.read_text())
        assert load_roadmap(roadmap).issues == []
        env = {"CASTMATCH_ROADMAP_DIR": str(roadmap), "CASTMATCH_DATABASE_URL": pg_url,
               "AIRFLOW_CONN_CASTMATCH_REDIS": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens: down
        store = Store(pg_url)

        def incident():
            rows = store.incidents(roadmap_id="example", with_actions=True)
            return next((r for r in rows if (r["kind"], r["subject"]) == ("probe_failed", "redis")), None)

        restarted = None
        with AirflowStack(env) as airflow:
            try:
                airflow.unpause("example_probes", "example_incidents")
                opened = wait_until(incident, 240, "the Redis probe's incident", every=1)
                assert opened["level"] == 1
                [pid] = scheduler_pids(airflow)
                os.kill(pid, signal.SIGKILL)  # while the incident waits for level 2
                wait_until(lambda: not scheduler_pids(airflow), 30, "the scheduler to be gone", every=0.2)
                restarted = subprocess.Popen([str(BIN / "airflow"), "scheduler"], env=airflow.env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             start_new_session=True)
                due = opened["opened_at"] + dt.timedelta(seconds=30)  # level 2 after 0.5 min (above)
                escalated = wait_until(lambda: (lambda r: r if r["level"] == 2 else None)(incident()), 240,
                                       "level 2 after the restart", every=1)
                when = next(a["at"] for a in escalated["actions"] if a["action"] == "escalated_to_level_2")
                # within one cycle of its time (and the new scheduler's start-up)
                assert when - due <= CYCLE + dt.timedelta(seconds=45), (when, due)
                assert when >= due  # never early
                def sweeps_done() -> int:
                    runs = airflow.request("GET", "/api/v2/dags/example_incidents/dagRuns?state=success")
                    return runs["total_entries"]

                before = sweeps_done()
                wait_until(lambda: sweeps_done() > before + 1, 120, "two more sweeps", every=1)
            finally:
                if restarted is not None:
                    os.killpg(restarted.pid, signal.SIGKILL)
                    restarted.wait()
                try:  # the killed scheduler's executor workers outlive it in standalone's group
                    os.killpg(airflow.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        final = incident()
        steps = [a["action"] for a in final["actions"]]
        assert steps.count("escalated_to_level_2") == 1, steps  # exactly once, across the kill and later sweeps
        assert final["level"] == 2 and final["state"] == "open"
        assert steps[:2] == ["opened", "escalated_to_level_2"]
