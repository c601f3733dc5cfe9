"""The Control Center's JSON (every panel) for a CastMatch run with all 151 units delivered, on the
real PostgreSQL store and an Airflow metadata database (the pending-requests panel): p50 / p95 over
BENCH_ROUNDS refreshes, the store queries one refresh runs, and the ratios against the issue's
200 ms target and against the status matrix alone (what `castmatch status --json` computes, the
smallest panel) timed in the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from _common import ROOT

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
TARGET_MS = 200.0
ADMIN = os.environ.get("CASTMATCH_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
DONE = {"summary": "delivered", "content": "c" * 400, "status": "done", "blockers": [], "progress": 100}


def populate(config, store, run_key: str) -> None:
    """A whole roadmap run through the store's own writes: every unit started and delivered, every
    gate judged, KPI samples, decisions, ledger rows, an open incident."""
    import datetime as dt

    store.register_run(run_key=run_key, roadmap_id="castmatch", kind="roadmap", dag_id="castmatch_roadmap",
                       run_id="bench", clock="compressed", origin=dt.datetime.now(dt.UTC))
    for unit in config.work_units.values():
        week = config.unit_week[unit.id]
        keys = dict(dag_id=f"castmatch_week_{week:02d}", run_key=run_key, run_id=f"w{week}", work_unit_id=unit.id,
                    agent_id=unit.agents[0])
        store.unit_started(**keys, try_number=1)
        store.save_deliverable(**keys, week=week, deliverable=DONE, backend="live", model="claude-sonnet-4-5",
                               try_number=1)
        for attempt in (1, 2):
            store.record_llm_call(attempt=attempt, model="claude-sonnet-4-5", backend="live", request_hash=f"{unit.id}{attempt}",
                                  outcome="ok", run_key=run_key, purpose="agent", agent_id=unit.agents[0],
                                  work_unit_id=unit.id, week=week, input_tokens=1200, output_tokens=600,
                                  cache_read_input_tokens=800, cost_usd=0.01)
    for gate in config.all_gates:
        store.save_gate_result(run_key=run_key, gate_id=gate.id, status="PASSED", blocked_units=[], decided_by="bench",
                               criteria=[{"id": c.id, "text": c.text, "kind": c.kind.value, "ok": True, "reason": "ok"}
                                         for c in gate.criteria], dag_id=f"castmatch_week_{gate.week:02d}", run_id="w")
    for kpi in config.kpis.kpis:
        for i in range(20):
            store.record_kpi_sample(kpi_id=kpi.id, value=90.0 + i * 0.1, status="ok", source="bench", run_key=run_key)
    from castmatch.incidents import open_incident

    open_incident(config, store, run_key=run_key, kind="unit_blocked", subject=next(iter(config.work_units)),
                  agents=["backend-api-developer"], detail="bench incident")


def timed(fn, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    import sqlalchemy as sa

    name = f"cm_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        with tempfile.TemporaryDirectory() as home:
            os.environ.update({"AIRFLOW_HOME": home, "CASTMATCH_DATABASE_URL": url,
                               "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
            subprocess.run([str(ROOT / ".venv" / "bin" / "airflow"), "db", "migrate"], check=True,
                           capture_output=True, env=os.environ.copy())
            run(url)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(url: str) -> None:
    import json

    from sqlalchemy import event

    from castmatch.config import load_roadmap
    from castmatch.control_center import snapshot
    from castmatch.status import status_matrix
    from castmatch.store import Store

    config = load_roadmap()
    store = Store(url)
    run_key = "castmatch:roadmap:bench"
    start = time.perf_counter()
    populate(config, store, run_key)
    print(f"populated a run of {len(config.work_units)} units in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    queries = {"n": 0}
    event.listen(store.engine, "before_cursor_execute", lambda *a, **k: queries.__setitem__("n", queries["n"] + 1))

    def full():
        return json.dumps(snapshot(config, store, run_key), default=str)

    def matrix():
        return json.dumps(status_matrix(config, store, run_key), default=str)

    full(), matrix()  # warm: imports, connection pool
    queries["n"] = 0
    size = len(full())
    per_refresh = queries["n"]
    panels = timed(full, ROUNDS)
    alone = timed(matrix, ROUNDS)
    p50, p95 = statistics.median(panels), statistics.quantiles(panels, n=20)[18]
    m50 = statistics.median(alone)
    print(f"control center JSON, all panels, {len(config.work_units)} units delivered: {size / 1024:.0f} KiB, "
          f"{per_refresh} store queries per refresh (bounded: none per unit or agent)")
    print(f"  p50 {p50:.1f} ms, p95 {p95:.1f} ms over {ROUNDS} refreshes")
    print(f"  baseline: status matrix alone p50 {m50:.1f} ms; all panels / matrix = {p50 / m50:.2f}x")
    print(f"ratio p95 / target ({TARGET_MS:.0f} ms): {p95 / TARGET_MS:.2f} ({'within' if p95 < TARGET_MS else 'OVER'} "
          f"the target)")


if __name__ == "__main__":
    main()
