"""Helpers shared by tests and their worker processes (no side effects on import)."""

from __future__ import annotations


def fast_llm_settings(config, **updates):
    """The roadmap's LLM settings with short back-offs, for tests."""
    retry = config.llm.retry.model_copy(update={"backoff_seconds": 0.05, "task_retry_delay_seconds": 1})
    return config.llm.model_copy(update={"retry": retry, "timeout_seconds": 2.0, **updates})


def dags_test(dag_id: str, logical_date: str, env: dict | None = None):
    """``airflow dags test`` of this virtualenv in a subprocess; returns the CompletedProcess."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id, logical_date],
                          capture_output=True, text=True, env=env if env is not None else os.environ.copy(),
                          timeout=600)


def castmatch_json(*args: str, database_url: str):
    """``castmatch <args> --json`` against the store at ``database_url``, parsed."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([str(Path(sys.executable).parent / "castmatch"), *args, "--json"], capture_output=True,
                         text=True, env={**os.environ, "CASTMATCH_DATABASE_URL": database_url})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
