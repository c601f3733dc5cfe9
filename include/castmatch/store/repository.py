"""Reads and writes of the state store. Every write keyed by run and work unit is an upsert,
so task retries and manual reruns never duplicate what is stored."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from castmatch.clock import as_utc
from castmatch.runs import roadmap_of
from castmatch.store import schema as t
from castmatch.store.db import await_connection_ahead, ensure_schema


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _insert(conn: sa.Connection, table: sa.Table):
    """The dialect's INSERT (PostgreSQL or SQLite), the one with ON CONFLICT clauses."""
    return _dialect_insert(conn.dialect.name)(table)


def _dialect_insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _upsert(conn: sa.Connection, table: sa.Table, values: dict, keys: Sequence[str], keep: Iterable[str] = (),
            returning: bool = False) -> dict | None:
    """INSERT … ON CONFLICT (keys) DO UPDATE, for PostgreSQL and SQLite alike; with ``returning``,
    the row as stored after it (in the same statement, not a second query)."""
    stmt = _upsert_statement(conn.dialect.name, table, tuple(values), tuple(keys), frozenset(keep), returning)
    result = conn.execute(stmt, values)
    return dict(result.mappings().one()) if returning else None


@functools.lru_cache(maxsize=256)
def _upsert_statement(dialect: str, table: sa.Table, columns: tuple[str, ...], keys: tuple[str, ...],
                      keep: frozenset[str], returning: bool):
    """The upsert of ``columns`` into ``table``, built once per process and shape: building it
    (the ``excluded`` alias's column proxies) costs more CPU than running it, in every write."""
    stmt = _dialect_insert(dialect)(table)
    update = {k: stmt.excluded[k] for k in columns if k not in keys and k not in keep and k != "id"}
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=update)
    return stmt.returning(*table.c) if returning else stmt


def _lost_calls(*, run_key: str | None = None, work_unit_id: str | None = None,
                older_than: dt.timedelta | None = None, purpose: str | None = None) -> sa.Update:
    """The UPDATE booking calls left ``started`` as ``lost`` (see ``Store.reconcile_lost_calls``)."""
    c = t.llm_calls
    query = sa.update(c).where(c.c.outcome == "started")
    if run_key is not None:
        query = query.where(c.c.run_key == run_key)
    if work_unit_id is not None:
        query = query.where(c.c.work_unit_id == work_unit_id)
    if purpose is not None:
        query = query.where(c.c.purpose == purpose)
    if older_than is not None:
        query = query.where(c.c.ts < utcnow() - older_than)
    return query.values(
        outcome="lost", error_class="ProcessEnded",
        error="the process ended during the call; priced at its worst case (input estimate + max_tokens)",
    )


def _all_tokens(c):
    """The tokens of all four kinds a ledger row booked (what the token budgets count)."""
    return c.c.input_tokens + c.c.output_tokens + c.c.cache_creation_input_tokens + c.c.cache_read_input_tokens


class _OneTransaction:
    """The engine of a rehearsing ``Store``: every ``begin()`` and ``connect()`` block runs on one
    connection, inside the one transaction the rehearsal rolls back."""

    def __init__(self, conn: sa.Connection):
        self._conn = conn

    @contextlib.contextmanager
    def begin(self):
        yield self._conn

    connect = begin


class Store:
    """The CastMatch state store on one database (``CASTMATCH_DATABASE_URL`` by default)."""

    def __init__(self, url: str | None = None):
        self.engine = ensure_schema(url)
        await_connection_ahead(url)  # the task process's first connection, if one is being opened

    @contextlib.contextmanager
    def rehearsal(self):
        """A stand-in of this store whose reads and writes all run in one transaction, rolled back
        when the block ends: statements run for what they leave in this process (their compiled
        form, in the engine's cache, which task processes forked from it inherit); nothing is stored."""
        with self.engine.connect() as conn:
            outer = conn.begin()
            try:
                stand_in = object.__new__(type(self))
                stand_in.engine = _OneTransaction(conn)
                yield stand_in
            finally:
                outer.rollback()

    @contextlib.contextmanager
    def _autocommit(self):
        """A connection on which each statement is its own transaction: for reads, and for writes
        that are one statement. On PostgreSQL that spares the BEGIN and the COMMIT or ROLLBACK
        around it, two of its three round trips (under load each waits for the server to be
        scheduled; an agent task makes a dozen such calls). Elsewhere (SQLite, a rehearsal's one
        transaction) the block is a transaction, as ``engine.begin()`` gives."""
        engine = self.engine
        if not isinstance(engine, sa.Engine) or engine.dialect.name != "postgresql":
            with engine.begin() as conn:
                yield conn
            return
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if raw.info.transaction_status != 0:  # not libpq's IDLE: a liveness ping's SELECT 1 left one open
                raw.rollback()
            raw.autocommit = True
            try:
                yield conn
            finally:
                with contextlib.suppress(Exception):  # a connection lost mid-statement is discarded anyway
                    raw.autocommit = False

    # ---------------------------------------------------------------- configuration mirror

    def sync_config(self, config, unit_ids: Sequence[str] | None = None) -> None:
        """Mirror agents and work units of a roadmap config (all, or ``unit_ids`` and their
        agents), so reports can join on them."""
        from castmatch.runs import roadmap_id_of

        roadmap_id = roadmap_id_of(config)
        now = utcnow()
        units = {u: config.work_units[u] for u in unit_ids} if unit_ids is not None else config.work_units
        agent_ids = {a for u in units.values() for a in u.agents} if unit_ids is not None else set(config.agents)
        with self.engine.begin() as conn:
            for agent in (config.agents[a] for a in sorted(agent_ids)):
                _upsert(conn, t.agents, {
                    "roadmap_id": roadmap_id, "id": agent.id, "name": agent.name, "short_name": agent.label,
                    "track": agent.track, "model": agent.model, "current_task": agent.current_task,
                    "baseline_progress": agent.baseline_progress, "updated_at": now,
                }, ["roadmap_id", "id"])
            for unit_id, unit in units.items():
                _upsert(conn, t.work_units, {
                    "roadmap_id": roadmap_id, "id": unit_id, "week": config.unit_week[unit_id], "title": unit.title,
                    "lead_agent": unit.agents[0], "agents": list(unit.agents), "day": unit.first_day,
                    "priority": unit.priority, "depends_on": list(unit.depends_on),
                    "weight": unit.weight, "updated_at": now,
                }, ["roadmap_id", "id"])

    # ---------------------------------------------------------------- runs

    def register_run(self, *, run_key: str, roadmap_id: str, kind: str, dag_id: str, run_id: str, clock: str,
                     origin: dt.datetime | None = None) -> dict:
        """Record a run once: later calls only touch ``updated_at`` (its start, clock and origin
        stay those of its first registration). Returns the stored row, with ``new``: whether this
        call recorded it."""
        now = utcnow()
        origin = as_utc(origin) if origin else None
        with self._autocommit() as conn:
            row = _upsert(conn, t.runs, {
                "run_key": run_key, "roadmap_id": roadmap_id, "kind": kind, "dag_id": dag_id, "run_id": run_id,
                "clock": clock, "origin": origin, "started_at": now, "updated_at": now,
            }, ["run_key"], keep=["roadmap_id", "kind", "dag_id", "run_id", "clock", "origin", "started_at"],
                returning=True)
        return {**row, "new": as_utc(row["started_at"]) == now}

    def runs(self, roadmap_id: str | None = None) -> list[dict]:
        """Runs, newest first (of one roadmap, or all)."""
        r = t.runs
        query = sa.select(r).order_by(r.c.started_at.desc(), r.c.run_key.desc())
        if roadmap_id is not None:
            query = query.where(r.c.roadmap_id == roadmap_id)
        with self._autocommit() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def run_key_of_dag_run(self, *, dag_id: str, run_id: str) -> str | None:
        """The run key an Airflow DAG run's units or gates were stored under."""
        with self._autocommit() as conn:
            for table in (t.unit_runs, t.gate_results):
                key = conn.execute(sa.select(table.c.run_key).where(table.c.dag_id == dag_id, table.c.run_id == run_id)
                                   .limit(1)).scalar()
                if key:
                    return key
        return None

    def run(self, run_key: str) -> dict | None:
        with self._autocommit() as conn:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.run_key == run_key)).mappings().first()
        return dict(row) if row else None

    # ---------------------------------------------------------------- unit lifecycle

    def unit_started(self, *, dag_id: str, run_key: str, run_id: str, work_unit_id: str, agent_id: str,
                     try_number: int, reconcile_purpose: str | None = None) -> int:
        """The unit's run is running (try ``try_number``). With ``reconcile_purpose``, in the same
        transaction, the unit's calls of that purpose left ``started`` by an earlier try are booked
        as lost (``reconcile_lost_calls``); returns how many."""
        now = utcnow()
        with self.engine.begin() as conn:
            _upsert(conn, t.unit_runs, {
                "roadmap_id": roadmap_of(run_key), "dag_id": dag_id, "run_key": run_key, "run_id": run_id,
                "work_unit_id": work_unit_id, "agent_id": agent_id, "state": "running",
                "try_number": try_number, "started_at": now, "ended_at": None, "error": None,
            }, ["dag_id", "run_key", "work_unit_id"])
            self._event(conn, "unit_started", f"try {try_number}", run_key=run_key, dag_id=dag_id, run_id=run_id,
                        work_unit_id=work_unit_id, agent_id=agent_id)
            if reconcile_purpose is None:
                return 0
            return conn.execute(_lost_calls(run_key=run_key, work_unit_id=work_unit_id,
                                            purpose=reconcile_purpose)).rowcount

    def unit_failed(self, *, dag_id: str, run_key: str, run_id: str, work_unit_id: str, agent_id: str, try_number: int,
                    error: str, state: str = "failed") -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            _upsert(conn, t.unit_runs, {
                "roadmap_id": roadmap_of(run_key), "dag_id": dag_id, "run_key": run_key, "run_id": run_id,
                "work_unit_id": work_unit_id, "agent_id": agent_id, "state": state, "try_number": try_number,
                "ended_at": now, "error": error[:4000],
            }, ["dag_id", "run_key", "work_unit_id"])
            self._event(conn, f"unit_{state}", error[:4000], run_key=run_key, dag_id=dag_id, run_id=run_id,
                        work_unit_id=work_unit_id, agent_id=agent_id)

    def save_deliverable(self, *, dag_id: str, run_key: str, run_id: str, work_unit_id: str, agent_id: str, week: int,
                         deliverable: dict[str, Any], backend: str, model: str, try_number: int) -> None:
        """Store the validated deliverable of a unit in a run (replacing an earlier try's)."""
        now = utcnow()
        state = deliverable["status"]
        roadmap_id = roadmap_of(run_key)
        with self.engine.begin() as conn:
            _upsert(conn, t.deliverables, {
                "roadmap_id": roadmap_id, "dag_id": dag_id, "run_key": run_key, "run_id": run_id,
                "work_unit_id": work_unit_id, "agent_id": agent_id,
                "week": week, "status": state, "summary": deliverable["summary"],
                "content": deliverable["content"], "blockers": list(deliverable.get("blockers", [])),
                "progress": int(deliverable["progress"]), "backend": backend, "model": model,
                "try_number": try_number, "created_at": now, "updated_at": now,
            }, ["dag_id", "run_key", "work_unit_id"], keep=["created_at"])
            _upsert(conn, t.unit_runs, {
                "roadmap_id": roadmap_id, "dag_id": dag_id, "run_key": run_key, "run_id": run_id,
                "work_unit_id": work_unit_id, "agent_id": agent_id, "state": state, "try_number": try_number,
                "ended_at": now, "error": None,
            }, ["dag_id", "run_key", "work_unit_id"])
            self._event(conn, f"deliverable_{state}", deliverable["summary"][:500], run_key=run_key, dag_id=dag_id,
                        run_id=run_id, work_unit_id=work_unit_id, agent_id=agent_id,
                        data={"backend": backend, "model": model})

    def record_event(self, kind: str, message: str = "", *, run_key: str | None = None, roadmap_id: str | None = None,
                     dag_id: str | None = None, run_id: str | None = None, work_unit_id: str | None = None,
                     agent_id: str | None = None, data: dict | None = None) -> None:
        with self._autocommit() as conn:
            self._event(conn, kind, message, run_key=run_key, roadmap_id=roadmap_id, dag_id=dag_id, run_id=run_id,
                        work_unit_id=work_unit_id, agent_id=agent_id, data=data)

    @staticmethod
    def _event(conn, kind: str, message: str = "", *, run_key: str | None = None, roadmap_id: str | None = None,
               dag_id=None, run_id=None, work_unit_id=None, agent_id=None, data=None) -> None:
        conn.execute(sa.insert(t.events), {  # parameters apart: the statement's shape is cached
            "ts": utcnow(), "kind": kind, "roadmap_id": roadmap_id or (roadmap_of(run_key) if run_key else ""),
            "run_key": run_key, "dag_id": dag_id, "run_id": run_id, "work_unit_id": work_unit_id,
            "agent_id": agent_id, "message": message, "data": data,
        })

    # ---------------------------------------------------------------- reads

    def upstream_deliverables(self, unit_ids: Sequence[str], *, run_key: str) -> dict[str, dict]:
        """The accepted deliverable of each of ``unit_ids`` in run ``run_key`` (never another
        run's: a run starts from the baselines, not from an earlier run's results)."""
        if not unit_ids:
            return {}
        d = t.deliverables
        with self._autocommit() as conn:
            rows = conn.execute(
                sa.select(d).where(d.c.work_unit_id.in_(list(unit_ids)), d.c.status == "done", d.c.run_key == run_key)
                .order_by(d.c.updated_at, d.c.id)
            ).mappings().all()
        return {row["work_unit_id"]: dict(row) for row in rows}

    def deliverables(self, *, dag_id: str | None = None, run_key: str | None = None) -> list[dict]:
        d = t.deliverables
        query = sa.select(d).order_by(d.c.created_at, d.c.id)
        if dag_id:
            query = query.where(d.c.dag_id == dag_id)
        if run_key:
            query = query.where(d.c.run_key == run_key)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def unit_runs(self, run_key: str | None = None) -> list[dict]:
        u = t.unit_runs
        query = sa.select(u).order_by(u.c.id)
        if run_key:
            query = query.where(u.c.run_key == run_key)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def events(self, kind: str | None = None, *, run_key: str | None = None) -> list[dict]:
        e = t.events
        query = sa.select(e).order_by(e.c.id)
        if kind:
            query = query.where(e.c.kind == kind)
        if run_key:
            query = query.where(e.c.run_key == run_key)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- LLM ledger and response cache

    def record_llm_call(self, **row: Any) -> int:
        """One audit row (see ``schema.llm_calls``); returns its id."""
        row.setdefault("ts", utcnow())
        if not row.get("roadmap_id"):
            row["roadmap_id"] = roadmap_of(row["run_key"]) if row.get("run_key") else ""
        with self._autocommit() as conn:
            return conn.execute(sa.insert(t.llm_calls).values(**row)).inserted_primary_key[0]

    def start_llm_call(self, **row: Any) -> int:
        """Book an attempt before its request is sent (outcome ``started``); returns the row id."""
        return self.record_llm_call(**row, outcome="started")

    def finish_llm_call(self, row_id: int, *, keep: dict | None = None, **done: Any) -> None:
        """Complete a ``started`` attempt: outcome, tokens, latency, USD, error; with ``keep``
        ({run_key, request_hash, model, raw}) the paid answer is kept in the same transaction."""
        with self.engine.begin() as conn:
            if keep is not None:
                _upsert(conn, t.llm_answers, {**keep, "created_at": utcnow()}, ["run_key", "request_hash"])
            conn.execute(sa.update(t.llm_calls).where(t.llm_calls.c.id == row_id).values(**done))

    def reconcile_lost_calls(self, *, run_key: str | None = None, work_unit_id: str | None = None,
                             older_than: dt.timedelta | None = None, purpose: str | None = None) -> int:
        """Mark attempts left ``started`` by a process that ended during the call as ``lost`` (they
        keep their worst-case price, so budgets count them): those of one unit in a run (its next
        attempt knows the earlier ones are over), or any older than ``older_than``. Returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(_lost_calls(run_key=run_key, work_unit_id=work_unit_id, older_than=older_than,
                                            purpose=purpose)).rowcount

    def kept_llm_answer(self, *, run_key: str, request_hash: str) -> str | None:
        a = t.llm_answers
        with self._autocommit() as conn:
            return conn.execute(sa.select(a.c.raw).where(a.c.run_key == run_key,
                                                          a.c.request_hash == request_hash)).scalar()

    def llm_calls(self, *, run_key: str | None = None, roadmap_id: str | None = None,
                  purpose: str | None = None) -> list[dict]:
        c = t.llm_calls
        query = sa.select(c).order_by(c.c.id)
        if run_key:
            query = query.where(c.c.run_key == run_key)
        if roadmap_id is not None:
            query = query.where(c.c.roadmap_id == roadmap_id)
        if purpose is not None:
            query = query.where(c.c.purpose == purpose)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def newest_answered_call(self, *, roadmap_id: str, backend: str, since: dt.datetime) -> dict | None:
        """The newest Messages API call of the roadmap on ``backend`` started at or after ``since``
        that has its answer (or its error): outcome ``ok``, ``error`` or ``malformed``; None if none."""
        c = t.llm_calls
        query = (sa.select(c).where(c.c.roadmap_id == roadmap_id, c.c.backend == backend, c.c.ts >= as_utc(since),
                                    c.c.outcome.in_(("ok", "error", "malformed")))
                 .order_by(c.c.ts.desc(), c.c.id.desc()).limit(1))
        with self._autocommit() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def llm_spend_scopes(self, *, run_key: str | None, agent_id: str, week: int | None) -> dict[str, tuple[float, int]]:
        """``llm_spend`` of the run, of its ``week`` and of ``agent_id`` in it, in one query (the budget
        check before every call): {"run": ..., "week": ... (when a week is given), "agent": ...}."""
        c = t.llm_calls
        tokens = _all_tokens(c)
        scopes = {"run": sa.true(), "agent": c.c.agent_id == agent_id}
        if week is not None:
            scopes["week"] = c.c.week == week
        columns = []
        for cond in scopes.values():
            columns += [sa.func.coalesce(sa.func.sum(c.c.cost_usd).filter(cond), 0.0),
                        sa.func.coalesce(sa.func.sum(tokens).filter(cond), 0)]
        query = sa.select(*columns)
        if run_key is not None:
            query = query.where(c.c.run_key == run_key)
        with self._autocommit() as conn:
            row = conn.execute(query).one()
        return {name: (float(row[2 * i]), int(row[2 * i + 1])) for i, name in enumerate(scopes)}

    def llm_spend(self, *, run_key: str | None = None, agent_id: str | None = None,
                  week: int | None = None) -> tuple[float, int]:
        """(USD, tokens of all four kinds) booked so far in run ``run_key`` (all runs when None),
        optionally for one agent or week."""
        c = t.llm_calls
        tokens = _all_tokens(c)
        query = sa.select(sa.func.coalesce(sa.func.sum(c.c.cost_usd), 0.0), sa.func.coalesce(sa.func.sum(tokens), 0))
        if run_key is not None:
            query = query.where(c.c.run_key == run_key)
        if agent_id is not None:
            query = query.where(c.c.agent_id == agent_id)
        if week is not None:
            query = query.where(c.c.week == week)
        with self._autocommit() as conn:
            usd, count = conn.execute(query).one()
        return float(usd), int(count)

    def cache_response(self, request_hash: str, model: str, deliverable: dict) -> None:
        with self._autocommit() as conn:
            _upsert(conn, t.llm_responses, {"request_hash": request_hash, "model": model,
                                            "deliverable": deliverable, "created_at": utcnow()}, ["request_hash"])

    def cached_response(self, request_hash: str) -> dict | None:
        r = t.llm_responses
        with self._autocommit() as conn:
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

    def save_standup(self, *, roadmap_id: str, standup_date: str, agent_id: str, run_id: str, backend: str,
                     model: str, report: dict, batch_id: str | None = None) -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.standups, {
                "roadmap_id": roadmap_id, "standup_date": standup_date, "agent_id": agent_id, "run_id": run_id,
                "backend": backend, "model": model, "batch_id": batch_id, "report": report, "updated_at": utcnow(),
            }, ["roadmap_id", "standup_date", "agent_id"])

    def standups(self, standup_date: str | None = None, *, roadmap_id: str | None = None) -> list[dict]:
        s = t.standups
        query = sa.select(s).order_by(s.c.standup_date, s.c.agent_id)
        if standup_date:
            query = query.where(s.c.standup_date == standup_date)
        if roadmap_id is not None:
            query = query.where(s.c.roadmap_id == roadmap_id)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- probes and KPIs

    def record_probe_sample(self, *, probe_id: str, kind: str, ok: bool, latency_ms: float, detail: str = "",
                            run_id: str | None = None, ts: dt.datetime | None = None,
                            status: str | None = None) -> dict:
        """Append one probe sample (``status`` ok | failed | offline; from ``ok`` by default);
        returns the stored row."""
        status = status or ("ok" if ok else "failed")
        if status not in ("ok", "failed", "offline"):
            raise ValueError(f"probe sample status must be ok, failed or offline, not {status!r}")
        row = {"ts": as_utc(ts) if ts else utcnow(), "probe_id": probe_id, "kind": kind, "ok": bool(ok),
               "status": status, "latency_ms": float(latency_ms), "detail": detail[:4000], "run_id": run_id}
        with self._autocommit() as conn:
            row["id"] = conn.execute(sa.insert(t.probe_samples).values(**row)).inserted_primary_key[0]
        return row

    def probe_samples(self, probe_id: str | None = None, since: dt.datetime | None = None) -> list[dict]:
        """Samples of one probe (or all), oldest first, optionally only those at or after ``since``."""
        p = t.probe_samples
        query = sa.select(p).order_by(p.c.ts, p.c.id)
        if probe_id is not None:
            query = query.where(p.c.probe_id == probe_id)
        if since is not None:
            query = query.where(p.c.ts >= as_utc(since))
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def probe_times(self, probe_id: str, since: dt.datetime) -> list[dt.datetime]:
        """When ``probe_id`` was sampled at or after ``since``, oldest first, as aware UTC."""
        p = t.probe_samples
        query = sa.select(p.c.ts).where(p.c.probe_id == probe_id, p.c.ts >= as_utc(since)).order_by(p.c.ts)
        with self._autocommit() as conn:
            return [as_utc(ts) for ts in conn.execute(query).scalars()]

    def _probe_counts(self, probe_ids: Sequence[str], window_hours: float,
                      now: dt.datetime | None) -> dict[str, tuple[int, int]]:
        """{probe_id: (samples, ok samples)} in the window (now - window_hours, now]."""
        p = t.probe_samples
        end = as_utc(now) if now else utcnow()
        start = end - dt.timedelta(hours=window_hours)
        oks = sa.func.sum(sa.case((p.c.ok, 1), else_=0))
        query = (sa.select(p.c.probe_id, sa.func.count(), oks)  # "offline" samples checked nothing: not counted
                 .where(p.c.probe_id.in_(list(probe_ids)), p.c.ts > start, p.c.ts <= end, p.c.status != "offline")
                 .group_by(p.c.probe_id))
        with self._autocommit() as conn:
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
                          run_key: str | None = None, roadmap_id: str | None = None, run_id: str | None = None,
                          ts: dt.datetime | None = None) -> dict:
        """Append one KPI sample of a roadmap (``status`` is ``ok`` with a value, or ``missing``
        without), measured for run ``run_key`` when one asked; returns it."""
        if status not in ("ok", "missing"):
            raise ValueError(f"KPI sample status must be 'ok' or 'missing', not {status!r}")
        if status == "ok" and value is None:
            raise ValueError(f"KPI {kpi_id}: an 'ok' sample needs a value")
        row = {"ts": as_utc(ts) if ts else utcnow(), "kpi_id": kpi_id,
               "roadmap_id": roadmap_id or (roadmap_of(run_key) if run_key else ""), "run_key": run_key,
               "value": None if value is None else float(value), "status": status, "source": source,
               "detail": detail[:4000], "run_id": run_id}
        with self.engine.begin() as conn:
            row["id"] = conn.execute(sa.insert(t.kpi_samples).values(**row)).inserted_primary_key[0]
        return row

    def kpi_samples(self, kpi_id: str | None = None, *, roadmap_id: str | None = None,
                    run_key: str | None = None) -> list[dict]:
        k = t.kpi_samples
        query = sa.select(k).order_by(k.c.ts, k.c.id)
        if kpi_id is not None:
            query = query.where(k.c.kpi_id == kpi_id)
        if roadmap_id is not None:
            query = query.where(k.c.roadmap_id == roadmap_id)
        if run_key is not None:
            query = query.where(k.c.run_key == run_key)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def latest_kpi_values(self, *, roadmap_id: str | None = None, run_key: str | None = None) -> dict[str, dict]:
        """The newest sample of every KPI (of a roadmap, of one run): {kpi_id: row}."""
        k = t.kpi_samples
        newest = sa.func.row_number().over(partition_by=k.c.kpi_id, order_by=(k.c.ts.desc(), k.c.id.desc()))
        query = sa.select(k, newest.label("rank"))
        if roadmap_id is not None:
            query = query.where(k.c.roadmap_id == roadmap_id)
        if run_key is not None:
            query = query.where(k.c.run_key == run_key)
        ranked = query.subquery()
        query = sa.select(*(ranked.c[c.name] for c in k.c)).where(ranked.c.rank == 1).order_by(ranked.c.kpi_id)
        with self._autocommit() as conn:
            return {r["kpi_id"]: dict(r) for r in conn.execute(query).mappings()}

    def save_kpi_validation(self, *, run_key: str, decision_point: str | None = None, success: bool,
                            results: list[dict], ts: dt.datetime | None = None) -> None:
        """Store the KPI check of a run at a decision point; a rerun replaces it, never duplicates."""
        with self.engine.begin() as conn:
            _upsert(conn, t.kpi_validations, {
                "ts": as_utc(ts) if ts else utcnow(), "roadmap_id": roadmap_of(run_key), "run_key": run_key, "decision_point": decision_point or "",
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
        with self._autocommit() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            row["decision_point"] = row["decision_point"] or None
        return rows


    # ---------------------------------------------------------------- gates

    def save_gate_result(self, *, run_key: str, gate_id: str, status: str, criteria: list[dict],
                         blocked_units: list[str], decided_by: str, dag_id: str | None = None,
                         run_id: str | None = None, reason: str = "") -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.gate_results, {
                "roadmap_id": roadmap_of(run_key), "run_key": run_key, "gate_id": gate_id, "dag_id": dag_id,
                "run_id": run_id, "status": status, "criteria": criteria, "blocked_units": blocked_units,
                "decided_by": decided_by, "reason": reason, "evaluated_at": utcnow(),
            }, ["run_key", "gate_id"])

    def gate_results(self, run_key: str) -> list[dict]:
        """The gate results of one run, oldest evaluation first."""
        g = t.gate_results
        query = sa.select(g).where(g.c.run_key == run_key).order_by(g.c.evaluated_at, g.c.id)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- enforcer reviews

    def review_verdict(self, *, roadmap_id: str, reviewer: str, work_unit_id: str, content_hash: str,
                       method: str) -> dict | None:
        """The stored verdict on this content by this reviewer and method, if any."""
        r = t.reviews
        query = sa.select(r).where(r.c.roadmap_id == roadmap_id, r.c.reviewer == reviewer,
                                   r.c.work_unit_id == work_unit_id, r.c.content_hash == content_hash,
                                   r.c.method == method)
        with self._autocommit() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def save_review_verdict(self, *, roadmap_id: str, reviewer: str, work_unit_id: str, content_hash: str,
                            method: str, verdict: str, reasons: list[str], run_key: str | None) -> None:
        """Store a verdict once: a verdict already stored for the same content is kept."""
        with self.engine.begin() as conn:
            stmt = _insert(conn, t.reviews).values(
                roadmap_id=roadmap_id, reviewer=reviewer, work_unit_id=work_unit_id, content_hash=content_hash,
                method=method, verdict=verdict, reasons=list(reasons), run_key=run_key, created_at=utcnow())
            conn.execute(stmt.on_conflict_do_nothing(
                index_elements=["roadmap_id", "reviewer", "work_unit_id", "content_hash", "method"]))

    def reviews(self, roadmap_id: str | None = None) -> list[dict]:
        r = t.reviews
        query = sa.select(r).order_by(r.c.id)
        if roadmap_id is not None:
            query = query.where(r.c.roadmap_id == roadmap_id)
        with self._autocommit() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- go/no-go decisions

    def save_decision(self, *, run_key: str, decision_point: str, week: int, decision: str, decided_by: str,
                      reason: str, gates: dict, kpis_ok: bool | None) -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.decisions, {
                "roadmap_id": roadmap_of(run_key), "run_key": run_key, "decision_point": decision_point,
                "week": week, "decision": decision, "decided_by": decided_by, "reason": reason, "gates": gates,
                "kpis_ok": kpis_ok, "decided_at": utcnow(),
            }, ["run_key", "decision_point"])
            self._event(conn, f"decision_{decision.lower()}", reason, run_key=run_key,
                        data={"decision_point": decision_point, "run_key": run_key, "decided_by": decided_by})

    def decisions(self, run_key: str) -> list[dict]:
        """The decisions of one run, oldest first."""
        d = t.decisions
        query = sa.select(d).where(d.c.run_key == run_key).order_by(d.c.decided_at, d.c.id)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- week outcomes and extensions

    def save_week_outcome(self, *, run_key: str, week: int, dag_id: str, run_id: str, state: str,
                          problems: list[str], delivered: int, total: int) -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.week_outcomes, {
                "roadmap_id": roadmap_of(run_key), "run_key": run_key, "week": week, "dag_id": dag_id,
                "run_id": run_id, "state": state, "problems": list(problems), "delivered": delivered,
                "total": total, "finished_at": utcnow(),
            }, ["run_key", "week"])

    def week_outcomes(self, run_key: str) -> dict[int, dict]:
        w = t.week_outcomes
        with self._autocommit() as conn:
            rows = conn.execute(sa.select(w).where(w.c.run_key == run_key).order_by(w.c.week)).mappings().all()
        return {r["week"]: dict(r) for r in rows}

    def open_extension(self, *, run_key: str, decision_point: str, days: float, ends_at: dt.datetime,
                       reason: str) -> dict:
        """Record the next timeline extension of ``decision_point`` in the run (numbered from 1)."""
        x = t.extensions
        with self.engine.begin() as conn:
            number = 1 + (conn.execute(sa.select(sa.func.max(x.c.number)).where(
                x.c.run_key == run_key, x.c.decision_point == decision_point)).scalar() or 0)
            row = {"roadmap_id": roadmap_of(run_key), "run_key": run_key, "decision_point": decision_point,
                   "number": number, "days": float(days), "started_at": utcnow(), "ends_at": as_utc(ends_at),
                   "outcome": "pending", "reason": reason}
            row["id"] = conn.execute(sa.insert(x).values(**row)).inserted_primary_key[0]
            self._event(conn, "timeline_extended", f"{decision_point}: extension {number} of {days:g} day(s): {reason}",
                        run_key=run_key, data={"decision_point": decision_point, "number": number, "days": days,
                                               "ends_at": row["ends_at"].isoformat()})
        return row

    def close_extension(self, extension_id: int, *, outcome: str, reason: str) -> None:
        x = t.extensions
        with self.engine.begin() as conn:
            conn.execute(sa.update(x).where(x.c.id == extension_id).values(
                outcome=outcome, reason=reason, evaluated_at=utcnow()))

    def extensions(self, run_key: str, decision_point: str | None = None) -> list[dict]:
        x = t.extensions
        query = sa.select(x).where(x.c.run_key == run_key).order_by(x.c.decision_point, x.c.number)
        if decision_point is not None:
            query = query.where(x.c.decision_point == decision_point)
        with self._autocommit() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            row["started_at"], row["ends_at"] = as_utc(row["started_at"]), as_utc(row["ends_at"])
        return rows

    def extension_days(self, run_key: str) -> float:
        """How many roadmap days the run's timeline has been extended so far."""
        x = t.extensions
        with self._autocommit() as conn:
            return float(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(x.c.days), 0.0))
                                      .where(x.c.run_key == run_key)).scalar())

    # ---------------------------------------------------------------- incidents

    def open_incident(self, *, run_key: str, kind: str, subject: str, agents: Sequence[str], detail: str,
                      actor: str, reopen: bool = True) -> tuple[dict, bool]:
        """Open the incident of (run, kind, subject) once. Returns (row, opened now). An open one is
        left as it is (a retry, a rerun or a second scheduler seeing the same problem); a resolved one
        is reopened at level 1 when the problem comes back (unless ``reopen`` is False: a watched
        condition a person accepted stays accepted)."""
        now = utcnow()
        i = t.incidents
        with self.engine.begin() as conn:
            inserted = conn.execute(_insert(conn, i).values(
                roadmap_id=roadmap_of(run_key), run_key=run_key, kind=kind, subject=subject, agents=list(agents),
                state="open", level=1, detail=detail[:4000], opened_at=now, level_since=now, updated_at=now,
            ).on_conflict_do_nothing(index_elements=["run_key", "kind", "subject"]).returning(i.c.id)).first()
            where = (i.c.run_key == run_key) & (i.c.kind == kind) & (i.c.subject == subject)
            opened = inserted is not None
            if not opened and reopen:
                reopened = conn.execute(sa.update(i).where(where & (i.c.state == "resolved")).values(
                    state="open", level=1, detail=detail[:4000], level_since=now, resolved_at=None, resolution="",
                    updated_at=now).returning(i.c.id)).first()
                opened = reopened is not None
            row = dict(conn.execute(sa.select(i).where(where)).mappings().one())
            if opened:
                self._incident_action(conn, row["id"], 1, "opened" if inserted is not None else "reopened", "ok",
                                      detail, actor, now)
        return row, opened

    def incident_action(self, incident_id: int, *, level: int, action: str, outcome: str, detail: str = "",
                        actor: str) -> None:
        with self.engine.begin() as conn:
            self._incident_action(conn, incident_id, level, action, outcome, detail, actor, utcnow())

    @staticmethod
    def _incident_action(conn, incident_id, level, action, outcome, detail, actor, at) -> None:
        conn.execute(sa.insert(t.incident_actions).values(incident_id=incident_id, level=level, action=action,
                                                          outcome=outcome, detail=detail[:4000], actor=actor, at=at))

    def escalate_incident(self, incident_id: int, *, from_level: int, to_level: int, detail: str, actor: str) -> bool:
        """Move an open incident from ``from_level`` to ``to_level``; False when another sweep
        already did (the compare-and-set keeps one escalation per level)."""
        now = utcnow()
        i = t.incidents
        with self.engine.begin() as conn:
            moved = conn.execute(sa.update(i).where(
                (i.c.id == incident_id) & (i.c.state == "open") & (i.c.level == from_level)
            ).values(level=to_level, level_since=now, updated_at=now).returning(i.c.id)).first()
            if moved is not None:
                self._incident_action(conn, incident_id, to_level, f"escalated_to_level_{to_level}", "ok", detail,
                                      actor, now)
        return moved is not None

    def resolve_incident(self, incident_id: int, *, resolution: str, actor: str) -> bool:
        now = utcnow()
        i = t.incidents
        with self.engine.begin() as conn:
            row = conn.execute(sa.update(i).where((i.c.id == incident_id) & (i.c.state == "open")).values(
                state="resolved", resolution=resolution[:4000], resolved_at=now, updated_at=now,
            ).returning(i.c.level)).first()
            if row is not None:
                self._incident_action(conn, incident_id, row[0], "resolved", "ok", resolution, actor, now)
        return row is not None

    def incidents(self, *, roadmap_id: str, run_key: str | None = None, open_only: bool = False,
                  with_actions: bool = False) -> list[dict]:
        """Incidents of a roadmap (of one run and its run-less problems, when ``run_key`` is given),
        oldest first."""
        i, a = t.incidents, t.incident_actions
        query = sa.select(i).where(i.c.roadmap_id == roadmap_id)
        if run_key is not None:
            query = query.where(i.c.run_key.in_([run_key, f"{roadmap_id}:operations"]))
        if open_only:
            query = query.where(i.c.state == "open")
        with self._autocommit() as conn:
            rows = [dict(r) for r in conn.execute(query.order_by(i.c.opened_at, i.c.id)).mappings()]
            if with_actions and rows:
                actions = conn.execute(sa.select(a).where(a.c.incident_id.in_([r["id"] for r in rows]))
                                       .order_by(a.c.at, a.c.id)).mappings()
                by_incident: dict[int, list[dict]] = {}
                for action in actions:
                    by_incident.setdefault(action["incident_id"], []).append(dict(action))
                for row in rows:
                    row["actions"] = by_incident.get(row["id"], [])
        return rows

    # ---------------------------------------------------------------- connection fallbacks and agents' inbox

    def set_connection_override(self, *, roadmap_id: str, conn_id: str, active_conn_id: str, reason: str) -> None:
        with self.engine.begin() as conn:
            _upsert(conn, t.connection_overrides, {"roadmap_id": roadmap_id, "conn_id": conn_id,
                                                   "active_conn_id": active_conn_id, "reason": reason,
                                                   "updated_at": utcnow()}, ["roadmap_id", "conn_id"])

    def active_connection(self, roadmap_id: str, conn_id: str) -> str:
        """The connection in use for ``conn_id`` (its fallback after a level 1 switch, else itself)."""
        o = t.connection_overrides
        with self._autocommit() as conn:
            active = conn.execute(sa.select(o.c.active_conn_id).where(
                o.c.roadmap_id == roadmap_id, o.c.conn_id == conn_id)).scalar()
        return active or conn_id

    def agent_notices(self, *, run_key: str, agent_id: str) -> list[dict]:
        """What agent ``agent_id`` was told in run ``run_key`` (and about the roadmap's services),
        oldest first: its inbox, which its next prompts include."""
        e = t.events
        roadmap_id = roadmap_of(run_key)
        query = sa.select(e).where(e.c.kind == "agent_notice", e.c.agent_id == agent_id,
                                   e.c.run_key.in_([run_key, f"{roadmap_id}:operations"])).order_by(e.c.ts, e.c.id)
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- trigger-based alerts

    def claim_alert(self, *, run_key: str, notification_id: str, subject: str, text: str,
                    agents: Sequence[str]) -> dict | None:
        """Record the alert of (run, notification, subject) once, with the agents' inbox notices in
        the same transaction. Returns the row to send, or None when it was already raised (a retry,
        a rerun): at most one message per event."""
        now = utcnow()
        a = t.alerts
        with self.engine.begin() as conn:
            inserted = conn.execute(_insert(conn, a).values(
                roadmap_id=roadmap_of(run_key), run_key=run_key, notification_id=notification_id, subject=subject,
                text=text, agents=list(agents), status="sending", created_at=now,
            ).on_conflict_do_nothing(index_elements=["run_key", "notification_id", "subject"])
                .returning(*a.c)).mappings().first()
            if inserted is None:
                return None
            for agent_id in agents:
                self._event(conn, "agent_notice", text, run_key=run_key, agent_id=agent_id,
                            data={"alert": inserted["id"], "notification": notification_id})
        return dict(inserted)

    def finish_alert(self, alert_id: int, *, status: str, channel: str, detail: str) -> None:
        a = t.alerts
        with self.engine.begin() as conn:
            conn.execute(sa.update(a).where(a.c.id == alert_id).values(
                status=status, channel=channel, detail=detail[:2000], sent_at=utcnow() if status == "sent" else None))

    def alerts(self, *, roadmap_id: str, run_key: str | None = None) -> list[dict]:
        a = t.alerts
        query = sa.select(a).where(a.c.roadmap_id == roadmap_id).order_by(a.c.id)
        if run_key is not None:
            query = query.where(a.c.run_key.in_([run_key, f"{roadmap_id}:operations"]))
        with self._autocommit() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---------------------------------------------------------------- units changed by level 2

    def save_unit_override(self, *, run_key: str, work_unit_id: str, lead_agent: str | None,
                           depends_on: list[str] | None, incident_id: int | None, proposed_by: str) -> None:
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(t.unit_overrides).where(
                t.unit_overrides.c.run_key == run_key, t.unit_overrides.c.work_unit_id == work_unit_id)).mappings().first()
            _upsert(conn, t.unit_overrides, {
                "run_key": run_key, "work_unit_id": work_unit_id,
                "lead_agent": lead_agent or (current["lead_agent"] if current else None),
                "depends_on": depends_on if depends_on is not None else (current["depends_on"] if current else None),
                "incident_id": incident_id, "proposed_by": proposed_by, "updated_at": utcnow(),
            }, ["run_key", "work_unit_id"])

    def unit_overrides(self, run_key: str) -> dict[str, dict]:
        """Every unit of run ``run_key`` that level 2 or 3 changed: {work unit: row}."""
        o = t.unit_overrides
        with self._autocommit() as conn:
            return {r["work_unit_id"]: dict(r) for r in conn.execute(sa.select(o).where(o.c.run_key == run_key)).mappings()}

    def unit_override(self, *, run_key: str, work_unit_id: str) -> dict | None:
        o = t.unit_overrides
        with self._autocommit() as conn:
            row = conn.execute(sa.select(o).where(o.c.run_key == run_key, o.c.work_unit_id == work_unit_id)).mappings().first()
        return dict(row) if row else None

    # ---------------------------------------------------------------- stakeholder reports

    def save_report(self, *, run_key: str, week: int, markdown: str, summary: dict, written_by: str,
                    files: dict[str, str], slack_status: str = "not_sent", slack_detail: str = "") -> None:
        """Keep the week's report of a run (``files``: name -> base64); made again, it replaces the row."""
        now = utcnow()
        with self.engine.begin() as conn:
            _upsert(conn, t.reports, {
                "roadmap_id": roadmap_of(run_key), "run_key": run_key, "week": week, "markdown": markdown,
                "summary": summary, "written_by": written_by, "files": files, "slack_status": slack_status,
                "slack_detail": slack_detail[:2000], "created_at": now, "updated_at": now,
            }, ["run_key", "week"], keep=["created_at"])

    def reports(self, run_key: str) -> list[dict]:
        r = t.reports
        with self._autocommit() as conn:
            return [dict(row) for row in conn.execute(sa.select(r).where(r.c.run_key == run_key).order_by(r.c.week))
                    .mappings()]

    # ---------------------------------------------------------------- checkpoints (castmatch.checkpoints)

    def save_checkpoint(self, *, run_key: str, checkpoint_id: str, day: int, week: int, moment: dt.datetime,
                        figures: dict, actions: list, summary: str, written_by: str) -> None:
        """Keep a checkpoint of a run's roadmap day; taken again, it replaces the row."""
        with self.engine.begin() as conn:
            _upsert(conn, t.checkpoints, {
                "roadmap_id": roadmap_of(run_key), "run_key": run_key, "checkpoint_id": checkpoint_id, "day": day,
                "week": week, "moment": moment, "figures": figures, "actions": actions, "summary": summary,
                "written_by": written_by, "taken_at": utcnow(),
            }, ["run_key", "checkpoint_id", "day"])

    def set_checkpoint_summary(self, *, run_key: str, checkpoint_id: str, day: int, summary: str,
                               written_by: str) -> None:
        c = t.checkpoints
        with self.engine.begin() as conn:
            conn.execute(sa.update(c).where((c.c.run_key == run_key) & (c.c.checkpoint_id == checkpoint_id)
                                            & (c.c.day == day)).values(summary=summary[:4000], written_by=written_by))

    def checkpoints(self, run_key: str, checkpoint_id: str | None = None, *, checkpoint_ids: Sequence[str] = (),
                    newest: int | None = None) -> list[dict]:
        """A run's checkpoints (of ``checkpoint_id``, or of any of ``checkpoint_ids``) in the order of
        the moments they stand for; ``newest``: only that many, the latest ones, newest first."""
        c = t.checkpoints
        query = sa.select(c).where(c.c.run_key == run_key)
        if checkpoint_id:
            query = query.where(c.c.checkpoint_id == checkpoint_id)
        if checkpoint_ids:
            query = query.where(c.c.checkpoint_id.in_(list(checkpoint_ids)))
        if newest is not None:
            query = query.order_by(c.c.moment.desc(), c.c.id.desc()).limit(newest)
        else:
            query = query.order_by(c.c.moment, c.c.id)
        with self._autocommit() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        for row in rows:
            row["moment"] = as_utc(row["moment"])
        return rows
