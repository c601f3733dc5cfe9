"""Reads and writes of the state store. Every write keyed by run and work unit is an upsert,
so task retries and manual reruns never duplicate what is stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from castmatch.store import schema as t
from castmatch.store.db import ensure_schema


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _upsert(conn: sa.Connection, table: sa.Table, values: dict, keys: Sequence[str], keep: Iterable[str] = ()):
    """INSERT … ON CONFLICT (keys) DO UPDATE, for PostgreSQL and SQLite alike."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**values)
    update = {k: stmt.excluded[k] for k in values if k not in keys and k not in set(keep) and k != "id"}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=update))


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC (a naive value is taken as UTC), so SQLite's tz-less text compares like PostgreSQL."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Store:
    """The CastMatch state store on one database (``CASTMATCH_DATABASE_URL`` by default)."""

    def __init__(self, url: str | None = None):
        self.engine = ensure_schema(url)

    # ---------------------------------------------------------------- configuration mirror

    def sync_config(self, config, unit_ids: Sequence[str] | None = None) -> None:
        """Mirror agents and work units of a roadmap config (all, or ``unit_ids`` and their
        agents), so reports can join on them."""
        now = utcnow()
        units = {u: config.work_units[u] for u in unit_ids} if unit_ids is not None else config.work_units
        agent_ids = {a for u in units.values() for a in u.agents} if unit_ids is not None else set(config.agents)
        with self.engine.begin() as conn:
            for agent in (config.agents[a] for a in sorted(agent_ids)):
                _upsert(conn, t.agents, {
                    "id": agent.id, "name": agent.name, "short_name": agent.short_name,
                    "track": agent.track.value, "model": agent.model, "current_task": agent.current_task,
                    "baseline_progress": agent.baseline_progress, "updated_at": now,
                }, ["id"])
            for unit_id, unit in units.items():
                _upsert(conn, t.work_units, {
                    "id": unit_id, "week": config.unit_week[unit_id], "title": unit.title,
                    "lead_agent": unit.agents[0], "agents": list(unit.agents), "day": unit.day,
                    "priority": unit.priority.value, "depends_on": list(unit.depends_on),
                    "weight": unit.weight, "updated_at": now,
                }, ["id"])

    # ---------------------------------------------------------------- unit lifecycle

    def unit_started(self, *, dag_id: str, run_key: str, run_id: str, work_unit_id: str, agent_id: str,
                     try_number: int) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            _upsert(conn, t.unit_runs, {
                "dag_id": dag_id, "run_key": run_key, "run_id": run_id,
                "work_unit_id": work_unit_id, "agent_id": agent_id, "state": "running",
                "try_number": try_number, "started_at": now, "ended_at": None, "error": None,
            }, ["dag_id", "run_key", "work_unit_id"])
            self._event(conn, "unit_started", dag_id, run_id, work_unit_id, agent_id, f"try {try_number}")

    def unit_failed(self, *, dag_id: str, run_key: str, run_id: str, work_unit_id: str, agent_id: str, try_number: int,
                    error: str, state: str = "failed") -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            _upsert(conn, t.unit_runs, {
                "dag_id": dag_id, "run_key": run_key, "run_id": run_id, "work_unit_id": work_unit_id,
                "agent_id": agent_id, "state": state, "try_number": try_number, "ended_at": now,
                "error": error[:4000],
            }, ["dag_id", "run_key", "work_unit_id"])
            self._event(conn, f"unit_{state}", dag_id, run_id, work_unit_id, agent_id, error[:4000])

    def save_deliverable(self, *, dag_id: str, run_key: str, run_id: str, work_unit_id: str, agent_id: str, week: int,
                         deliverable: dict[str, Any], backend: str, model: str, try_number: int) -> None:
        """Store the validated deliverable of a unit in a run (replacing an earlier try's)."""
        now = utcnow()
        state = deliverable["status"]
        with self.engine.begin() as conn:
            _upsert(conn, t.deliverables, {
                "dag_id": dag_id, "run_key": run_key, "run_id": run_id, "work_unit_id": work_unit_id, "agent_id": agent_id,
                "week": week, "status": state, "summary": deliverable["summary"],
                "content": deliverable["content"], "blockers": list(deliverable.get("blockers", [])),
                "progress": int(deliverable["progress"]), "backend": backend, "model": model,
                "try_number": try_number, "created_at": now, "updated_at": now,
            }, ["dag_id", "run_key", "work_unit_id"], keep=["created_at"])
            _upsert(conn, t.unit_runs, {
                "dag_id": dag_id, "run_key": run_key, "run_id": run_id, "work_unit_id": work_unit_id,
                "agent_id": agent_id, "state": state, "try_number": try_number, "ended_at": now, "error": None,
            }, ["dag_id", "run_key", "work_unit_id"])
            self._event(conn, f"deliverable_{state}", dag_id, run_id, work_unit_id, agent_id,
                        deliverable["summary"][:500], {"backend": backend, "model": model})

    def record_event(self, kind: str, message: str = "", *, dag_id: str | None = None, run_id: str | None = None,
                     work_unit_id: str | None = None, agent_id: str | None = None, data: dict | None = None) -> None:
        with self.engine.begin() as conn:
            self._event(conn, kind, dag_id, run_id, work_unit_id, agent_id, message, data)

    @staticmethod
    def _event(conn, kind, dag_id, run_id, work_unit_id, agent_id, message="", data=None) -> None:
        conn.execute(sa.insert(t.events).values(
            ts=utcnow(), kind=kind, dag_id=dag_id, run_id=run_id, work_unit_id=work_unit_id,
            agent_id=agent_id, message=message, data=data,
        ))

    # ---------------------------------------------------------------- reads

    def upstream_deliverables(self, unit_ids: Sequence[str], *, run_key: str) -> dict[str, dict]:
        """The accepted deliverable of each of ``unit_ids``: from run ``run_key`` if it has one,
        else the newest accepted one of any run (units of earlier weeks run on their own)."""
        if not unit_ids:
            return {}
        d = t.deliverables
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(d).where(d.c.work_unit_id.in_(list(unit_ids)), d.c.status == "done")
                .order_by(d.c.updated_at)
            ).mappings().all()
        found: dict[str, dict] = {}
        for row in rows:  # oldest first: later rows win, rows of this run win over all
            current = found.get(row["work_unit_id"])
            this_run = row["run_key"] == run_key
            if current is None or this_run or not current.get("_this_run"):
                found[row["work_unit_id"]] = {**row, "_this_run": this_run}
        return {k: {kk: vv for kk, vv in v.items() if kk != "_this_run"} for k, v in found.items()}

    def deliverables(self, *, dag_id: str | None = None, run_key: str | None = None) -> list[dict]:
        d = t.deliverables
        query = sa.select(d).order_by(d.c.created_at, d.c.id)
        if dag_id:
            query = query.where(d.c.dag_id == dag_id)
        if run_key:
            query = query.where(d.c.run_key == run_key)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def unit_runs(self) -> list[dict]:
        u = t.unit_runs
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(u).order_by(u.c.id)).mappings()]

    def events(self, kind: str | None = None) -> list[dict]:
        e = t.events
        query = sa.select(e).order_by(e.c.id)
        if kind:
            query = query.where(e.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- LLM ledger and response cache

    def record_llm_call(self, **row: Any) -> None:
        """One audit row per API attempt (see ``schema.llm_calls``)."""
        row.setdefault("ts", utcnow())
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.llm_calls).values(**row))

    def llm_calls(self) -> list[dict]:
        c = t.llm_calls
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(c).order_by(c.c.id)).mappings()]

    def llm_spend(self, *, agent_id: str | None = None, week: int | None = None) -> tuple[float, int]:
        """(USD, tokens of all four kinds) booked so far, optionally for one agent or week."""
        c = t.llm_calls
        tokens = c.c.input_tokens + c.c.output_tokens + c.c.cache_creation_input_tokens + c.c.cache_read_input_tokens
        query = sa.select(sa.func.coalesce(sa.func.sum(c.c.cost_usd), 0.0), sa.func.coalesce(sa.func.sum(tokens), 0))
        if agent_id is not None:
            query = query.where(c.c.agent_id == agent_id)
        if week is not None:
            query = query.where(c.c.week == week)
        with self.engine.connect() as conn:
            usd, count = conn.execute(query).one()
        return float(usd), int(count)

    def cache_response(self, request_hash: str, model: str, deliverable: dict) -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.llm_responses, {"request_hash": request_hash, "model": model,
                                            "deliverable": deliverable, "created_at": utcnow()}, ["request_hash"])

    def cached_response(self, request_hash: str) -> dict | None:
        r = t.llm_responses
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(r).where(r.c.request_hash == request_hash)).mappings().first()
        return dict(row) if row else None

    def update_llm_call_outcome(self, request_hash: str, outcome: str, error: str | None = None) -> None:
        """Re-mark the newest attempt of a request (answered, but the answer was unusable)."""
        c = t.llm_calls
        with self.engine.begin() as conn:
            newest = conn.execute(sa.select(sa.func.max(c.c.id)).where(c.c.request_hash == request_hash)).scalar()
            if newest is not None:
                conn.execute(sa.update(c).where(c.c.id == newest).values(outcome=outcome, error=error))

    # ---------------------------------------------------------------- standups

    def save_standup(self, *, standup_date: str, agent_id: str, run_id: str, backend: str, model: str,
                     report: dict, batch_id: str | None = None) -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.standups, {
                "standup_date": standup_date, "agent_id": agent_id, "run_id": run_id, "backend": backend,
                "model": model, "batch_id": batch_id, "report": report, "updated_at": utcnow(),
            }, ["standup_date", "agent_id"])

    def standups(self, standup_date: str | None = None) -> list[dict]:
        s = t.standups
        query = sa.select(s).order_by(s.c.standup_date, s.c.agent_id)
        if standup_date:
            query = query.where(s.c.standup_date == standup_date)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- probes and KPIs

    def record_probe_sample(self, *, probe_id: str, kind: str, ok: bool, latency_ms: float, detail: str = "",
                            run_id: str | None = None, ts: dt.datetime | None = None) -> dict:
        """Append one probe sample; returns the stored row."""
        row = {"ts": _as_utc(ts) if ts else utcnow(), "probe_id": probe_id, "kind": kind, "ok": bool(ok),
               "latency_ms": float(latency_ms), "detail": detail[:4000], "run_id": run_id}
        with self.engine.begin() as conn:
            row["id"] = conn.execute(sa.insert(t.probe_samples).values(**row)).inserted_primary_key[0]
        return row

    def probe_samples(self, probe_id: str | None = None, since: dt.datetime | None = None) -> list[dict]:
        """Samples of one probe (or all), oldest first, optionally only those at or after ``since``."""
        p = t.probe_samples
        query = sa.select(p).order_by(p.c.ts, p.c.id)
        if probe_id is not None:
            query = query.where(p.c.probe_id == probe_id)
        if since is not None:
            query = query.where(p.c.ts >= _as_utc(since))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def probe_times(self, probe_id: str, since: dt.datetime) -> list[dt.datetime]:
        """When ``probe_id`` was sampled at or after ``since``, oldest first, as aware UTC."""
        p = t.probe_samples
        query = sa.select(p.c.ts).where(p.c.probe_id == probe_id, p.c.ts >= _as_utc(since)).order_by(p.c.ts)
        with self.engine.connect() as conn:
            return [_as_utc(ts) for ts in conn.execute(query).scalars()]

    def _probe_counts(self, probe_ids: Sequence[str], window_hours: float,
                      now: dt.datetime | None) -> dict[str, tuple[int, int]]:
        """{probe_id: (samples, ok samples)} in the window (now - window_hours, now]."""
        p = t.probe_samples
        end = _as_utc(now) if now else utcnow()
        start = end - dt.timedelta(hours=window_hours)
        oks = sa.func.sum(sa.case((p.c.ok, 1), else_=0))
        query = (sa.select(p.c.probe_id, sa.func.count(), oks)
                 .where(p.c.probe_id.in_(list(probe_ids)), p.c.ts > start, p.c.ts <= end)
                 .group_by(p.c.probe_id))
        with self.engine.connect() as conn:
            counts = {probe: (int(n), int(ok or 0)) for probe, n, ok in conn.execute(query)}
        return {probe: counts.get(probe, (0, 0)) for probe in probe_ids}

    def uptime_by_probe(self, probe_ids: Sequence[str], window_hours: float,
                        now: dt.datetime | None = None) -> dict[str, tuple[float | None, int]]:
        """Per probe: (share of ok samples in the window in %, None without samples; sample count)."""
        return {probe: (100.0 * ok / n if n else None, n)
                for probe, (n, ok) in self._probe_counts(probe_ids, window_hours, now).items()}

    def uptime(self, probe_ids: Sequence[str], window_hours: float,
               now: dt.datetime | None = None) -> tuple[float | None, int]:
        """(share of ok samples of ``probe_ids`` over the last ``window_hours`` in %, sample count),
        all probes' samples pooled; the share is None when there is no sample in the window."""
        counts = self._probe_counts(probe_ids, window_hours, now).values()
        total, ok = sum(n for n, _ in counts), sum(k for _, k in counts)
        return (100.0 * ok / total if total else None), total

    def record_kpi_sample(self, *, kpi_id: str, value: float | None, status: str, source: str, detail: str = "",
                          run_id: str | None = None, ts: dt.datetime | None = None) -> dict:
        """Append one KPI sample (``status`` is ``ok`` with a value, or ``missing`` without); returns it."""
        if status not in ("ok", "missing"):
            raise ValueError(f"KPI sample status must be 'ok' or 'missing', not {status!r}")
        if status == "ok" and value is None:
            raise ValueError(f"KPI {kpi_id}: an 'ok' sample needs a value")
        row = {"ts": _as_utc(ts) if ts else utcnow(), "kpi_id": kpi_id,
               "value": None if value is None else float(value), "status": status, "source": source,
               "detail": detail[:4000], "run_id": run_id}
        with self.engine.begin() as conn:
            row["id"] = conn.execute(sa.insert(t.kpi_samples).values(**row)).inserted_primary_key[0]
        return row

    def kpi_samples(self, kpi_id: str | None = None) -> list[dict]:
        k = t.kpi_samples
        query = sa.select(k).order_by(k.c.ts, k.c.id)
        if kpi_id is not None:
            query = query.where(k.c.kpi_id == kpi_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def latest_kpi_values(self) -> dict[str, dict]:
        """The newest sample of every KPI: {kpi_id: row}."""
        k = t.kpi_samples
        newest = sa.func.row_number().over(partition_by=k.c.kpi_id, order_by=(k.c.ts.desc(), k.c.id.desc()))
        ranked = sa.select(k, newest.label("rank")).subquery()
        query = sa.select(*(ranked.c[c.name] for c in k.c)).where(ranked.c.rank == 1).order_by(ranked.c.kpi_id)
        with self.engine.connect() as conn:
            return {r["kpi_id"]: dict(r) for r in conn.execute(query).mappings()}

    def save_kpi_validation(self, *, run_key: str, decision_point: str | None = None, success: bool,
                            results: list[dict], ts: dt.datetime | None = None) -> None:
        """Store the KPI check of a run at a decision point; a rerun replaces it, never duplicates."""
        with self.engine.begin() as conn:
            _upsert(conn, t.kpi_validations, {
                "ts": _as_utc(ts) if ts else utcnow(), "run_key": run_key, "decision_point": decision_point or "",
                "success": bool(success), "results": list(results),
            }, ["run_key", "decision_point"])

    def kpi_validations(self, run_key: str | None = None, decision_point: str | None = None) -> list[dict]:
        """Stored KPI checks, oldest first (``decision_point`` is None for a check outside one)."""
        v = t.kpi_validations
        query = sa.select(v).order_by(v.c.ts, v.c.id)
        if run_key is not None:
            query = query.where(v.c.run_key == run_key)
        if decision_point is not None:
            query = query.where(v.c.decision_point == decision_point)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            row["decision_point"] = row["decision_point"] or None
        return rows


    # ---------------------------------------------------------------- gates

    def save_gate_result(self, *, run_key: str, gate_id: str, status: str, criteria: list[dict],
                         blocked_units: list[str], dag_id: str | None = None, run_id: str | None = None,
                         decided_by: str = "castmatch", reason: str = "") -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.gate_results, {
                "run_key": run_key, "gate_id": gate_id, "dag_id": dag_id, "run_id": run_id, "status": status,
                "criteria": criteria, "blocked_units": blocked_units, "decided_by": decided_by, "reason": reason,
                "evaluated_at": utcnow(),
            }, ["run_key", "gate_id"])

    def gate_results(self, run_key: str | None = None) -> list[dict]:
        g = t.gate_results
        query = sa.select(g).order_by(g.c.evaluated_at, g.c.id)
        if run_key:
            query = query.where(g.c.run_key == run_key)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- go/no-go decisions

    def save_decision(self, *, run_key: str, decision_point: str, week: int, decision: str, decided_by: str,
                      reason: str, gates: dict, kpis_ok: bool | None) -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.decisions, {
                "run_key": run_key, "decision_point": decision_point, "week": week, "decision": decision,
                "decided_by": decided_by, "reason": reason, "gates": gates, "kpis_ok": kpis_ok,
                "decided_at": utcnow(),
            }, ["run_key", "decision_point"])
            self._event(conn, f"decision_{decision.lower()}", None, None, None, None, reason,
                        {"decision_point": decision_point, "run_key": run_key, "decided_by": decided_by})

    def decisions(self, run_key: str | None = None) -> list[dict]:
        d = t.decisions
        query = sa.select(d).order_by(d.c.decided_at, d.c.id)
        if run_key:
            query = query.where(d.c.run_key == run_key)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
