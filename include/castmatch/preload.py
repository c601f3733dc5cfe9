"""Pay the LLM layer's and Great Expectations' imports once per long-lived process, not per task.

LocalExecutor and Celery workers fork one process per task from a long-lived parent. Importing
the Anthropic SDK, the provider's hook and our store in that parent (about 2 s of CPU here) means
every forked task process starts with them loaded. Besides imports, only what is safe across a
fork is prepared here: the SDK's answer path (answered in memory, no socket), one TLS context, and
the store's schema check, whose connection is closed before any fork.
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

    from castmatch.kpis.expectations import warm_up

    try:
        warm_up()  # GE's context and its first validation (about 0.04 s of every go/no-go task otherwise)
    except Exception as exc:  # only a cost: each decision point then pays it
        log.warning("castmatch: Great Expectations not warmed (%s)", exc)

    # What every task process runs besides the LLM: the run scope, memory, gates, decisions, week
    # outcomes, and the DAG file it parses first (the DAGs built here, from the cached roadmap
    # config, are the ones forked children take when they parse their DAG file).
    import castmatch.chains  # noqa: F401
    import castmatch.decisions  # noqa: F401
    import castmatch.gates  # noqa: F401
    import castmatch.kpis  # noqa: F401
    import castmatch.llm.backends  # noqa: F401
    import castmatch.llm.ratelimit  # noqa: F401
    import castmatch.memory  # noqa: F401
    import castmatch.review  # noqa: F401
    import castmatch.weeks  # noqa: F401
    try:
        from castmatch.factory import prebuild_dags

        prebuild_dags()  # task processes take their DAG from here instead of building it again
    except Exception as exc:  # a broken roadmap shows in the DAGs themselves; never stop the scheduler
        log.warning("castmatch: DAGs not prebuilt (%s)", exc)
    from castmatch.llm.hook import shared_tls_context
    from castmatch.llm.schema import deliverable_tool

    for name, warm in (("the Anthropic clients' TLS context", shared_tls_context),  # inherited by task processes
                       ("the Anthropic SDK's answer path", warm_messages_api),
                       ("the deliverable's JSON schema", deliverable_tool),
                       ("the store", prepare_store)):
        try:
            warm()
        except Exception as exc:  # only a cost: each task then pays it
            log.warning("castmatch: %s not prepared (%s)", name, exc)
    elapsed = time.perf_counter() - started
    log.info("castmatch: preloaded the LLM stack and the DAGs for forked task processes in %.2f s", elapsed)
    return elapsed


def prepare_store() -> None:
    """Check the store's schema once here (upgrading it if it is behind), so task processes do
    not each query its version; the engine's dialect learns the server's version on this first
    connection. Then rehearse an agent task's statements (rolled back), so forked tasks find them
    compiled. No connection crosses the fork: the pool is emptied, each child opens its own."""
    from castmatch.store import ensure_schema

    engine = ensure_schema()  # an unreachable store fails here, once, within its connect timeout
    try:
        from castmatch.config import load_roadmap_cached
        from castmatch.operators.agent import rehearse_store_statements
        from castmatch.store import Store

        with Store().rehearsal() as stand_in:
            rehearse_store_statements(stand_in, load_roadmap_cached())
    finally:
        engine.dispose()


def _streamed_tool_answer() -> bytes:
    """A streamed Messages answer calling one tool, as the API sends it (server-sent events)."""
    import json

    usage = {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    message = {"id": "msg_preload", "type": "message", "role": "assistant", "model": "preload", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage}
    events = [
        {"type": "message_start", "message": message},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_preload", "name": "preload", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a": 1}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": usage},
        {"type": "message_stop"},
    ]
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


# Pydantic caches a parametrised generic model weakly: the SDK's stream builds
# ``ParsedMessage[ResponseFormatT]`` for every event and drops it, so a collection between the
# warm-up and the fork loses it and each task process builds it again (~8 ms of CPU). Held here.
_sdk_generics: list = []


def warm_messages_api() -> dict:
    """Stream one Messages answer through the SDK, answered in memory (no socket is opened): the
    SDK builds the validators of its response and event models and imports its HTTP transport on
    first use, about 0.2 s that every forked task process would otherwise pay on its first call.
    Returns the tool input the SDK assembled from the stream."""
    import asyncio

    import anthropic
    import anyio
    import httpx2
    from anthropic.lib.streaming._messages import ParsedMessage, ResponseFormatT

    if not _sdk_generics:
        _sdk_generics.append(ParsedMessage[ResponseFormatT])

    def answer(request):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=_streamed_tool_answer())

    async def one_call():
        await anyio.sleep(0)  # anyio's asyncio backend, which the transport uses
        default = anthropic.AsyncAnthropic(api_key="preload", base_url="http://preload.invalid")
        client = default.with_options(http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer)),
                                      max_retries=0)
        try:
            async with client.messages.stream(model="preload", max_tokens=1, messages=[
                    {"role": "user", "content": "preload"}]) as stream:
                message = await stream.get_final_message()
            message.model_dump_json()
            return message.content[0].input
        finally:
            await client.close()
            await default.close()

    return asyncio.run(one_call())


def preload_if_task_parent(argv: list[str] | None = None) -> None:
    argv = sys.argv if argv is None else argv
    if is_task_parent(argv):
        preload_llm_stack()
    elif is_parse_parent(argv):
        preload_dag_parsing()
