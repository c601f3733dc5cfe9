"""State store: agents, work units, unit runs, deliverables and events (SQLAlchemy + Alembic)."""

from castmatch.store.db import database_url, ensure_schema, upgrade
from castmatch.store.repository import Store

__all__ = ["Store", "database_url", "ensure_schema", "upgrade"]
