"""``AgentOperator``: one work unit run by its agent, producing a stored, validated deliverable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from castmatch.operators.store_ahead import OpensStoreAhead


def scope_of(context, roadmap_dir: str | None):
    """The roadmap config and the run (``castmatch.runs.RunScope``) a task belongs to."""
    from castmatch.config import load_roadmap_cached
    from castmatch.runs import run_scope

    config = load_roadmap_cached(roadmap_dir)
    return config, run_scope(context, config)


def record_failure(store, keys: dict, try_number: int, error: str, state: str = "failed") -> str:
    """End the unit run with ``state`` and the reason, retrying the write (a connection lost mid-write
    is replaced); "" when stored, else a note for the task's own failure reason and log."""
    import time

    last = None
    for attempt in range(3):
        try:
            store.unit_failed(**keys, try_number=try_number, error=error, state=state)
            return ""
        except Exception as exc:  # the store itself is failing: try a fresh connection
            last = exc
            store.engine.dispose()
            time.sleep(0.5 * (attempt + 1))
    from castmatch.llm.claude import describe

    return f" (and the failure could not be stored: {describe(last)})"


def with_override(store, run_key: str, unit, log):
    """The unit as level 2 changed it in this run (another lead, renegotiated dependencies)."""
    override = store.unit_override(run_key=run_key, work_unit_id=unit.id)
    if override is None:
        return unit
    changes = {}
    if override["lead_agent"]:
        changes["agents"] = [override["lead_agent"], *[a for a in unit.agents if a != override["lead_agent"]]]
    if override["depends_on"] is not None:
        changes["depends_on"] = list(override["depends_on"])
    log.warning("work unit %s as changed by incident #%s (proposed by %s): %s", unit.id, override["incident_id"],
                override["proposed_by"], changes)
    return unit.model_copy(update=changes)


def open_unit_incident(config, store, log, *, run_key: str, state: str, unit, detail: str) -> None:
    """The incident of a unit that ended ``state`` for good (never masks the unit's own failure)."""
    from castmatch.incidents import UNIT_KINDS, open_incident

    try:
        open_incident(config, store, run_key=run_key, kind=UNIT_KINDS[state], subject=unit.id, agents=list(unit.agents),
                      detail=f"{unit.id} ({unit.title}): {detail}")
    except Exception as exc:
        log.error("incident of %s not stored (%s): the sweep cannot act on it", unit.id, exc)


def rehearse_store_statements(store, config) -> None:
    """Run each store statement of an agent task once, on a rehearsing store (``Store.rehearsal``:
    nothing is stored), in the scheduler before it forks task processes (``castmatch.preload``):
    they then find the statements compiled in the engine's cache instead of compiling each again
    (about a millisecond of CPU each, some fifteen a task). Kept in step with ``execute``:
    tests/integration/test_store.py fails when an agent task compiles a statement of its own."""
    from types import SimpleNamespace

    from castmatch.chains import passed_gates
    from castmatch.llm.base import CallContext
    from castmatch.llm.claude import ClaudeBackend
    from castmatch.runs import roadmap_id_of, run_key_for
    from castmatch.shared_redis import redis_conn_id
    from castmatch.status import unit_states

    roadmap_id = roadmap_id_of(config)
    run_key = run_key_for(roadmap_id, dag_id="rehearsal", run_id="rehearsal")
    agent = next(iter(config.agents.values()))
    keys = {"dag_id": "rehearsal", "run_key": run_key, "run_id": "rehearsal", "work_unit_id": "rehearsal",
            "agent_id": agent.id}
    store.unit_override(run_key=run_key, work_unit_id="rehearsal")
    store.upstream_deliverables(["rehearsal"], run_key=run_key)
    store.register_run(run_key=run_key, roadmap_id=roadmap_id, kind="week", dag_id="rehearsal", run_id="rehearsal",
                       clock="compressed")
    store.sync_config(config, [next(iter(config.work_units))])  # what the first task of a run mirrors
    store.unit_started(**keys, try_number=1, reconcile_purpose="agent")
    redis_conn_id(config, store)
    unit_states(store, run_key)  # a chain's consumer: its trigger's state
    passed_gates(store, run_key)
    store.agent_notices(run_key=run_key, agent_id=agent.id)
    context = CallContext(dag_id="rehearsal", run_id="rehearsal", task_id="rehearsal", try_number=1,
                          work_unit_id="rehearsal", week=1, run_key=run_key)
    ClaudeBackend("live", settings=config.llm, store=store, context=context).rehearse(
        SimpleNamespace(agent_id=agent.id, work_unit_id="rehearsal", model=agent.model))
    store.save_deliverable(**keys, week=1, backend="live", model=agent.model, try_number=1, deliverable={
        "status": "done", "summary": "rehearsal", "content": "rehearsal", "blockers": [], "progress": 100})


class AgentOperator(OpensStoreAhead, BaseOperator):
    """Run work unit ``work_unit_id`` of the roadmap in ``roadmap_dir`` through its lead agent.

    The agent gets its role, the work unit with its acceptance criteria and the upstream
    deliverables of the same run (recalled from the agents' memory, else the store; quoted as
    data); the answer is validated against the deliverable schema and upserted per (run, work
    unit), so retries and manual reruns never duplicate it. A ``blocked`` answer is stored and
    fails the task without retries: nothing downstream runs on work that is not done.
    """

    template_fields: Sequence[str] = ("work_unit_id",)
    ui_color = "#e8f4fd"

    # A week's task does not redo a unit the run already delivered elsewhere (workload balancing,
    # an idle agent's pulled-forward unit); work an incident asks for is always done.
    defer_to_delivered = True

    def __init__(self, *, work_unit_id: str, roadmap_dir: str | None = None, week: int, **kwargs: Any) -> None:
        # The outcome's home is the store (control center, ``castmatch`` CLI) and the task's log; an
        # XCom copy nothing reads would cost every task a write through the API server (~35 ms under
        # load, bench/task_overhead.py). ``do_xcom_push=True`` brings it back.
        kwargs.setdefault("do_xcom_push", False)
        super().__init__(**kwargs)
        self.work_unit_id = work_unit_id
        self.roadmap_dir = roadmap_dir
        self.week = week

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from castmatch.chains import chain_artifacts
        from castmatch.llm.backends import get_backend
        from castmatch.llm.base import CallContext
        from castmatch.llm.claude import describe
        from castmatch.llm.errors import BudgetExceeded, LLMPermanentError, MalformedAnswer
        from castmatch.llm.prompt import build_request
        from castmatch.memory import agent_memory, recall_upstream
        from castmatch.runs import register
        from castmatch.shared_redis import shared_redis_url
        from castmatch.store import Store
        from castmatch.timing import track

        steps = track()
        config, scope = scope_of(context, self.roadmap_dir)
        config.raise_for_issues(self.week)
        unit = config.work_units.get(self.work_unit_id)
        if unit is None:
            raise AirflowFailException(f"work unit {self.work_unit_id!r} is not in the roadmap {config.directory}")
        steps.mark("config")

        ti = context["ti"]
        dag_id, run_id, try_number = ti.dag_id, ti.run_id, ti.try_number
        run_key = scope.run_key
        store = Store()
        steps.mark("store_connect")
        unit = with_override(store, run_key, unit, self.log)
        agent_id = unit.agents[0]
        keys = {"dag_id": dag_id, "run_key": run_key, "run_id": run_id, "work_unit_id": unit.id, "agent_id": agent_id}
        elsewhere = store.upstream_deliverables([unit.id], run_key=run_key).get(unit.id) if self.defer_to_delivered else None
        if elsewhere and elsewhere["dag_id"] != dag_id:  # moved or pulled forward, and done through incident work
            self.log.info("work unit %s was delivered in run %s by %s (%s, %s): nothing to do again", unit.id, run_key,
                          elsewhere["agent_id"], elsewhere["dag_id"], elsewhere["run_id"])
            for asset in self.outlets:  # its chains still learn which run delivered it
                context["outlet_events"][asset].extra["run_key"] = run_key
            return {"work_unit": unit.id, "agent": elsewhere["agent_id"], "status": "done",
                    "delivered_by": elsewhere["dag_id"]}

        register(store, scope, context, config)
        # this unit's calls of earlier tries are over (a gate's review of the unit is not this task's)
        lost = store.unit_started(**keys, try_number=try_number, reconcile_purpose="agent")
        if lost:
            self.log.warning("work unit %s: %d call(s) of an earlier try ended with its process: booked as lost "
                             "at their worst-case price", unit.id, lost)
        call = CallContext(dag_id=dag_id, run_id=run_id, task_id=ti.task_id, try_number=try_number,
                           work_unit_id=unit.id, week=self.week, run_key=run_key)
        steps.mark("run_state")
        redis = shared_redis_url(config, store)  # looked up once: the memory and the rate limiter share it
        memory = agent_memory(config, store, url=redis)
        try:
            upstream, from_store = recall_upstream(memory, store, list(unit.depends_on), run_key=run_key)
            steps.mark("memory")
            handoffs = chain_artifacts(config, store, unit.id, run_key=run_key)
            notices = store.agent_notices(run_key=run_key, agent_id=agent_id)
            request = build_request(config, unit, upstream, week=self.week, handoffs=handoffs, notices=notices)
            steps.mark("prompt")
            backend = get_backend(config, store, context=call, redis_url=redis)
            steps.mark("backend")
            self.log.info(
                "work unit %s (run %s): agent %s, backend %s, model %s, %d upstream deliverable(s) "
                "(%d from agent memory), try %d", unit.id, run_key, agent_id, backend.name, request.model,
                len(request.upstream), len(request.upstream) - len(from_store), try_number,
            )
            result = backend.generate(request)
            steps.mark("answer")
            deliverable = result.deliverable.model_dump()
            store.save_deliverable(
                **keys, week=self.week, deliverable=deliverable,
                backend=result.backend, model=result.model, try_number=try_number,
            )
            steps.mark("save")
        except MalformedAnswer as exc:
            note = record_failure(store, keys, try_number, str(exc), state="needs_review")
            open_unit_incident(config, store, self.log, run_key=run_key, state="needs_review", unit=unit, detail=str(exc))
            raise AirflowFailException(f"{unit.id}: needs review: {exc}{note}") from exc
        except BudgetExceeded as exc:
            note = record_failure(store, keys, try_number, str(exc), state="budget_exceeded")
            open_unit_incident(config, store, self.log, run_key=run_key, state="budget_exceeded", unit=unit,
                               detail=str(exc))
            raise AirflowFailException(f"{unit.id}: {exc}{note}") from exc
        except LLMPermanentError as exc:
            note = record_failure(store, keys, try_number, str(exc))
            open_unit_incident(config, store, self.log, run_key=run_key, state="failed", unit=unit, detail=str(exc))
            raise AirflowFailException(f"{exc}{note}") from exc
        except Exception as exc:
            # any step of the unit's own (a store write included): the unit run ends failed with the
            # reason; Airflow retries, and a paid answer kept in this run is reused, not paid again
            reason = describe(exc)
            note = record_failure(store, keys, try_number, reason)
            if note:
                self.log.error("work unit %s failed: %s%s", unit.id, reason, note)
            if try_number > ti.max_tries:  # no Airflow retry left: the seed's escalation takes over
                open_unit_incident(config, store, self.log, run_key=run_key, state="failed", unit=unit,
                                   detail=f"failed after {try_number} tries: {reason}")
            raise

        self._remember(memory, run_key, unit.id, agent_id, deliverable)
        steps.mark("memory")
        self.log.info(steps.line())
        self.log.info("work unit %s: %s (%s backend, %s) - %s", unit.id, deliverable["status"], result.backend,
                      result.model, deliverable["summary"][:200])
        if deliverable["status"] != "done":
            open_unit_incident(config, store, self.log, run_key=run_key, state="blocked", unit=unit,
                               detail="blocked: " + ("; ".join(deliverable["blockers"]) or "no reason given"))
            raise AirflowFailException(f"{unit.id} is blocked: {'; '.join(deliverable['blockers']) or 'no reason given'}")
        for asset in self.outlets:  # the chain DAGs this unit triggers learn which run delivered
            context["outlet_events"][asset].extra["run_key"] = run_key
        return {"work_unit": unit.id, "agent": agent_id, "status": deliverable["status"],
                "backend": result.backend, "model": result.model, "summary": deliverable["summary"]}

    def _remember(self, memory, run_key: str, unit_id: str, agent_id: str, deliverable: dict) -> None:
        """Keep a delivered artefact in the agents' memory for the units that build on it. The
        deliverable is already stored for good: a memory failure is logged, never fatal."""
        if memory is None:
            self.log.warning("no agent memory (no Redis configured): %s is kept in the long-term store only", unit_id)
            return
        try:
            if deliverable["status"] == "done":
                memory.remember(run_key, unit_id, agent_id=agent_id, summary=deliverable["summary"],
                                content=deliverable["content"])
        except Exception as exc:
            self.log.warning("agent memory unavailable (%s): %s is kept in the long-term store only", exc, unit_id)
        finally:
            memory.close()
