"""Evaluating a gate of 10 criteria and validating a 10-KPI suite with Great Expectations, against
the same checks as bare function calls (a Redis PING, a PostgreSQL SELECT 1, set look-ups, reading
the coverage report and comparing), in one process, on the real Redis and PostgreSQL. The gate's
KPI criteria measure their KPI (a Cobertura report) at every evaluation, as gates now do.

Prints the one-off cost of the first check in the process (the Great Expectations import and
context), the steady per-check times and, last, the ratio ours/bare.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from _common import ROOT  # noqa: F401  (puts the project on sys.path)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AIRFLOW_HOME", tmp)
        os.environ["CASTMATCH_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
        os.environ.setdefault("AIRFLOW_CONN_CASTMATCH_REDIS", "redis://127.0.0.1:6379/0")
        os.environ.setdefault("AIRFLOW_CONN_CASTMATCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
        import redis
        import sqlalchemy as sa

        from castmatch.config import load_roadmap
        from castmatch.config.models import Gate, GateCriterion, Kpi, KpiSource
        from castmatch.gates import COMPARE, evaluate_gate
        from castmatch.kpis import validate_kpis
        from castmatch.store import Store

        config = load_roadmap()
        store = Store()
        units = [u.id for u in config.weeks[1].work_units[:4]]
        run_key = "castmatch:roadmap:bench"
        for u in units:
            store.save_deliverable(dag_id="d", run_key=run_key, run_id="r", work_unit_id=u, agent_id="a", week=1,
                                   deliverable={"summary": "s" * 10, "content": "c" * 20, "status": "done",
                                                "blockers": [], "progress": 100}, backend="offline", model="m", try_number=1)
        report = os.path.join(tmp, "coverage.xml")
        with open(report, "w") as f:
            f.write('<?xml version="1.0" ?><coverage line-rate="0.95" branch-rate="0" version="7"/>')
        kpis = [Kpi(id=f"kpi_{i}", name=f"KPI {i}", category="technical", comparator=">=", threshold=90, unit="%",
                    source=KpiSource(kind="coverage_report", path=report)) for i in range(10)]
        values = {k.id: 95.0 + i * 0.1 for i, k in enumerate(kpis)}
        kpi_config = config.kpis.model_copy(update={"kpis": kpis})
        config.kpis = kpi_config
        criteria = (
            [GateCriterion(id=f"d{i}", text="delivered", kind="deliverable", work_units=[u]) for i, u in enumerate(units)]
            + [GateCriterion(id=f"p{i}", text="up", kind="probe", probes=[p]) for i, p in enumerate(["redis", "postgres", "redis"])]
            + [GateCriterion(id=f"k{i}", text="kpi", kind="kpi", kpis=[kpis[i].id]) for i in range(3)]
        )
        gate = Gate(id="bench_gate", name="Bench gate", kind="quality", week=1, deadline_day=3, criteria=criteria)

        def ours():
            result = evaluate_gate(config, gate, store, run_key=run_key)
            outcome = validate_kpis(kpis, values, run_key="bench")
            assert result["all_ok"] and outcome.success, (result, outcome.failed)

        client = redis.Redis.from_url(os.environ["AIRFLOW_CONN_CASTMATCH_REDIS"])
        engine = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
        delivered = set(units)

        def bare():
            import xml.etree.ElementTree as ET

            ok = all(u in delivered for u in units)
            ok &= bool(client.ping()) and bool(client.ping())
            with engine.connect() as conn:
                ok &= conn.execute(sa.text("SELECT 1")).scalar() == 1
            ok &= all(COMPARE[">="](float(ET.parse(report).getroot().get("line-rate")) * 100, k.threshold)
                      for k in kpis[:3])
            ok &= all(COMPARE[">="](values[k.id], k.threshold) for k in kpis)
            assert ok

        started = time.perf_counter()
        ours()
        first = time.perf_counter() - started
        bare()
        ours_times, bare_times = [], []
        for _ in range(ROUNDS):
            t = time.perf_counter(); ours(); ours_times.append(time.perf_counter() - t)  # noqa: E702
            t = time.perf_counter(); bare(); bare_times.append(time.perf_counter() - t)  # noqa: E702
        o, b = statistics.median(ours_times), statistics.median(bare_times)
        ge_times = []
        for _ in range(ROUNDS):
            t = time.perf_counter(); validate_kpis(kpis, values, run_key="bench"); ge_times.append(time.perf_counter() - t)  # noqa: E702
        print(f"first check in this process (Great Expectations import + context): {first:.2f} s, paid once")
        print(f"gate of 10 criteria + 10-KPI suite: {o * 1000:.1f} ms a check (median of {ROUNDS})")
        print(f"  of which the Great Expectations suite: {statistics.median(ge_times) * 1000:.1f} ms; the rest is "
              "fresh probe connections, stored samples and the measured KPIs")
        print(f"the same checks as bare calls: {b * 1000:.1f} ms")
        print(f"ratio ours/bare: {o / b:.1f}")


if __name__ == "__main__":
    main()
