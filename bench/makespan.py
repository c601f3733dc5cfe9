"""Makespan of week 1 run by our AgentOperators against the fake Messages API server (fixed latency
a call), against the same topology as plain ``@task``s sleeping that latency, both under the real
scheduler (``airflow standalone``: LocalExecutor) in one Airflow instance, in one run.

Prints each makespan (median of the runs), the critical-path bound and, last, our/plain ratio.
Goal (issue 3): <= 1.10.  Env: BENCH_LATENCY (default 2 s), BENCH_RUNS (default 2),
AIRFLOW__CORE__PARALLELISM (default 8).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from castmatch.config import load_roadmap  # noqa: E402
from tests.fakes.fake_anthropic import FakeAnthropic  # noqa: E402

LATENCY = float(os.environ.get("BENCH_LATENCY", "2"))
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
PLAIN_DAG_ID = "bench_plain_week_01"
OUR_DAG_ID = "castmatch_week_01"


def plain_dag_source(config, latency: float) -> str:
    """The same tasks and edges as our week 1 DAG (gates included, as instant tasks)."""
    from castmatch.factory import build_week_dag

    ours = build_week_dag(config, 1)
    tasks = {t.task_id: (0.0 if t.task_id.startswith("gate_") else latency) for t in ours.tasks}
    edges = [(up, t.task_id) for t in ours.tasks for up in sorted(t.upstream_task_ids)]
    return f'''"""Plain @task peer of castmatch_week_01 for the Airflow makespan benchmark."""
import datetime, time
from airflow.sdk import dag, task

@dag(dag_id="{PLAIN_DAG_ID}", schedule=None, start_date=datetime.datetime(2025, 1, 1), catchup=False,
     tags=["bench"], default_args={{"retries": 2}})
def plain():
    tasks = {{}}
    for task_id, seconds in {tasks!r}.items():
        @task(task_id=task_id)
        def work(seconds=seconds):
            time.sleep(seconds)
        tasks[task_id] = work()
    for up, down in {edges!r}:
        tasks[up] >> tasks[down]

plain()
'''


def critical_path(config, latency: float) -> float:
    week = config.weeks[1]
    depth: dict[str, int] = {}

    def d(unit_id: str) -> int:
        if unit_id not in depth:
            unit = config.work_units[unit_id]
            depth[unit_id] = 1 + max((d(x) for x in unit.depends_on if config.unit_week[x] == 1), default=0)
        return depth[unit_id]

    return max(d(u.id) for u in week.work_units) * latency  # gates take no time in the bound


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str, user: str, password: str):
        self.base = base
        self.user, self.password = user, password
        self.token = None

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        if self.token is None and path != "/auth/token":
            self.token = self._request("POST", "/auth/token", {"username": self.user, "password": self.password})["access_token"]
        req = urllib.request.Request(self.base + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def get(self, path):
        return self._request("GET", path)

    def post(self, path, body):
        return self._request("POST", path, body)

    def patch(self, path, body):
        return self._request("PATCH", path, body)


def wait_until(predicate, timeout: float, what: str, every: float = 1.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = predicate()
            if value:
                return value
        except Exception:
            pass
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def run_once(api: Api, dag_id: str) -> float:
    run = api.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
    run_id = run["dag_run_id"]

    def finished():
        r = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return r if r["state"] in ("success", "failed") else None

    r = wait_until(finished, 900, f"{dag_id} run", every=0.5)
    if r["state"] != "success":
        raise SystemExit(f"{dag_id} run {run_id} ended {r['state']}")
    tis = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
    import datetime as dt

    starts = [dt.datetime.fromisoformat(t["start_date"]) for t in tis]
    ends = [dt.datetime.fromisoformat(t["end_date"]) for t in tis]
    return (max(ends) - min(starts)).total_seconds()


def main() -> None:
    config = load_roadmap()
    bound = critical_path(config, LATENCY)
    home = Path(tempfile.mkdtemp(prefix="cm-bench-makespan-"))
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "castmatch_roadmap.py", dags / "castmatch_roadmap.py")
    (dags / "bench_plain_week_01.py").write_text(plain_dag_source(config, LATENCY))
    port = free_port()
    (home / "passwords.json").write_text('{"admin": "admin"}')
    server = FakeAnthropic(latency=LATENCY).start()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        # airflow_local_settings: the scheduler preloads the LLM stack for its forked task processes
        "PYTHONPATH": str(ROOT / "config") if not os.environ.get("BENCH_NO_PRELOAD") else "",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # only the two measured DAGs run
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "8"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "CASTMATCH_LLM": "live",
        "AIRFLOW_CONN_CASTMATCH_REDIS": "redis://127.0.0.1:6379/0",
        "AIRFLOW_CONN_CASTMATCH_POSTGRES": "postgres://postgres@127.0.0.1:5432/postgres",
        "CASTMATCH_DATABASE_URL": f"sqlite:///{home / 'castmatch.db'}",
        "CASTMATCH_REDIS_URL": os.environ.get("CASTMATCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "CASTMATCH_REDIS_PREFIX": f"cmbench:{port}",
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps({"conn_type": "anthropic", "password": server.api_key, "host": server.url}),
    }
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([str(bin_dir / "castmatch"), "db", "upgrade"], env=env, check=True, capture_output=True)
    log = open(home / "standalone.log", "w")
    proc = subprocess.Popen([str(bin_dir / "airflow"), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        api = Api(f"http://localhost:{port}", "admin", "admin")
        wait_until(lambda: urllib.request.urlopen(f"http://localhost:{port}/api/v2/monitor/health", timeout=5), 240,
                   "the API server")
        for dag_id in (OUR_DAG_ID, PLAIN_DAG_ID):
            wait_until(lambda d=dag_id: api.get(f"/api/v2/dags/{d}"), 240, f"{dag_id} to be parsed")
            api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
        from castmatch.factory import build_week_dag

        n_tasks = len(build_week_dag(config, 1).tasks)
        print(f"week 1: {n_tasks} tasks ({len(config.weeks[1].work_units)} work units, the rest gates and go/no-go), "
              f"latency {LATENCY:g} s a call, {RUNS} run(s) each, "
              f"parallelism {env['AIRFLOW__CORE__PARALLELISM']}")
        ours, plain = [], []
        for i in range(RUNS):  # alternate, so both see the same machine state
            plain.append(run_once(api, PLAIN_DAG_ID))
            ours.append(run_once(api, OUR_DAG_ID))
            print(f"run {i + 1}: plain {plain[-1]:.1f} s, ours {ours[-1]:.1f} s")
        calls = len([r for r in server.requests if r.path == "/v1/messages"])
        o, p = statistics.median(ours), statistics.median(plain)
        print(f"critical-path bound: {bound:.1f} s")
        print(f"plain @task makespan: {p:.1f} s")
        print(f"AgentOperator makespan: {o:.1f} s ({calls} Messages API calls)")
        print(f"ratio ours/plain: {o / p:.2f}")
    except BaseException:
        log.flush()
        print("".join((home / "standalone.log").read_text().splitlines(keepends=True)[-40:]), file=sys.stderr)
        raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        server.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept {home}")


if __name__ == "__main__":
    main()
