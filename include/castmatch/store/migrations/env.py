"""Alembic environment of the CastMatch store (run through ``castmatch db upgrade``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from castmatch.store.db import VERSION_TABLE, make_engine
from castmatch.store.schema import metadata

config = context.config
# Held across processes so that two workers upgrading one empty Postgres database at once
# don't both create the tables.
_ADVISORY_LOCK = 7_431_202


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      version_table=VERSION_TABLE, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
