"""Parse time of each DAG file, and of all of them, against a one-task DAG file parsed the same way.

Each measurement runs in a fresh process that has already imported what the dag-processor's parsing
processes inherit from their parent (the Task SDK, the DagBag and Airflow's ORM models) and frozen
them out of the garbage collector as its manager does (``gc.freeze()``), so the time
is what the file itself costs: its own imports and its DAG building. Prints one line per file, then the ratio against the baseline last.
Goal (issue 2): every file under 0.3 s, all together under 1 s on this machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))

BASELINE = '''"""One-task baseline DAG for the Airflow parse benchmark."""
import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG(dag_id="baseline_one_task", schedule=None, start_date=datetime.datetime(2025, 1, 1), tags=["bench"]):
    EmptyOperator(task_id="only")
'''

PROBE = r'''
import json, sys, time
import airflow.sdk  # paid before timing, as in the dag-processor
import airflow.models.dagrun  # the dag-processor manager has the ORM loaded before it forks
from airflow.dag_processing.dagbag import DagBag
if len(sys.argv) > 2 and sys.argv[2] == "preloaded":  # config/airflow_local_settings.py in the dag-processor
    from castmatch.preload import preload_dag_parsing
    preload_dag_parsing()
import gc
gc.freeze()  # as the dag-processor manager does before it forks its parsing processes
path = sys.argv[1]
t0 = time.perf_counter()
bag = DagBag(path)
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "dags": len(bag.dags), "errors": {k: str(v)[:300] for k, v in bag.import_errors.items()}}))
'''


def measure(path: Path, env: dict, mode: str = "cold") -> tuple[float, int]:
    times, dags = [], 0
    for _ in range(REPEATS):
        out = subprocess.run([sys.executable, "-c", PROBE, str(path), mode], capture_output=True, text=True, env=env,
                             check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["errors"]:
            raise SystemExit(f"import errors in {path}: {result['errors']}")
        times.append(result["seconds"])
        dags = result["dags"]
    return statistics.median(times), dags


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "AIRFLOW_HOME": tmp, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        baseline_file = Path(tmp) / "baseline_dag.py"
        baseline_file.write_text(BASELINE)
        base, _ = measure(baseline_file, env)
        print(f"baseline one-task DAG file: {base:.3f} s (median of {REPEATS})")
        files = sorted((ROOT / "dags").glob("*.py"))
        worst = 0.0
        for file in files:
            seconds, dags = measure(file, env)
            worst = max(worst, seconds)
            print(f"{file.relative_to(ROOT)}: {seconds:.3f} s, {dags} DAGs, {seconds / base:.2f}x baseline")
        # What make run's dag-processor pays: it preloads the factory and the config before it forks
        # (config/airflow_local_settings.py), so each file costs only its own DAG building.
        warm = {file.name: measure(file, env, "preloaded")[0] for file in files}
        print("with the dag-processor preload: " + ", ".join(f"{name} {sec:.3f} s" for name, sec in warm.items())
              + f"; sum {sum(warm.values()):.3f} s ({sum(warm.values()) / base:.1f}x baseline)")
        total, dags = measure(ROOT / "dags", env)
        print(f"all of dags/: {total:.3f} s, {dags} DAGs (goal < 1 s); slowest file {worst:.3f} s (goal < 0.3 s)")
        print(f"ratio all-dags/baseline: {total / base:.2f}")


if __name__ == "__main__":
    main()
