"""Live checks of the services a roadmap depends on, each through an Airflow connection.

A probe never raises: a dead port, an unknown host or a missing connection is a sample with
``ok=False`` and a detail that says what failed. Every network step has a short timeout (about
3 s), so a gate re-evaluating its probes never hangs on a black hole. Every sample is stored,
because uptime ("stable for 24+ hours", ">95% uptime") is computed from samples over a window.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from castmatch.describe import describe
from castmatch.shared_redis import redis_prefix

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0
DETAIL_LIMIT = 500


class ProbeFailed(Exception):
    """A check that reached its verdict: the service is not usable, for the reason given."""


class ProbeOffline(Exception):
    """The service was not checked: the backend in use answers without it (offline, replay)."""


@dataclass(frozen=True)
class ProbeContext:
    """What a check may need besides its probe: the roadmap (for the Claude probe's model and
    prices) and the run its ledger row belongs to."""

    store: Any = None
    config: Any = None
    run_key: str | None = None
    run_id: str | None = None


# ---------------------------------------------------------------------------- connections


def get_connection(conn_id: str):
    """The Airflow connection ``conn_id`` (metadata DB, secrets backend or ``AIRFLOW_CONN_<ID>``)."""
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:
        # Matched by name: the Task SDK and Airflow core each have a class of this name.
        if type(exc).__name__ == "AirflowNotFoundException":
            raise ProbeFailed(f"Airflow connection {conn_id!r} is not defined "
                              f"(add it, or set AIRFLOW_CONN_{conn_id.upper()})") from None
        raise


def redis_client(conn, *, timeout: float = TIMEOUT_SECONDS):
    """A redis client for an Airflow connection, failing fast: no retries, short socket timeouts
    (redis-py retries a refused connection with back-off for ~3 s by default)."""
    import redis

    from castmatch.shared_redis import client_options

    extra = conn.extra_dejson or {}
    schema = str(conn.schema or "")
    db = extra.get("db", int(schema) if schema.isdigit() else 0)
    kwargs: dict[str, Any] = {
        "host": conn.host or "127.0.0.1", "port": int(conn.port or 6379), "db": int(db),
        "username": conn.login or None, "password": conn.password or None, **client_options(timeout),
    }
    if extra.get("ssl"):  # the extras the Redis provider's hook understands
        kwargs["ssl"] = True
        for key in ("ssl_cert_reqs", "ssl_ca_certs", "ssl_keyfile", "ssl_certfile", "ssl_check_hostname"):
            if key in extra:
                kwargs[key] = extra[key]
    return redis.Redis(**kwargs)


SQL_DRIVERS = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2"}
PG_SSL_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


def sqlalchemy_engine(conn, *, timeout: float = TIMEOUT_SECONDS, read_only: bool = False,
                      statement_timeout_s: float | None = None):
    """A pool-less SQLAlchemy engine for a ``postgres`` (or ``sqlite``) Airflow connection.

    ``read_only`` makes every transaction read-only on PostgreSQL: a KPI query can never change
    the product database it measures.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        return sa.create_engine(f"sqlite:///{conn.host}", poolclass=NullPool,
                                connect_args={"timeout": timeout})
    driver = SQL_DRIVERS.get(conn_type)
    if driver is None:
        raise ProbeFailed(f"connection {conn.conn_id!r} has type {conn.conn_type!r}; "
                          f"supported: {', '.join(sorted({*SQL_DRIVERS, 'sqlite'}))}")
    url = sa.engine.URL.create(driver, username=conn.login or None, password=conn.password or None,
                               host=conn.host or "127.0.0.1", port=conn.port or 5432,
                               database=conn.schema or None)
    extra = conn.extra_dejson or {}
    # libpq's connect_timeout is whole seconds, at least 2
    connect_args: dict[str, Any] = {"connect_timeout": max(2, int(timeout)),
                                    **{k: extra[k] for k in PG_SSL_EXTRAS if k in extra}}
    options = []
    if statement_timeout_s:
        options.append(f"-c statement_timeout={int(statement_timeout_s * 1000)}")
    if read_only:
        options.append("-c default_transaction_read_only=on")
    if options:
        connect_args["options"] = " ".join(options)
    return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)


describe_error = describe  # one line naming the error (castmatch.describe)


# ---------------------------------------------------------------------------- checks


def _where(conn, default_port: int, db: Any = None) -> str:
    at = f"{conn.host or '127.0.0.1'}:{conn.port or default_port}"
    return f"{at}/{db}" if db not in (None, "") else at


def check_redis(probe, timeout: float, ctx: ProbeContext | None = None) -> str:
    """PING, then SET/GET/DEL of a key of our own: a server that answers PING but refuses
    writes (read-only replica, OOM, protected mode) is not a usable short-term memory."""
    conn = get_connection(probe.conn_id)
    client = redis_client(conn, timeout=timeout)
    where = _where(conn, 6379, client.connection_pool.connection_kwargs.get("db"))
    key = f"{redis_prefix()}:probe:{probe.id}:{uuid.uuid4().hex[:12]}"
    token = uuid.uuid4().hex
    try:
        if not client.ping():
            raise ProbeFailed(f"{where}: PING got no PONG")
        client.set(key, token, ex=60)
        read = client.get(key)
        client.delete(key)
    except ProbeFailed:
        raise
    except Exception as exc:
        raise ProbeFailed(f"{probe.conn_id} ({where}): {describe_error(exc)}") from None
    finally:
        client.close()
    if read is None or read.decode() != token:
        raise ProbeFailed(f"{where}: wrote {key} but read back {read!r}")
    return f"PING and SET/GET/DEL ok on {where}"


def check_postgres(probe, timeout: float, ctx: ProbeContext | None = None) -> str:
    import sqlalchemy as sa

    conn = get_connection(probe.conn_id)
    where = _where(conn, 5432, conn.schema)
    engine = sqlalchemy_engine(conn, timeout=timeout, statement_timeout_s=timeout)
    try:
        with engine.connect() as db:
            value = db.execute(sa.text("SELECT 1")).scalar()
    except Exception as exc:
        raise ProbeFailed(f"{probe.conn_id} ({where}): {describe_error(exc)}") from None
    finally:
        engine.dispose()
    if value != 1:
        raise ProbeFailed(f"{where}: SELECT 1 returned {value!r}")
    return f"SELECT 1 ok on {where}"


def url_without_credentials(url: str) -> str:
    """``url`` as shown in a sample: a user:password@ part never reaches the store or the log."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=f"***@{netloc}").geturl()


def check_http(probe, timeout: float, ctx: ProbeContext | None = None) -> str:
    import urllib.error
    import urllib.request

    url = probe.url
    if not url and probe.conn_id:  # a health URL kept in a connection instead of the YAML
        conn = get_connection(probe.conn_id)
        url = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'http'}://{conn.host}:{conn.port or 80}/"
    if not url:
        raise ProbeFailed(f"probe {probe.id} has no url")
    shown = url_without_credentials(url)
    request = urllib.request.Request(url, headers={"User-Agent": "castmatch-probe"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URL)
            status = response.status
    except urllib.error.HTTPError as exc:
        raise ProbeFailed(f"GET {shown}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = describe_error(exc.reason) if isinstance(exc.reason, BaseException) else str(exc.reason)
        raise ProbeFailed(f"GET {shown}: {reason}") from None
    except Exception as exc:
        detail = describe_error(exc)
        secret = urlsplit(url).password
        raise ProbeFailed(f"GET {shown}: {detail.replace(secret, '***') if secret else detail}") from None
    if not 200 <= status < 300:
        raise ProbeFailed(f"GET {shown}: HTTP {status}")
    return f"GET {shown}: HTTP {status}"


LLM_PROBE_TIMEOUT_SECONDS = 15.0  # a real message, however small, takes longer than a TCP connect
LLM_PROBE_PROMPT = "Reply with one word: ok"


def check_llm(probe, timeout: float, ctx: ProbeContext | None = None) -> str:
    """Whether Claude answers a query: on ``live``/``record`` one minimal request (a 1-token
    message on the team's default model), booked in the audit ledger as a ``probe`` call. On
    ``offline``/``replay`` nothing is sent and the probe says so: the criterion was not checked
    against Claude (``ProbeOffline``)."""
    from castmatch.llm.backends import backend_name

    ctx = ctx or ProbeContext()
    conn_id = probe.conn_id or "anthropic_default"
    try:
        name = backend_name(conn_id)
    except ValueError as exc:
        raise ProbeFailed(str(exc)) from None
    if name in ("offline", "replay"):
        raise ProbeOffline(f"backend {name}: not checked against Claude (no request sent)")
    conn = get_connection(conn_id)
    if not conn.password:
        raise ProbeFailed(f"backend {name}: connection {conn_id!r} has no API key (password)")
    return _claude_query(probe, name, conn_id, max(timeout, LLM_PROBE_TIMEOUT_SECONDS), ctx)


LLM_PROBE_ATTEMPTS = 3  # a rate limit or an overload is retried briefly before the sample fails
LLM_PROBE_FRESH_SECONDS = 60.0  # an answer this recent is still "Claude responding": not paid for again


def _fresh_claude_answer(probe, ctx: ProbeContext) -> dict | None:
    """An answer from Claude of the last ``LLM_PROBE_FRESH_SECONDS`` on the backend in use, so no
    query is paid for: the Claude probe's own ok sample (two gates evaluated a few seconds apart
    need one query, not two), else Claude's answer to the roadmap's own newest call. None if
    neither (a failure is always checked again)."""
    import datetime as dt

    from castmatch.clock import as_utc
    from castmatch.llm.backends import backend_name

    conn_id = probe.conn_id or "anthropic_default"
    try:
        name = backend_name(conn_id)
    except ValueError:
        return None
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(seconds=LLM_PROBE_FRESH_SECONDS)
    recent = ctx.store.probe_samples(probe.id, since=since)
    if recent and recent[-1]["status"] == "ok" and recent[-1]["detail"].startswith(f"backend {name}:"):
        sample = dict(recent[-1])
        sample["detail"] = f"{sample['detail']} (checked {(now - as_utc(sample['ts'])).total_seconds():.0f} s ago)"
        return sample
    return _answered_call_sample(probe, ctx, conn_id, name, since, now)


def _answered_call_sample(probe, ctx: ProbeContext, conn_id: str, backend: str, since, now) -> dict | None:
    """The roadmap's newest call since ``since`` on the connection the probe checks, if Claude
    answered it (a gate judged right after the agents' calls), stored as this probe's sample;
    None if there is none, it failed, or the agents call another connection after a fallback."""
    import datetime as dt

    from castmatch.clock import as_utc
    from castmatch.runs import roadmap_id_of

    config = ctx.config
    if config is None or not config.llm or backend in ("offline", "replay"):
        return None
    roadmap_id = roadmap_id_of(config)
    if ctx.store.active_connection(roadmap_id, config.llm.conn_id) != conn_id:
        return None
    call = ctx.store.newest_answered_call(roadmap_id=roadmap_id, backend=backend, since=since)
    if call is None or call["outcome"] != "ok":
        return None
    answered = as_utc(call["ts"]) + dt.timedelta(milliseconds=call["latency_ms"])
    of = f" of {call['work_unit_id']}" if call["work_unit_id"] else ""
    detail = (f"backend {backend}: Claude answered a{'n' if call['purpose'][:1] in 'aeiou' else ''} "
              f"{call['purpose']} call{of} on {call['model']} in {call['latency_ms']} ms, "
              f"{(now - answered).total_seconds():.0f} s ago (no query sent)")
    log.info("probe %s (llm): ok: %s", probe.id, detail)
    return ctx.store.record_probe_sample(probe_id=probe.id, kind=probe.kind, ok=True, latency_ms=call["latency_ms"],
                                         detail=detail, run_id=ctx.run_id, ts=min(answered, now))


def _claude_query(probe, backend: str, conn_id: str, timeout: float, ctx: ProbeContext) -> str:
    """One 1-token query, retried on 429/529/5xx/connection errors (at most ``LLM_PROBE_ATTEMPTS``,
    a short back-off honouring ``retry-after``); every attempt is booked in the audit ledger."""
    from castmatch.llm.budget import USAGE_KINDS
    from castmatch.llm.claude import classify, retry_after
    from castmatch.llm.hook import ClaudeHook
    from castmatch.timing import mark

    config = ctx.config
    model = (config.team.default_model if config is not None and config.team else None) or "claude-haiku-4-5"
    body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": LLM_PROBE_PROMPT}]}
    client = ClaudeHook(conn_id=conn_id).get_conn().with_options(max_retries=0, timeout=timeout)
    try:
        for attempt in range(1, LLM_PROBE_ATTEMPTS + 1):
            row = _book_probe_start(ctx, probe, backend, model, body, attempt)  # no row, no request
            limiter, ticket = _probe_ticket(ctx, model)
            started = time.perf_counter()
            mark("claude_probe_setup")
            try:
                message = client.messages.create(**body)
                mark("llm_call")
            except Exception as exc:
                _settle(limiter, ticket, {})
                _book_probe_finish(ctx, row, model, time.perf_counter() - started, {}, exc)
                if classify(exc) != "transient" or attempt == LLM_PROBE_ATTEMPTS:
                    raise ProbeFailed(f"backend {backend}: Claude did not answer a 1-token query: {describe(exc)}") from None
                time.sleep(min(retry_after(exc) or 0.5 * attempt, 2.0))
                continue
            latency = time.perf_counter() - started
            usage = {k: int(getattr(message.usage, k, 0) or 0) for k in USAGE_KINDS}
            _settle(limiter, ticket, usage)
            _book_probe_finish(ctx, row, model, latency, usage, None)
            return f"backend {backend}: Claude answered a 1-token query on {model} in {latency * 1000:.0f} ms"
    finally:
        client.close()
    raise AssertionError("unreachable")


def _probe_ticket(ctx: ProbeContext, model: str):
    """(limiter, ticket) for one query of the Claude probe: it counts against the same per-model rate
    limit as the agents' calls (one account). Redis unreachable: (None, None), the query goes without
    one (the Claude probe never fails because Redis does)."""
    config = ctx.config
    if config is None or not config.llm:
        return None, None
    from castmatch.llm.ratelimit import limiter_from_settings
    from castmatch.runs import roadmap_id_of
    from castmatch.shared_redis import redis_conn_id

    try:
        limiter = limiter_from_settings(config.llm, roadmap_id_of(config), redis_conn_id=redis_conn_id(config, ctx.store))
        if limiter is None or limiter.limit_for(model) is None:
            return None, None
        limiter.ping()
        return limiter, limiter.acquire(model, 20)
    except Exception as exc:
        log.warning("Claude probe: the rate limiter is unavailable (%s): the query goes without a ticket", exc)
        return None, None


def _settle(limiter, ticket, usage: dict) -> None:
    if limiter is None or ticket is None:
        return
    try:
        limiter.settle(ticket, usage.get("input_tokens", 0), usage.get("output_tokens", 0))
    except Exception as exc:
        log.warning("Claude probe: could not settle its rate-limiter ticket (%s)", exc)


def _book_probe_start(ctx: ProbeContext, probe, backend: str, model: str, body: dict, attempt: int) -> int | None:
    """Book one attempt of the Claude probe before it is sent (write-ahead, purpose ``probe``)."""
    if ctx.store is None:
        return None
    import hashlib

    from castmatch.llm.budget import cost_usd
    from castmatch.runs import roadmap_id_of

    config = ctx.config
    worst = {"input_tokens": 20, "output_tokens": body["max_tokens"]}
    return ctx.store.start_llm_call(
        roadmap_id=roadmap_id_of(config) if config is not None else "", run_key=ctx.run_key, purpose="probe",
        run_id=ctx.run_id, task_id=f"probe:{probe.id}", attempt=attempt, model=model, backend=backend,
        request_hash=hashlib.sha256(repr(sorted(body.items())).encode()).hexdigest(), input_estimate=20,
        cost_usd=cost_usd(config.llm, model, worst) if config is not None and config.llm else 0.0)


def _book_probe_finish(ctx: ProbeContext, row: int | None, model: str, latency: float, usage: dict,
                       error: BaseException | None) -> None:
    if row is None:
        return
    from castmatch.llm.budget import USAGE_KINDS, cost_usd

    config = ctx.config
    ctx.store.finish_llm_call(
        row, **{k: usage.get(k, 0) for k in USAGE_KINDS}, latency_ms=int(latency * 1000),
        cost_usd=cost_usd(config.llm, model, usage) if config is not None and config.llm else 0.0,
        outcome="ok" if error is None else "error", error_class=type(error).__name__ if error else None,
        error=describe(error) if error is not None else None)


CHECKS = {"redis": check_redis, "postgres": check_postgres, "http": check_http, "llm": check_llm}


def run_probe(probe, *, store, run_id: str | None = None, timeout: float = TIMEOUT_SECONDS, config=None,
              run_key: str | None = None) -> dict:
    """Check one configured ``Probe`` now and record the sample in ``store`` (None: don't record).

    Returns the sample: {probe_id, kind, ok, status (ok | failed | offline), latency_ms, detail,
    run_id, ts[, id]}. Never raises for a failing service; the detail says what failed.
    ``config`` and ``run_key`` place the Claude probe's request in the audit ledger.
    """
    ctx = ProbeContext(store=store, config=config, run_key=run_key, run_id=run_id)
    if probe.conn_id and store is not None and config is not None and probe.kind != "llm":
        from castmatch.runs import roadmap_id_of

        active = store.active_connection(roadmap_id_of(config), probe.conn_id)  # after a level 1 fallback
        if active != probe.conn_id:
            probe = probe.model_copy(update={"conn_id": active})
    if probe.kind == "llm" and store is not None:
        fresh = _fresh_claude_answer(probe, ctx)
        if fresh is not None:
            return fresh
    started = time.perf_counter()
    status = "failed"
    try:
        detail, ok, status = CHECKS[probe.kind](probe, timeout, ctx), True, "ok"
    except ProbeOffline as exc:
        detail, ok, status = str(exc), False, "offline"
    except ProbeFailed as exc:
        detail, ok = str(exc), False
    except Exception as exc:  # a probe reports, it never takes the gate down with it
        detail, ok = f"probe error: {describe_error(exc)}", False
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    detail = detail[:DETAIL_LIMIT]
    log.log(logging.WARNING if status == "failed" else logging.INFO, "probe %s (%s): %s in %.1f ms: %s",
            probe.id, probe.kind, status.upper() if status != "ok" else "ok", latency_ms, detail)
    sample = {"probe_id": probe.id, "kind": probe.kind, "ok": ok, "status": status, "latency_ms": latency_ms,
              "detail": detail, "run_id": run_id}
    if store is None:
        from castmatch.store.repository import utcnow

        return {**sample, "ts": utcnow()}
    return store.record_probe_sample(**sample)


def run_probes(probes, *, store, run_id: str | None = None, config=None, run_key: str | None = None) -> list[dict]:
    """``run_probe`` for each of ``probes``, in order."""
    return [run_probe(p, store=store, run_id=run_id, config=config, run_key=run_key) for p in probes]
