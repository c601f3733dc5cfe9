"""Makespan of a week DAG run by our operators against the fake Messages API server (a fixed latency
a call), against its *twin*: the same DAG with every task mirrored (same task ids, edges, trigger
rules, pool, priority, queue and outlets (assets of its own); EmptyOperators stay EmptyOperators, the go/no-go is a ``@task.branch``
choosing the same branch, gates are instant tasks) where only the work units sleep the call
latency. Both run in one Airflow (``airflow standalone``: the real scheduler, LocalExecutor), in
alternation, on the run's compressed clock (chosen at trigger time, as the roadmap does), so no
person has to answer anything.

Prints what it compared and how, each makespan (median of the runs), the critical-path bound, the
scheduler's idle CPU, the per-hop breakdown (scheduling gap, queue wait, time in the task beyond the
call), the critical path as it ran summed by what its time went to, and, last, ours/twin under the shipped settings (config/scheduler.env). Goal: <= 1.05.
``--sweep``: the same under each candidate scheduler setting (SWEEP), one Airflow each, as a table.
Env: BENCH_LATENCY (default 2 s), BENCH_RUNS (default 3; 1 with --sweep), BENCH_WEEKS (default: 1 and
the heaviest), BENCH_WARMUP (1 uncounted run of each first), BENCH_IDLE_SECONDS (30), AIRFLOW__CORE__PARALLELISM (default 8), BENCH_DATABASE
(postgres, the default: Airflow's metadata and the store on PostgreSQL as docker-compose deploys them;
sqlite: both embedded, as make run without a database server).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import airflow_bench_env, bench_databases  # noqa: E402

from castmatch.config import load_roadmap  # noqa: E402
from tests.airflow_stack import AirflowStack  # noqa: E402
from tests.fakes.fake_anthropic import FakeAnthropic  # noqa: E402

LATENCY = float(os.environ.get("BENCH_LATENCY", "2"))
PROBE_LATENCY = 0.3  # the Claude probe's 1-token query
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "1"))  # runs of each DAG first, not counted (the first is slower)
# Airflow's metadata and the CastMatch store: both on PostgreSQL (as docker-compose deploys them), or
# both embedded SQLite files (make run without a database server)
DATABASE = os.environ.get("BENCH_DATABASE", "postgres")


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
        outlets = [a.uri.replace("castmatch://", "bench-twin://", 1) for a in t.outlets]  # same events, own assets
        specs.append((t.task_id, kind, arg, getattr(t.trigger_rule, "value", t.trigger_rule), t.pool,
                      t.priority_weight, getattr(t.weight_rule, "value", t.weight_rule), t.queue, outlets))
    edges = sorted((up, t.task_id) for t in ours.tasks for up in t.upstream_task_ids)
    return f'''"""Twin of {ours.dag_id} for bench/makespan.py: same tasks, edges, trigger rules, pool, priority, queue, outlets."""
import datetime, time
from airflow.sdk import Asset, dag, task
from airflow.providers.standard.operators.empty import EmptyOperator

SPECS = {specs!r}
EDGES = {edges!r}

@dag(dag_id="{twin_id(week)}", schedule=None, start_date=datetime.datetime(2025, 1, 1), catchup=False,
     tags=["bench"], default_args={{"retries": 2}}, params={{"clock": "compressed"}})
def twin():
    tasks = {{}}
    for task_id, kind, arg, rule, pool, weight, weight_rule, queue, outlets in SPECS:
        common = dict(task_id=task_id, trigger_rule=rule, pool=pool, priority_weight=weight, weight_rule=weight_rule,
                      queue=queue, outlets=[Asset(uri) for uri in outlets])
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
    """The longest path through the week DAG as built, each work unit weighing the call latency and
    every other task nothing: what an infinitely fast Airflow would take. A gate waits for all the
    units it checks and holds back the units it guards, so the path runs through the gates (week 1:
    9 units in a row, 18 s at 2 s a call), not only along the units' own dependencies (6 units)."""
    from castmatch.factory import build_week_dag
    from castmatch.operators.agent import AgentOperator

    dag = build_week_dag(config, week)
    longest: dict[str, float] = {}

    def after(task) -> float:  # the longest path from ``task`` (itself included) to the DAG's end
        if task.task_id not in longest:
            own = latency if isinstance(task, AgentOperator) else 0.0
            longest[task.task_id] = own + max((after(t) for t in task.downstream_list), default=0.0)
        return longest[task.task_id]

    return max(after(t) for t in dag.tasks if not t.upstream_list)


def unit_chain(config, week: int, latency: float) -> float:
    """The longest chain of the week's units along their own dependencies only (gates ignored)."""
    depth: dict[str, int] = {}

    def d(unit_id: str) -> int:
        if unit_id not in depth:
            unit = config.work_units[unit_id]
            depth[unit_id] = 1 + max((d(x) for x in unit.depends_on if config.unit_week[x] == week), default=0)
        return depth[unit_id]

    return max(d(u.id) for u in config.weeks[week].work_units) * latency


def weeks_to_measure(config) -> list[int]:
    from castmatch.factory import build_week_dag

    if os.environ.get("BENCH_WEEKS"):
        return [int(w) for w in os.environ["BENCH_WEEKS"].split(",")]
    heaviest = max(config.week_numbers, key=lambda w: (len(build_week_dag(config, w).tasks), -w))
    return sorted({1, heaviest})


SWEEP = [  # (label, scheduler settings): Airflow's defaults, then faster loops
    ("Airflow defaults (idle sleep 1 s)", {"AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1"}),
    ("idle sleep 0.25 s", {"AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25"}),
    ("idle sleep 0.1 s", {"AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1"}),
]
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "30"))


def _when(value):
    import datetime as dt

    return dt.datetime.fromisoformat(value) if value else None


def hops(af, dag_id: str, run_id: str, dag, latency: float) -> dict:
    """Medians over the run's tasks: scheduling gap (last upstream end -> queued), queue wait (queued ->
    running) and, for the work units, the time in the task beyond the call latency."""
    from castmatch.operators.agent import AgentOperator

    tis = {t["task_id"]: t for t in af.task_instances(dag_id, run_id)}
    gaps, waits, overheads = [], [], []
    for task in dag.tasks:
        ti = tis.get(task.task_id)
        if not ti or ti["state"] != "success":
            continue
        queued, start, end = _when(ti.get("queued_when")), _when(ti["start_date"]), _when(ti["end_date"])
        ups = [_when(tis[u]["end_date"]) for u in task.upstream_task_ids if u in tis and tis[u]["end_date"]]
        if ups and queued:
            gaps.append((queued - max(ups)).total_seconds())
        if queued and start:
            waits.append((start - queued).total_seconds())
        if isinstance(task, AgentOperator) and start and end:
            overheads.append((end - start).total_seconds() - latency)
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    return {"gap": med(gaps), "wait": med(waits), "overhead": med(overheads), **realized_path(tis, dag, latency)}


def realized_path(tis: dict, dag, latency: float) -> dict:
    """The run's critical path as it happened (from the task that ended last, each step back to the
    upstream that ended last), its time summed by what it was spent on: scheduling gaps, queue
    waits, work units beyond the call, gates (our sensors' pokes; the twin's instant tasks), the rest."""
    from castmatch.operators.agent import AgentOperator
    from castmatch.operators.gate import GateSensor

    def end(task_id):
        return _when(tis[task_id]["end_date"]) if task_id in tis and tis[task_id]["end_date"] else None

    done = [t for t in dag.tasks if end(t.task_id)]
    if not done:
        return {}
    task = max(done, key=lambda t: end(t.task_id))
    spent = dict.fromkeys(("path_gap", "path_wait", "path_units", "path_gates", "path_other"), 0.0)
    spent["path_tasks"] = 0
    while task is not None:
        ti = tis[task.task_id]
        queued, start, finish = _when(ti.get("queued_when")), _when(ti["start_date"]), end(task.task_id)
        ups = [dag.get_task(u) for u in task.upstream_task_ids if end(u)]
        before = max(ups, key=lambda t: end(t.task_id)) if ups else None
        if before is not None and queued:
            spent["path_gap"] += (queued - end(before.task_id)).total_seconds()
        if queued and start:
            spent["path_wait"] += (start - queued).total_seconds()
        if start and finish:
            took = (finish - start).total_seconds()
            if isinstance(task, AgentOperator):
                spent["path_units"] += took - latency
            else:
                spent["path_gates" if isinstance(task, GateSensor) else "path_other"] += took
        spent["path_tasks"] += 1
        task = before
    return spent


CPU_KINDS = ("scheduler", "task processes", "api-server", "dag-processor", "triggerer", "PostgreSQL", "Redis",
             "bench (fake Claude)")
COMPONENTS = ("scheduler", "api-server", "dag-processor", "triggerer")  # of `airflow standalone`


def cpu_by_kind(af) -> dict[str, float]:
    """CPU seconds used so far, by kind of process: Airflow's components (the scheduler's children,
    running or reaped, are its LocalExecutor workers and the task processes they ran), the databases'
    (PostgreSQL's postmaster reaps its backends) and this process's (the fake Messages API server
    answering ours; the twin sends it nothing). Read between runs, the differences are a run's."""
    import psutil

    def own(proc) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    def reaped(proc) -> float:
        t = proc.cpu_times()
        return t.children_user + t.children_system

    spent = dict.fromkeys(CPU_KINDS, 0.0)
    for proc in psutil.Process(af.proc.pid).children():
        try:
            cmdline = " ".join(proc.cmdline())  # the API server retitles itself api_server
            kind = next((k for k in COMPONENTS if k in cmdline or k.replace("-", "_") in cmdline), None)
            if kind is None:
                continue
            below = "task processes" if kind == "scheduler" else kind
            spent[kind] += own(proc)
            spent[below] += reaped(proc) + sum(own(c) + reaped(c) for c in proc.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] in ("postgres", "postmaster"):
                spent["PostgreSQL"] += own(proc) + (reaped(proc) if proc.ppid() == 1 else 0.0)
            elif proc.info["name"] == "redis-server":
                spent["Redis"] += own(proc)
        except psutil.NoSuchProcess:
            continue
    spent["bench (fake Claude)"] = own(psutil.Process())
    return spent


def scheduler_cpu(af) -> float:
    """CPU seconds the scheduler (and its executor's workers) used so far."""
    spent = cpu_by_kind(af)
    return spent["scheduler"] + spent["task processes"]


def measure(config, weeks: list[int], server, settings: dict, runs: int) -> dict:
    """One Airflow with ``settings`` (over the shipped ones): the scheduler's idle CPU, then each week's
    twin and ours in alternation. Returns per week the median makespans and hop breakdowns."""
    import time

    from castmatch.factory import build_week_dag

    env = {**airflow_bench_env(server, f"cmbench:{os.getpid()}"), **settings}
    parallelism = int(os.environ.get("AIRFLOW__CORE__PARALLELISM", "8"))
    twins = {f"{twin_id(w)}.py": twin_source(config, w, LATENCY) for w in weeks}
    out = {}
    with bench_databases(DATABASE, "makespan") as databases, \
            AirflowStack({**env, **databases}, extra_dags=twins, parallelism=parallelism,
                         keep=bool(os.environ.get("BENCH_KEEP"))) as af:
        for w in weeks:
            af.unpause(f"castmatch_week_{w:02d}", twin_id(w))
        time.sleep(10)  # parsed and settled
        before = scheduler_cpu(af)
        time.sleep(IDLE_SECONDS)
        out["idle_cpu_per_min"] = (scheduler_cpu(af) - before) * 60 / IDLE_SECONDS
        for w in weeks:
            dag = build_week_dag(config, w)
            ours, twin, ours_hops, twin_hops = [], [], [], []
            for i in range(-WARMUP, runs):  # the warm-up runs (i < 0) are not counted
                for dag_id, spans, hop in ((twin_id(w), twin, twin_hops), (f"castmatch_week_{w:02d}", ours, ours_hops)):
                    cpu_before = cpu_by_kind(af)
                    run_id = af.trigger(dag_id, {"clock": "compressed"})
                    state = af.wait_run(dag_id, run_id, 900)
                    time.sleep(1)  # the last task processes reaped
                    cpu_after = cpu_by_kind(af)
                    if state != "success":
                        bad = [(t["task_id"], t["state"]) for t in af.task_instances(dag_id, run_id)
                               if t["state"] not in ("success", "skipped")]
                        raise SystemExit(f"{dag_id} run {run_id} ended {state}: {bad}")
                    if i < 0:
                        print(f"  week {w} warm-up run of {dag_id}: {af.makespan(dag_id, run_id):.1f} s (not counted)",
                              flush=True)
                        continue
                    spans.append(af.makespan(dag_id, run_id))
                    hop.append({**hops(af, dag_id, run_id, dag, LATENCY),
                                **{f"cpu {k}": cpu_after[k] - cpu_before[k] for k in CPU_KINDS}})
                if i >= 0:
                    print(f"  week {w} run {i + 1}: twin {twin[-1]:.1f} s, ours {ours[-1]:.1f} s", flush=True)
            out[w] = {"tasks": len(dag.tasks), "units": len(config.weeks[w].work_units),
                      "twin": statistics.median(twin), "ours": statistics.median(ours),
                      "run_ratios": [o / t for o, t in zip(ours, twin, strict=True)],
                      "twin_hops": {k: statistics.median(h[k] for h in twin_hops) for k in twin_hops[0]},
                      "ours_hops": {k: statistics.median(h[k] for h in ours_hops) for k in ours_hops[0]}}
    return out


def _hop_line(label: str, h: dict) -> str:
    return (f"{label}: scheduling gap {h['gap']:.2f} s, queue wait {h['wait']:.2f} s, "
            f"in-task beyond the call {h['overhead']:.2f} s")


def _path_line(label: str, h: dict) -> str:
    return (f"{label}: {h['path_tasks']:.0f} tasks, scheduling gaps {h['path_gap']:.2f} s, queue waits "
            f"{h['path_wait']:.2f} s, units beyond the call {h['path_units']:.2f} s, gates {h['path_gates']:.2f} s, "
            f"other tasks {h['path_other']:.2f} s")


def main() -> None:
    config = load_roadmap()
    weeks = weeks_to_measure(config)
    capacities = sorted({a.capacity for a in config.agents.values()})
    parallelism = int(os.environ.get("AIRFLOW__CORE__PARALLELISM", "8"))
    sweep = "--sweep" in sys.argv
    candidates = SWEEP if sweep else [("shipped (config/scheduler.env)", {})]
    runs = int(os.environ.get("BENCH_RUNS", "1" if sweep else str(RUNS)))
    print(f"compared: castmatch_week_NN (AgentOperators, GateSensors, go/no-go, week_complete) against its "
          f"twin (same {'/'.join('tasks edges trigger-rules pool priority queue outlets'.split())}; only work units sleep "
          f"{LATENCY:g} s); Claude: fake Messages API, {LATENCY:g} s a deliverable, {PROBE_LATENCY:g} s the "
          f"probe's 1-token query; clock: compressed (chosen per run); LocalExecutor, parallelism "
          f"{parallelism}, one pool per agent of {'/'.join(map(str, capacities))} slot(s) (team.yaml capacity); "
          f"{runs} alternating run(s) each; databases: {DATABASE} (Airflow metadata and store); shipped scheduler "
          f"settings: {shipped_settings() or 'none'}", flush=True)
    results = []
    with FakeAnthropic(latency=LATENCY, tiny_latency=PROBE_LATENCY) as server:
        for label, settings in candidates:
            print(f"== {label} {settings or ''}", flush=True)
            results.append((label, measure(config, weeks, server, settings, runs)))
        calls = [r for r in server.requests if r.path == "/v1/messages"]
        print(f"Messages API calls: {len(calls)} ({sum(1 for r in calls if (r.body or {}).get('max_tokens') == 1)} "
              "of them the Claude probe)")
    ratios = []
    print()
    print("| scheduler setting | week | twin | ours | ours / twin | ours / critical path | scheduler idle CPU s/min |")
    print("|---|---|---|---|---|---|---|")
    for label, out in results:
        for w in weeks:
            r = out[w]
            bound = critical_path(config, w, LATENCY)
            print(f"| {label} | {w} ({r['tasks']} tasks, {r['units']} units) | {r['twin']:.1f} s | {r['ours']:.1f} s | "
                  f"{r['ours'] / r['twin']:.2f} | {r['ours'] / bound:.2f} (bound {bound:.0f} s; units' own chain "
                  f"{unit_chain(config, w, LATENCY):.0f} s) | {out['idle_cpu_per_min']:.2f} |")
    for label, out in results:
        for w in weeks:
            print(f"{label}, week {w}: " + _hop_line("twin", out[w]["twin_hops"]) + "; " + _hop_line("ours", out[w]["ours_hops"]))
            print(f"{label}, week {w}, CPU seconds a run used, by process (medians), twin / ours: " + ", ".join(
                f"{k} {out[w]['twin_hops'][f'cpu {k}']:.1f} / {out[w]['ours_hops'][f'cpu {k}']:.1f}" for k in CPU_KINDS)
                + f"; all {sum(out[w]['twin_hops'][f'cpu {k}'] for k in CPU_KINDS):.1f} / "
                f"{sum(out[w]['ours_hops'][f'cpu {k}'] for k in CPU_KINDS):.1f} (this machine has "
                f"{os.cpu_count()} cores)")
            print(f"{label}, week {w}, the critical path as it ran (medians): " + _path_line("twin", out[w]["twin_hops"])
                  + "; " + _path_line("ours", out[w]["ours_hops"]))
    shipped = results[-1][1] if not sweep else None
    if shipped:
        ratios = [shipped[w]["ours"] / shipped[w]["twin"] for w in weeks]
        for w in weeks:
            pairs = shipped[w]["run_ratios"]
            print(f"week {w}, ours/twin run by run (each run of ours over the twin's run before it): median "
                  f"{statistics.median(pairs):.3f}, {min(pairs):.3f}-{max(pairs):.3f} over {len(pairs)} runs")
        print(f"ratio ours/twin under the shipped settings (medians of the runs; worst of weeks "
              f"{', '.join(map(str, weeks))}): {max(ratios):.3f}")
    else:
        best = min(results, key=lambda r: max(r[1][w]["twin"] for w in weeks))
        print(f"fastest Airflow (twin) under: {best[0]}; ratio ours/twin there (worst week): "
              f"{max(best[1][w]['ours'] / best[1][w]['twin'] for w in weeks):.2f}")


def shipped_settings() -> dict:
    """The scheduler settings every Airflow of ours starts with (config/scheduler.env)."""
    from tests.airflow_stack import env_file

    return env_file(ROOT / "config" / "scheduler.env")


if __name__ == "__main__":
    main()
