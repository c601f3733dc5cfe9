"""A real Airflow for tests and benchmarks: ``airflow standalone`` (scheduler, dag-processor,
triggerer, API server; LocalExecutor on SQLite) in a throw-away home, with this project's DAGs,
connections and agent pool loaded as ``make run`` loads them, driven through the REST API.

Used where ``airflow dags test`` cannot go: the roadmap driver triggering week DAGs, the
scheduler's own HITL sweep, makespans under the real scheduler.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, every: float = 1.0):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class AirflowApi:
    """The REST API of an Airflow on this machine (``port``), logged in as admin / admin."""

    def __init__(self, port: int):
        self.port = port
        self.token = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    # ---------------------------------------------------------------- REST API

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        if self.token is None and path != "/auth/token":
            self.token = self.request("POST", "/auth/token", {"username": "admin", "password": "admin"})["access_token"]
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        req = urllib.request.Request(self.url + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def unpause(self, *dag_ids: str, timeout: float = 240) -> None:
        for dag_id in dag_ids:
            wait_until(lambda d=dag_id: self.request("GET", f"/api/v2/dags/{d}"), timeout, f"{dag_id} to be parsed")
            self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        body = {"logical_date": None, **({"conf": conf} if conf else {})}
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600, *, while_waiting=None) -> str:
        """Wait for the run to finish (``while_waiting()`` is called every poll); its final state."""
        def finished():
            if while_waiting is not None:
                while_waiting()
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return wait_until(finished, timeout, f"{dag_id} {run_id}", every=0.5)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def makespan(self, dag_id: str, run_id: str) -> float:
        """Seconds from the first task's start to the last task's end."""
        tis = [t for t in self.task_instances(dag_id, run_id) if t["start_date"] and t["end_date"]]
        starts = [dt.datetime.fromisoformat(t["start_date"]) for t in tis]
        ends = [dt.datetime.fromisoformat(t["end_date"]) for t in tis]
        return (max(ends) - min(starts)).total_seconds()

    def pending_hitl(self, dag_id: str) -> list[dict]:
        """The HITL requests of the DAG still waiting for an answer (the UI's Required Actions)."""
        details = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails")
        return [d for d in details.get("hitl_details", []) if not d.get("response_received")]

    def answer_hitl(self, detail: dict, option: str, reason: str = "") -> dict:
        """Answer a request as the UI form does (PATCH .../hitlDetails)."""
        ti = detail["task_instance"]
        path = (f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/"
                f"{ti.get('map_index', -1)}/hitlDetails")
        return self.request("PATCH", path, {"chosen_options": [option], "params_input": {"reason": reason}})


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (``config/*.env``), comments and blank lines skipped."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


class AirflowStack(AirflowApi):
    """``with AirflowStack(env={...}) as af: af.trigger(...)``. ``env`` adds to the environment of
    every Airflow process (the roadmap folder, the store URL, connections ...). ``extra_dags`` are
    more DAG files to put beside ours."""

    def __init__(self, env: dict | None = None, *, extra_dags: dict[str, str] | None = None, parallelism: int = 8,
                 keep: bool = False):
        super().__init__(free_port())
        self.home = Path(tempfile.mkdtemp(prefix="cm-airflow-stack-"))
        self.keep = keep
        dags = self.home / "dags"
        dags.mkdir()
        for family in sorted((ROOT / "dags").glob("castmatch_*.py")):
            shutil.copy(family, dags / family.name)
        for name, source in (extra_dags or {}).items():
            (dags / name).write_text(source)
        (self.home / "passwords.json").write_text('{"admin": "admin"}')
        inherited = {k: v for k, v in os.environ.items() if k != "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}
        self.env = {  # metadata in SQLite in the home unless env names a database
            **inherited,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            # airflow_local_settings: task-forking parents preload the LLM stack (as make run does)
            "PYTHONPATH": str(ROOT / "config"),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # only what a test unpauses runs
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{self.port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            **env_file(ROOT / "config" / "scheduler.env"),  # the scheduler settings make run ships
            **(env or {}),
        }
        self.proc = None

    # ---------------------------------------------------------------- life cycle

    def __enter__(self) -> AirflowStack:
        for command in (["airflow", "db", "migrate"], ["castmatch", "db", "upgrade"],
                        ["castmatch", "airflow-settings", "load", str(ROOT / "airflow_settings.yaml")]):
            done = subprocess.run([str(BIN / command[0]), *command[1:]], env=self.env, cwd=ROOT, capture_output=True,
                                  text=True)
            if done.returncode:
                raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
        self.log = open(self.home / "standalone.log", "w")
        self.proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5), 240,
                       "the Airflow API server")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if exc and exc[0] is not None:
            self.log.flush()
            print("".join((self.home / "standalone.log").read_text().splitlines(keepends=True)[-60:]), file=sys.stderr)
        if not self.keep:
            shutil.rmtree(self.home, ignore_errors=True)
