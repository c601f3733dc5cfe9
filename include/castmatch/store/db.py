"""Engines and schema migrations of the state store.

``CASTMATCH_DATABASE_URL`` selects the database (PostgreSQL in tests and docker-compose);
without it an embedded SQLite file beside Airflow's home is used, which is what ``make run``
needs on a fresh machine.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import sqlalchemy as sa

VERSION_TABLE = "cm_alembic_version"
# The newest migration; a test keeps it equal to Alembic's head. Lets every task process check
# the schema with one SELECT instead of loading Alembic.
HEAD_REVISION = "0012"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()


def database_url() -> str:
    url = os.environ.get("CASTMATCH_DATABASE_URL")
    if url:
        return url
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return f"sqlite:///{home / 'castmatch.db'}"


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # concurrent task processes share the file
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL's recommended durability: a commit survives the process, the OS syncs at checkpoints
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # a server that does not answer fails a connect in 10 s instead of hanging (libpq's option),
    # unless the URL sets its own
    wants_timeout = url.startswith("postgresql") and "connect_timeout" not in sa.engine.make_url(url).query
    engine = sa.create_engine(url, pool_size=2, max_overflow=4,
                              connect_args={"connect_timeout": 10} if wants_timeout else {})
    _ping_after_idle(engine)
    # SQLAlchemy's recipe for engines made before a fork: the child starts with an empty pool of
    # its own, whatever connection the parent may hold by then (the scheduler forks task processes;
    # its pool is normally empty, and an empty pool is left as it is: recreating it costs ~5 ms)
    os.register_at_fork(after_in_child=lambda: _own_pool(engine))
    return engine


def _own_pool(engine: sa.Engine) -> None:
    pool = engine.pool
    if pool.checkedin() or pool.checkedout():
        engine.dispose(close=False)


# A pooled connection is tested before reuse only after it sat idle this long: a task checks one
# out a dozen times in a second (SQLAlchemy's pool_pre_ping would test it on each, a round trip
# apiece), while a connection a server restart or an idle timeout could have closed has waited.
# (One used within the last seconds is handed out untested: if the server restarted just then, the
# statement fails and the task's retry, or the store's own retry, uses a fresh connection.)
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_after_idle(engine: sa.Engine) -> None:
    """SQLAlchemy's pessimistic disconnect handling (its ``checkout`` event recipe), for
    connections idle over ``PING_AFTER_IDLE_SECONDS``: a dead one is replaced, never handed out."""
    import time

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # as pool_pre_ping does: the server went away, so every older pooled connection goes too
            raise sa.exc.InvalidatePoolError(f"pooled connection dead after {time.monotonic() - idle_since:.0f} s "
                                             f"idle: {exc}") from exc


def get_engine(url: str | None = None) -> sa.Engine:
    """One engine per URL per process (no URL: ``database_url()``'s, the same engine as naming it)."""
    return _engine(url or database_url())


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


def forget_engines() -> None:
    """Drop the engines made so far (a test about to drop the database they point at)."""
    _engine.cache_clear()


# Connections a task process opens ahead of its first statement (``connect_ahead``), by URL.
_ahead: dict[str, threading.Thread] = {}


def connect_ahead(url: str | None = None) -> None:
    """Open the store's first connection in the background, so that a task process which will use
    the store has it by the time its work starts: called as Airflow prepares the task for execution
    (``prepare_for_execution``), the connection (a new PostgreSQL backend, ~10-20 ms under load)
    is made while Airflow renders the task and reports to its API server. Waited for by the first
    ``Store`` made for ``url``. A store that cannot be reached is reported by that first statement,
    as without this; SQLite, which has no connection to wait for, is left alone."""
    url = url or database_url()
    if url.startswith("sqlite") or url in _ahead:
        return
    try:
        engine = ensure_schema(url)  # made here, in the calling thread: one engine, one pool
    except Exception:  # reported by the task's own first use of the store
        return

    def connect() -> None:
        try:
            engine.connect().close()  # back in the pool, ready
        except Exception:  # reported by the task's own first statement
            pass

    thread = _ahead[url] = threading.Thread(target=connect, name="castmatch-store-connect", daemon=True)
    thread.start()


def await_connection_ahead(url: str | None = None) -> None:
    """Wait for a connection ``connect_ahead`` is opening for ``url`` (at most its connect timeout)."""
    thread = _ahead.pop(url or database_url(), None)
    if thread is not None:
        thread.join()


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(url: str | None = None, revision: str = "head") -> str:
    """Bring the database at ``url`` (empty or older) to ``revision``; returns the revision reached."""
    from alembic import command

    url = url or database_url()
    engine = get_engine(url)
    with engine.begin() as conn:
        cfg = _alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return current_revision(engine) or ""


def ensure_schema(url: str | None = None) -> sa.Engine:
    """The engine for ``url``, upgraded to the current schema once per process."""
    url = url or database_url()
    engine = get_engine(url)
    if url not in _upgraded:
        with _upgrade_lock:
            if url not in _upgraded:
                if _stored_revision(engine) != HEAD_REVISION:
                    upgrade(url)
                _upgraded.add(url)
    return engine


def _stored_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:  # an unreachable store fails here, not as "an empty database"
        try:
            return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        except (sa.exc.ProgrammingError, sa.exc.OperationalError):  # no version table yet: an empty database
            return None
