"""Pay the LLM layer's and Great Expectations' imports once per long-lived process, not per task.

LocalExecutor and Celery workers fork one process per task from a long-lived parent. Importing
the Anthropic SDK, the provider's hook and our store in that parent (about 2 s of CPU here) means
every forked task process starts with them loaded. Nothing is connected or started here: only
imports, which are safe across fork.
"""

from __future__ import annotations

import logging
import os
import sys
import time

log = logging.getLogger(__name__)

# Processes whose children run tasks: `airflow scheduler` (LocalExecutor workers fork from it)
# and `airflow celery worker`.
TASK_PARENTS = ({"scheduler"}, {"celery", "worker"})
# The process whose children parse the DAG files: each of the four dags/ files would otherwise
# import the factory and load the roadmap config again (about 0.2 s each).
PARSE_PARENTS = ({"dag-processor"},)


def _is(argv: list[str], parents) -> bool:
    words = set(argv[1:3])
    return any(parent <= words for parent in parents) and "airflow" in argv[0]


def is_task_parent(argv: list[str]) -> bool:
    return _is(argv, TASK_PARENTS)


def is_parse_parent(argv: list[str]) -> bool:
    return _is(argv, PARSE_PARENTS)


def preload_dag_parsing() -> float:
    """Import the DAG factory and load the roadmap config in the dag-processor, so the parsing
    processes it forks start with both (the config cache is keyed on the files' mtimes, so an
    edited file is still read again)."""
    started = time.perf_counter()
    try:
        from castmatch.config import load_roadmap_cached
        from castmatch.factory import build_dags  # noqa: F401

        load_roadmap_cached()
    except Exception as exc:  # a broken roadmap shows in the DAGs themselves
        log.warning("castmatch: DAG parsing not preloaded (%s)", exc)
    return time.perf_counter() - started


def preload_llm_stack() -> float:
    started = time.perf_counter()
    import anthropic  # noqa: F401
    import redis.asyncio  # noqa: F401
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook  # noqa: F401

    import castmatch.llm.claude  # noqa: F401
    import castmatch.store  # noqa: F401
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations  # noqa: F401  (about 2 s, paid here once, not per decision point)

    # What every task process runs besides the LLM: the run scope, memory, gates, decisions, week
    # outcomes, and the DAG file it parses first (building the DAGs once here warms the imports of
    # the operators and the cached roadmap config, which forked children reuse).
    import castmatch.decisions  # noqa: F401
    import castmatch.gates  # noqa: F401
    import castmatch.kpis  # noqa: F401
    import castmatch.memory  # noqa: F401
    import castmatch.review  # noqa: F401
    import castmatch.weeks  # noqa: F401
    try:
        from castmatch.factory import build_dags

        build_dags()
    except Exception as exc:  # a broken roadmap shows in the DAGs themselves; never stop the scheduler
        log.warning("castmatch: DAGs not prebuilt (%s)", exc)
    elapsed = time.perf_counter() - started
    log.info("castmatch: preloaded the LLM stack and the DAGs for forked task processes in %.2f s", elapsed)
    return elapsed


def preload_if_task_parent(argv: list[str] | None = None) -> None:
    argv = sys.argv if argv is None else argv
    if is_task_parent(argv):
        preload_llm_stack()
    elif is_parse_parent(argv):
        preload_dag_parsing()
