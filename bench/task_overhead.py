"""Per-task overhead of our operators against a plain ``@task`` doing the same sleep, with a
breakdown by step.

Runs week 1 of ours and its twin (bench/makespan.py's: the same tasks, edges, trigger rules, pools
and priorities; the twin's work units are ``@task``s sleeping the call latency, its gates and
decision instant tasks) in one Airflow, in alternation, **one task at a time** (parallelism 1), so
a task never waits for a core and its duration (start to end, as Airflow records it: the task
process, the DAG file's parse, the operator, reporting the state) is its own. Claude is the fake
Messages API answering in BENCH_LATENCY.

Per operator kind, the median of (our task's duration - its twin's duration) is what our operator
costs beyond Airflow's own per-task cost; the steps come from the operators' log lines
(``castmatch.timing``), the rest of the task (task process, DAG-file parse, state report) is the
residual. The LLM call (and the gate's Claude probe) is excluded from "beyond the call".
Prints a table; last, the AgentOperator's time beyond the call over the plain task's.
Env: BENCH_LATENCY (default 0.5 s), BENCH_RUNS (default 2), BENCH_DATABASE (postgres | sqlite),
BENCH_PARALLELISM (default 1; 8 with BENCH_LATENCY=2 puts the tasks under bench/makespan.py's load, to
see which steps stretch when tasks share the cores).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import airflow_bench_env, bench_databases  # noqa: E402
from makespan import DATABASE, PROBE_LATENCY, _when, twin_id, twin_source  # noqa: E402

from castmatch.config import load_roadmap  # noqa: E402
from castmatch.timing import parse_line  # noqa: E402
from tests.airflow_stack import AirflowStack  # noqa: E402
from tests.fakes.fake_anthropic import FakeAnthropic  # noqa: E402

LATENCY = float(os.environ.get("BENCH_LATENCY", "0.5"))
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
PARALLELISM = int(os.environ.get("BENCH_PARALLELISM", "1"))
WEEK = 1


def kind_of(task) -> str:
    """What the benchmark groups a task under: its operator's class."""
    return type(task).__name__


def durations(af, dag_id: str, run_id: str) -> dict[str, float]:
    """Each successful task's duration (start to end) in seconds."""
    out = {}
    for ti in af.task_instances(dag_id, run_id):
        start, end = _when(ti["start_date"]), _when(ti["end_date"])
        if ti["state"] == "success" and start and end:
            out[ti["task_id"]] = (end - start).total_seconds()
    return out


def step_timings(home: Path, dag_id: str, run_id: str) -> dict[str, dict[str, float]]:
    """The step timings each task of the run logged (its last poke for a sensor), by task id, with
    the DAG-file parse Airflow's task runner logs (``dag_file_parse_ms``) as step ``dag_file_parse``."""
    out = {}
    for log in (home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}").glob("task_id=*/attempt=*.log"):
        task_id = log.parent.name.removeprefix("task_id=")
        parse_ms = None
        for line in log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "dag_file_parse_ms" in record:
                parse_ms = float(record["dag_file_parse_ms"])
            found = parse_line(str(record.get("event", "")))
            if found:
                out[task_id] = found
        if parse_ms is not None:
            out.setdefault(task_id, {})["dag_file_parse"] = parse_ms
    return out


def main() -> None:
    from castmatch.factory import build_week_dag

    config = load_roadmap()
    dag = build_week_dag(config, WEEK)
    kinds = {t.task_id: kind_of(t) for t in dag.tasks}
    ours_id, twin = dag.dag_id, twin_id(WEEK)
    print(f"compared: each task of {ours_id} ({len(dag.tasks)} tasks) against the same task of its twin (a plain "
          f"@task sleeping {LATENCY:g} s for a work unit, an instant task for the rest); "
          f"{'one task at a time' if PARALLELISM == 1 else 'tasks sharing the cores'} "
          f"(LocalExecutor, parallelism {PARALLELISM}); Claude: fake Messages API, {LATENCY:g} s a deliverable, "
          f"{PROBE_LATENCY:g} s the gate probe's 1-token query; databases: {DATABASE}; {RUNS} alternating run(s)",
          flush=True)
    per_task: dict[str, list[float]] = {}
    beyond_call: dict[str, list[float]] = {}
    twin_spans: dict[str, list[float]] = {}
    steps: dict[str, list[dict[str, float]]] = {}
    twin_steps: dict[str, list[dict[str, float]]] = {}
    with FakeAnthropic(latency=LATENCY, tiny_latency=PROBE_LATENCY) as server, \
            bench_databases(DATABASE, "overhead") as databases, \
            AirflowStack({**airflow_bench_env(server, f"cmbench:overhead:{os.getpid()}"), **databases},
                         extra_dags={f"{twin}.py": twin_source(config, WEEK, LATENCY)}, parallelism=PARALLELISM) as af:
        af.unpause(ours_id, twin)
        for i in range(RUNS):
            for dag_id in (twin, ours_id):
                run_id = af.trigger(dag_id, {"clock": "compressed"})
                state = af.wait_run(dag_id, run_id, 900)
                if state != "success":
                    raise SystemExit(f"{dag_id} run {run_id} ended {state}")
                spans = durations(af, dag_id, run_id)
                if dag_id == twin:
                    for task_id, seconds in spans.items():
                        twin_spans.setdefault(task_id, []).append(seconds)
                    for task_id, timing in step_timings(af.home, dag_id, run_id).items():
                        twin_steps.setdefault(task_id, []).append(timing)
                else:
                    timings = step_timings(af.home, dag_id, run_id)
                    for task_id, seconds in spans.items():
                        per_task.setdefault(task_id, []).append(seconds)
                        # this task's own call (a gate's poke calls the Claude probe only when its
                        # sample is stale, so a median call per kind would misstate it)
                        call = timings.get(task_id, {}).get("llm_call", 0.0) / 1000
                        beyond_call.setdefault(task_id, []).append(seconds - call)
                    for task_id, timing in timings.items():
                        steps.setdefault(task_id, []).append(timing)
            print(f"  run {i + 1} done", flush=True)

    print()
    print("| operator | tasks | ours: task duration | twin: task duration | ours - twin | of which the call | "
          "beyond the call |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for kind in sorted(set(kinds.values())):
        ids = [t for t in kinds if kinds[t] == kind and t in per_task and t in twin_spans]
        if not ids:
            continue
        ours_med = statistics.median(statistics.median(per_task[t]) for t in ids)
        twin_med = statistics.median(statistics.median(twin_spans[t]) for t in ids)
        ours_beyond = statistics.median(statistics.median(beyond_call[t]) for t in ids)
        call = ours_med - ours_beyond  # the columns add up: duration = call + beyond
        twin_call = LATENCY if kind == "AgentOperator" else 0.0  # what the twin's task sleeps
        beyond = ours_beyond - (twin_med - twin_call)
        summary[kind] = {"ours": ours_med, "twin": twin_med, "call": call, "beyond": beyond,
                         "twin_beyond": twin_med - twin_call}
        print(f"| {kind} | {len(ids)} | {ours_med:.3f} s | {twin_med:.3f} s | {ours_med - twin_med:+.3f} s | "
              f"{call:.3f} s | {beyond:+.3f} s |")
    print()
    twin_parse = {kind: statistics.median([s.get("dag_file_parse", 0.0) for t in kinds if kinds[t] == kind
                                           for s in twin_steps.get(t, [])] or [0.0]) for kind in summary}
    for kind in sorted(summary):
        ids = [t for t in kinds if kinds[t] == kind]
        logged = [s for t in ids for s in steps.get(t, [])]
        if not logged:
            continue
        names = list(dict.fromkeys(n for s in logged for n in s
                                   if n not in ("total", "dag_file_parse", "cpu", "process_cpu")))
        med = {n: statistics.median(s.get(n, 0.0) for s in logged) for n in names}
        total = statistics.median(s.get("total", 0.0) for s in logged)
        parse = statistics.median(s.get("dag_file_parse", 0.0) for s in logged)
        residual = summary[kind]["ours"] * 1000 - total - parse
        parts = ", ".join(f"{n} {v:.0f}" for n, v in med.items())
        cpu = statistics.median(s.get("cpu", 0.0) for s in logged)
        process_cpu = statistics.median(s.get("process_cpu", 0.0) for s in logged)
        print(f"{kind} (median ms over {len(logged)} task runs): DAG-file parse {parse:.0f}; in the operator "
              f"{total:.0f} ({parts or 'no steps logged'}; CPU {cpu:.0f}, the task process's CPU by then "
              f"{process_cpu:.0f}); the rest of the task process (start, context, state report) {residual:.0f}. "
              f"The twin's plain task beyond its sleep: {summary[kind]['twin_beyond'] * 1000:.0f} (its DAG-file "
              f"parse {twin_parse[kind]:.0f})")
    agent = summary.get("AgentOperator")
    if agent:
        ours_beyond = agent["beyond"] + agent["twin_beyond"]
        ratio = ours_beyond / agent["twin_beyond"]
        print(f"AgentOperator time beyond the call over a plain @task's (same sleep): "
              f"{ours_beyond:.3f} s / {agent['twin_beyond']:.3f} s = {ratio:.2f}")


if __name__ == "__main__":
    main()
