"""Scale-out: N roadmap runs of the first two weeks at once (N = 1, 2, 4), on LocalExecutor
(``airflow standalone``) and on CeleryExecutor with two workers (``scripts/celery_stack.sh``), on
this machine, with the same task slots, the same PostgreSQL metadata database engine, the same
agent pool and the fake Messages API answering every deliverable in 2 s.

A run is week 1 then week 2 of one roadmap run (the weeks join it through ``roadmap_run_id``, as
the driver's weeks do), triggered the moment the previous one succeeded. At 2 s a call, the
API-response-time KPI (< 2 s) fails by design and week 2's day-14 decision is NO-GO: the bench
overturns it 2 s after it is asked, on both executors alike, as a person would in the UI. Prints, per executor and
N, each run's makespan (first trigger to week 2's end) and the units delivered per minute over the
batch; last, Celery's throughput over LocalExecutor's at each N.

Env: BENCH_N (default 1,2,4), BENCH_LATENCY (default 2 s), BENCH_SLOTS (task slots: Local
parallelism, Celery 2 workers x slots/2, and the agent pool; default 8), BENCH_EXECUTORS
(default local,celery).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import PG, airflow_bench_env  # noqa: E402
from _common import pg_database as database  # noqa: E402

from castmatch.config import load_roadmap  # noqa: E402
from castmatch.operators.decision import OVERTURN  # noqa: E402
from tests.airflow_stack import AirflowApi, AirflowStack, free_port, wait_until  # noqa: E402
from tests.fakes.fake_anthropic import FakeAnthropic  # noqa: E402

NS = [int(n) for n in os.environ.get("BENCH_N", "1,2,4").split(",")]
LATENCY = float(os.environ.get("BENCH_LATENCY", "2"))
PROBE_LATENCY = 0.3
SLOTS = int(os.environ.get("BENCH_SLOTS", "8"))
EXECUTORS = os.environ.get("BENCH_EXECUTORS", "local,celery").split(",")
WEEKS = ("castmatch_week_01", "castmatch_week_02")


def batch(api: AirflowApi, n: int, tag: str) -> dict:
    """``n`` runs of weeks 1-2 at once; each run's makespan and the batch's units per minute."""
    runs = {f"bench_scale_{tag}_{n}_{i}": {"week": 0} for i in range(n)}
    started = time.monotonic()

    def next_week(run: str, state: dict) -> None:
        state["airflow_run"] = api.trigger(WEEKS[state["week"]], {"roadmap_run_id": run, "clock": "compressed"})

    for run, state in runs.items():
        next_week(run, state)

    asked: dict[str, float] = {}

    def all_done() -> bool:
        for dag_id in WEEKS:  # a NO-GO review: overturned as a person would in the UI (see module doc)
            for request in api.pending_hitl(dag_id):
                key = request["task_instance"]["dag_run_id"] + request["task_instance"]["task_id"]
                if time.monotonic() - asked.setdefault(key, time.monotonic()) >= 2:  # a person reads first
                    api.answer_hitl(request, OVERTURN, "bench: the fake's 2 s a call fails the <2 s KPI")
        for run, state in runs.items():
            if "end" in state:
                continue
            result = api.run_state(WEEKS[state["week"]], state["airflow_run"])
            if result == "failed":
                raise SystemExit(f"{WEEKS[state['week']]} {state['airflow_run']} failed")
            if result == "success":
                state["week"] += 1
                if state["week"] == len(WEEKS):
                    state["end"] = time.monotonic() - started
                else:
                    next_week(run, state)
        return all("end" in s for s in runs.values())

    wait_until(all_done, 1800, f"{n} runs of weeks 1-2", every=0.5)
    makespans = sorted(s["end"] for s in runs.values())
    return {"makespans": makespans, "elapsed": makespans[-1]}


def roadmap_copy(tmp: Path) -> Path:
    """The CastMatch roadmap with the agent pool as large as the task slots."""
    dest = tmp / "roadmap"
    shutil.copytree(ROOT / "include" / "roadmaps" / "castmatch", dest)
    llm = dest / "llm.yaml"
    llm.write_text(llm.read_text().replace("agent_pool_slots: 4", f"agent_pool_slots: {SLOTS}"))
    return dest


def measure(executor: str, env: dict, units_per_run: int) -> dict[int, dict]:
    results = {}
    tag = uuid.uuid4().hex[:6]
    if executor == "local":
        with AirflowStack(env, parallelism=SLOTS) as af:
            af.unpause(*WEEKS)
            for n in NS:
                results[n] = batch(af, n, f"{executor}{tag}")
                report(executor, n, results[n], units_per_run)
        return results
    port = free_port()
    name = f"cmscale{tag}"
    stack_env = {**os.environ, **env, "CELERY_STACK_DIR": str(Path(env["BENCH_TMP"]) / "celery"), "CELERY_STACK_NAME": name,
                 "CELERY_STACK_PORT": str(port), "CELERY_STACK_PG": PG,
                 "AIRFLOW__CORE__PARALLELISM": str(SLOTS), "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(SLOTS // 2)}
    stack = ["bash", str(ROOT / "scripts" / "celery_stack.sh")]
    try:
        started = subprocess.run([*stack, "start"], env=stack_env, capture_output=True, text=True)
        if started.returncode:
            raise SystemExit(started.stdout + started.stderr)
        api = AirflowApi(port)
        api.unpause(*WEEKS)
        for n in NS:
            results[n] = batch(api, n, f"{executor}{tag}")
            report(executor, n, results[n], units_per_run)
    finally:
        subprocess.run([*stack, "clean"], env=stack_env, capture_output=True, text=True)
    return results


def report(executor: str, n: int, result: dict, units_per_run: int) -> None:
    rate = units_per_run * n / result["elapsed"] * 60
    result["units_per_minute"] = rate
    print(f"{executor:6s} N={n}: makespan per run {', '.join(f'{m:.1f}' for m in result['makespans'])} s "
          f"(median {statistics.median(result['makespans']):.1f} s); {units_per_run * n} units in "
          f"{result['elapsed']:.1f} s = {rate:.1f} units/min", flush=True)


def main() -> None:
    config = load_roadmap()
    units_per_run = sum(len(config.weeks[w].work_units) for w in (1, 2))
    tmp = Path(tempfile.mkdtemp(prefix="cm-bench-scale-"))
    results = {}
    with FakeAnthropic(latency=LATENCY, tiny_latency=PROBE_LATENCY) as server:
        print(f"compared: {len(NS)} batches (N = {', '.join(map(str, NS))} runs of weeks 1-2 at once, "
              f"{units_per_run} units a run) on LocalExecutor (airflow standalone, parallelism {SLOTS}) and "
              f"CeleryExecutor (2 workers x {SLOTS // 2}); PostgreSQL metadata for both; agent pool {SLOTS} slots; "
              f"Claude: fake Messages API, {LATENCY:g} s a deliverable; clock: compressed", flush=True)
        for executor in EXECUTORS:
            store = database("create", f"cm_bench_scale_{executor}_{os.getpid()}")
            metadata = database("create", f"cm_bench_scale_{executor}_{os.getpid()}_af")
            env = {
                **airflow_bench_env(server, f"cmbench:scale:{executor}:{os.getpid()}"),
                "BENCH_TMP": str(tmp), "CASTMATCH_ROADMAP_DIR": str(roadmap_copy(tmp / executor)),
                "CASTMATCH_DATABASE_URL": store, "CASTMATCH_OFFLINE_CHECKS": "accept",
            }
            if executor == "local":
                env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata
            else:
                database("drop", metadata.rsplit("/", 1)[1])  # the script makes its own
            (tmp / executor).mkdir(exist_ok=True)
            try:
                results[executor] = measure(executor, env, units_per_run)
            finally:
                database("drop", store.rsplit("/", 1)[1])
                if executor == "local":
                    database("drop", metadata.rsplit("/", 1)[1])
        calls = [r for r in server.requests if r.path == "/v1/messages"]
        print(f"Messages API calls: {len(calls)}")
    shutil.rmtree(tmp, ignore_errors=True)
    if {"local", "celery"} <= set(results):
        for n in NS:
            ratio = results["celery"][n]["units_per_minute"] / results["local"][n]["units_per_minute"]
            print(f"N={n}: throughput celery/local {ratio:.2f}")


if __name__ == "__main__":
    main()
