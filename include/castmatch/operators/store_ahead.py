"""``OpensStoreAhead``: for operators whose work starts with the state store."""

from __future__ import annotations


class OpensStoreAhead:
    """Mixed into an operator whose work starts with the store: its connection opens
    (``castmatch.store.db.connect_ahead``) while Airflow prepares the task for execution (renders it,
    reports to its API server), instead of when the work starts."""

    def prepare_for_execution(self):
        from castmatch.store.db import connect_ahead

        connect_ahead()
        return super().prepare_for_execution()
