"""Makespan of a week DAG run by our operators against the fake Messages API server (a fixed latency
a call), against its *twin*: the same DAG with every task mirrored (same task ids, edges, trigger
rules, pool, priority and queue; EmptyOperators stay EmptyOperators, the go/no-go is a ``@task.branch``
choosing the same branch, gates are instant tasks) where only the work units sleep the call
latency. Both run in one Airflow (``airflow standalone``: the real scheduler, LocalExecutor), in
alternation, on the run's compressed clock (chosen at trigger time, as the roadmap does), so no
person has to answer anything.

Prints what it compared and how, each makespan (median of the runs), the critical-path bound and,
last, ours/twin. Goal: <= 1.10 on week 1 and on the heaviest week.
Env: BENCH_LATENCY (default 2 s), BENCH_RUNS (default 3), BENCH_WEEKS (default: 1 and the
heaviest), AIRFLOW__CORE__PARALLELISM (default 8).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from castmatch.config import load_roadmap  # noqa: E402
from tests.airflow_stack import AirflowStack  # noqa: E402
from tests.fakes.fake_anthropic import FakeAnthropic  # noqa: E402

LATENCY = float(os.environ.get("BENCH_LATENCY", "2"))
PROBE_LATENCY = 0.3  # the Claude probe's 1-token query
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def twin_id(week: int) -> str:
    return f"bench_twin_week_{week:02d}"


def twin_source(config, week: int, latency: float) -> str:
    """A DAG file mirroring our week DAG task for task; only AgentOperators do (sleep) work."""
    from airflow.providers.standard.operators.empty import EmptyOperator

    from castmatch.factory import build_week_dag
    from castmatch.operators.agent import AgentOperator
    from castmatch.operators.decision import GoNoGoOperator, go_task_id

    ours = build_week_dag(config, week)
    specs = []
    for t in ours.tasks:
        if isinstance(t, EmptyOperator):
            kind, arg = "empty", None
        elif isinstance(t, GoNoGoOperator):
            kind, arg = "branch", go_task_id(t.decision_point)  # the branch ours takes on a healthy run
        elif getattr(t, "inherits_from_skipmixin", False):  # the HITL tasks (never asked on a healthy run)
            kind, arg = "branch", sorted(t.downstream_task_ids)[0]
        else:
            kind, arg = "work", latency if isinstance(t, AgentOperator) else 0.0
        specs.append((t.task_id, kind, arg, getattr(t.trigger_rule, "value", t.trigger_rule), t.pool,
                      t.priority_weight, getattr(t.weight_rule, "value", t.weight_rule), t.queue))
    edges = sorted((up, t.task_id) for t in ours.tasks for up in t.upstream_task_ids)
    return f'''"""Twin of {ours.dag_id} for bench/makespan.py: same tasks, edges, trigger rules, pool, priority, queue."""
import datetime, time
from airflow.sdk import dag, task
from airflow.providers.standard.operators.empty import EmptyOperator

SPECS = {specs!r}
EDGES = {edges!r}

@dag(dag_id="{twin_id(week)}", schedule=None, start_date=datetime.datetime(2025, 1, 1), catchup=False,
     tags=["bench"], default_args={{"retries": 2}}, params={{"clock": "compressed"}})
def twin():
    tasks = {{}}
    for task_id, kind, arg, rule, pool, weight, weight_rule, queue in SPECS:
        common = dict(task_id=task_id, trigger_rule=rule, pool=pool, priority_weight=weight, weight_rule=weight_rule,
                      queue=queue)
        if kind == "empty":
            tasks[task_id] = EmptyOperator(**common)
        elif kind == "branch":
            @task.branch(**common)
            def choose(follow=arg):
                return follow
            tasks[task_id] = choose()
        else:
            @task(**common)
            def work(seconds=arg):
                time.sleep(seconds)
            tasks[task_id] = work()
    for up, down in EDGES:
        tasks[up] >> tasks[down]

twin()
'''


def critical_path(config, week: int, latency: float) -> float:
    depth: dict[str, int] = {}

    def d(unit_id: str) -> int:
        if unit_id not in depth:
            unit = config.work_units[unit_id]
            depth[unit_id] = 1 + max((d(x) for x in unit.depends_on if config.unit_week[x] == week), default=0)
        return depth[unit_id]

    return max(d(u.id) for u in config.weeks[week].work_units) * latency  # gates take no time in the bound


def weeks_to_measure(config) -> list[int]:
    from castmatch.factory import build_week_dag

    if os.environ.get("BENCH_WEEKS"):
        return [int(w) for w in os.environ["BENCH_WEEKS"].split(",")]
    heaviest = max(config.week_numbers, key=lambda w: (len(build_week_dag(config, w).tasks), -w))
    return sorted({1, heaviest})


def main() -> None:
    from castmatch.factory import build_week_dag

    config = load_roadmap()
    weeks = weeks_to_measure(config)
    pool, slots = config.agent_pool
    parallelism = int(os.environ.get("AIRFLOW__CORE__PARALLELISM", "8"))
    with FakeAnthropic(latency=LATENCY, tiny_latency=PROBE_LATENCY) as server:
        env = {
            "CASTMATCH_LLM": "live",
            "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps({"conn_type": "anthropic", "password": server.api_key,
                                                          "host": server.url}),
            "AIRFLOW_CONN_CASTMATCH_REDIS": "redis://127.0.0.1:6379/0",
            "AIRFLOW_CONN_CASTMATCH_POSTGRES": "postgres://postgres@127.0.0.1:5432/postgres",
            "CASTMATCH_REDIS_URL": os.environ.get("CASTMATCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "CASTMATCH_REDIS_PREFIX": f"cmbench:{os.getpid()}",
            "CASTMATCH_CLOCK": "",  # parsed on the roadmap's own (real) clock: each run chooses compressed
        }
        twins = {f"{twin_id(w)}.py": twin_source(config, w, LATENCY) for w in weeks}
        with AirflowStack(env, extra_dags=twins, parallelism=parallelism, keep=bool(os.environ.get("BENCH_KEEP"))) as af:
            for w in weeks:
                af.unpause(f"castmatch_week_{w:02d}", twin_id(w))
            print(f"compared: castmatch_week_NN (AgentOperators, GateSensors, go/no-go, week_complete) against its "
                  f"twin (same {'/'.join('tasks edges trigger-rules pool priority queue'.split())}; only work units sleep "
                  f"{LATENCY:g} s); Claude: fake Messages API, {LATENCY:g} s a deliverable, {PROBE_LATENCY:g} s the "
                  f"probe's 1-token query; clock: compressed (chosen per run); LocalExecutor, parallelism "
                  f"{parallelism}, pool {pool} of {slots} slots; {RUNS} alternating run(s) each")
            ratios = []
            for w in weeks:
                dag = build_week_dag(config, w)
                ours, twin = [], []
                for i in range(RUNS):
                    for dag_id, out in ((twin_id(w), twin), (f"castmatch_week_{w:02d}", ours)):
                        run_id = af.trigger(dag_id, {"clock": "compressed"})
                        state = af.wait_run(dag_id, run_id, 900)
                        if state != "success":
                            bad = [(t["task_id"], t["state"]) for t in af.task_instances(dag_id, run_id)
                                   if t["state"] not in ("success", "skipped")]
                            raise SystemExit(f"{dag_id} run {run_id} ended {state}: {bad}")
                        out.append(af.makespan(dag_id, run_id))
                    print(f"week {w} run {i + 1}: twin {twin[-1]:.1f} s, ours {ours[-1]:.1f} s")
                o, t = statistics.median(ours), statistics.median(twin)
                ratios.append(o / t)
                print(f"week {w}: {len(dag.tasks)} tasks ({len(config.weeks[w].work_units)} work units); "
                      f"critical path {critical_path(config, w, LATENCY):.1f} s; twin {t:.1f} s; ours {o:.1f} s; "
                      f"ours/twin {o / t:.2f}")
            calls = [r for r in server.requests if r.path == "/v1/messages"]
            print(f"Messages API calls: {len(calls)} ({sum(1 for r in calls if (r.body or {}).get('max_tokens') == 1)} "
                  "of them the Claude probe)")
    print(f"ratio ours/twin (worst of weeks {', '.join(map(str, weeks))}): {max(ratios):.2f}")


if __name__ == "__main__":
    main()
