"""Build the roadmap's DAGs from its configuration.

Only the YAML is read at parse time (no database, Redis, network or heavy import). One builder per
family of DAGs (weeks, roadmap driver, chains, operations), each called from its own file in
dags/. A DAG whose files have errors fails in the DagBag on its own (an import error naming every
problem with its file and line); the other DAGs of its family and the other families still load.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.sdk import DAG, Asset, Param
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from castmatch.clock import RoadmapClock, default_clock_mode
from castmatch.config import RoadmapConfig, load_roadmap_cached
from castmatch.llm.errors import BudgetExceeded, LLMPermanentError, LLMTransientError, MalformedAnswer
from castmatch.notify import human_review_announcement
from castmatch.operators.agent import AgentOperator
from castmatch.operators.chain import ChainHandoffOperator
from castmatch.operators.decision import (
    KEEP_NO_GO,
    OVERTURN,
    GoNoGoOperator,
    NoGoOperator,
    NoGoReviewOperator,
    go_task_id,
    no_go_task_id,
    review_task_ids,
)
from castmatch.operators.gate import GateOverrideOperator, GateSensor
from castmatch.operators.probe import SampleProbesOperator
from castmatch.operators.roadmap import (
    RoadmapWeekSensor,
    StartRunOperator,
    WeekCheckSensor,
)
from castmatch.operators.standup import StandupActionsOperator, StandupOperator
from castmatch.operators.week import WeekCompleteOperator
from castmatch.runs import driver_dag_id, poke_interval, review_window, roadmap_id_of

FALLBACK_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def week_dag_id(config: RoadmapConfig, week: int) -> str:
    prefix = config.roadmap.dag_id_prefix if config.roadmap else "roadmap"
    return f"{prefix}_week_{week:02d}"


def roadmap_dag_id(config: RoadmapConfig) -> str:
    return driver_dag_id(roadmap_id_of(config))


def task_retry_delay(config: RoadmapConfig) -> dt.timedelta:
    """Airflow's delay before retrying a task after a transient failure (``llm.yaml``
    ``retry.task_retry_delay_seconds``): Claude unavailable, a store connection lost, a killed process."""
    return dt.timedelta(seconds=config.llm.retry.task_retry_delay_seconds if config.llm else 60)


def default_args(config: RoadmapConfig) -> dict:
    return {
        "owner": (config.roadmap.name.lower() if config.roadmap else "roadmap"),
        "retries": 2,
        "retry_delay": task_retry_delay(config),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
    }


def run_params(config: RoadmapConfig) -> dict:
    """The params every week run carries: its clock (chosen at run time; the parse-time
    environment only sets the default) and the roadmap run it belongs to."""
    return {
        "clock": Param(default_clock_mode(config.roadmap), enum=["real", "compressed"],
                       description="real dates or compressed days (set by the roadmap run that triggers the week)"),
        "roadmap_run_id": Param(None, type=["null", "string"], description="Set by the roadmap driver"),
    }


def chain_asset(config: RoadmapConfig, chain_id: str, unit_id: str) -> Asset:
    """The asset a chain's trigger unit publishes when it delivers."""
    prefix = config.roadmap.dag_id_prefix
    return Asset(name=f"{prefix}.chains.{chain_id}.{unit_id}", uri=f"castmatch://{prefix}/chains/{chain_id}/{unit_id}")


def chain_gate_asset(config: RoadmapConfig, chain_id: str, gate_id: str) -> Asset:
    """The asset a chain's trigger gate publishes when it passes (or its veto is overridden)."""
    prefix = config.roadmap.dag_id_prefix
    return Asset(name=f"{prefix}.chains.{chain_id}.gate.{gate_id}", uri=f"castmatch://{prefix}/chains/{chain_id}/gates/{gate_id}")


def _outlets(config: RoadmapConfig, unit_id: str) -> list[Asset]:
    chains = config.operations.chains if config.operations else []
    return [chain_asset(config, c.id, unit_id) for c in chains if unit_id in (*c.trigger.all_of, *c.trigger.any_of)]


def _gate_outlets(config: RoadmapConfig, gate_id: str) -> list[Asset]:
    chains = config.operations.chains if config.operations else []
    return [chain_gate_asset(config, c.id, gate_id) for c in chains if gate_id in c.trigger.gates]


def agent_retry_policy(config: RoadmapConfig) -> ExceptionRetryPolicy:
    """Airflow's side of the LLM failure policy: Claude unavailable (after the in-task attempts)
    retries later; a refused request, a malformed answer or a budget stop fails at once."""
    delay = task_retry_delay(config)
    return ExceptionRetryPolicy(rules=[
        RetryRule(exception=LLMTransientError, action=RetryAction.RETRY, retry_delay=delay,
                  reason="Claude unavailable after in-task retries: retry later"),
        RetryRule(exception=["sqlalchemy.exc.OperationalError", "sqlalchemy.exc.InterfaceError"],
                  action=RetryAction.RETRY, retry_delay=delay,
                  reason="the store's connection was lost: retry (a paid answer kept in the run is reused)"),
        RetryRule(exception=[LLMPermanentError, MalformedAnswer, BudgetExceeded], action=RetryAction.FAIL,
                  reason="retrying cannot help"),
    ])


def _start_date(clock: RoadmapClock, real: dt.datetime | None) -> dt.datetime:
    """Real clock: the real date. Compressed clock: a fixed past date, so a roadmap whose first
    day lies in the future can still be run back to back today."""
    return real if real is not None else FALLBACK_START


def _week_doc(config: RoadmapConfig, week: int) -> str:
    spec = config.weeks[week]
    phase = config.phase_of_week(week)
    rows = "\n".join(
        f"| `{u.id}` | {u.title} | {', '.join(u.agents)} | {u.day_label} | {u.priority} | "
        f"{', '.join(f'`{d}`' for d in u.depends_on) or '-'} |"
        for u in spec.work_units
    )
    focus = "\n".join(f"- {f}" for f in spec.focus)
    return (
        f"# {config.roadmap.name} week {week}: {spec.title}\n\n"
        f"Phase {phase.number if phase else '?'} - {phase.name if phase else 'no phase'}.\n\n"
        f"{focus}\n\n"
        "| work unit | title | agents | day | priority | depends on |\n|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "Each task is an `AgentOperator`: the lead agent produces a validated deliverable, stored per "
        "run and work unit (retries and reruns replace it, never duplicate it)."
    )


class ConfigErrorDag(DAG):
    """Stands for a DAG its configuration does not allow to build: the DagBag's validation of it
    raises, so it shows as an import error of its dags/ file naming every problem, while the other
    DAGs of the file load."""

    config_problems: list[str] = []

    def validate(self):
        raise _ConfigProblems(self.dag_id, self.config_problems)


class _ConfigProblems(Exception):
    def __init__(self, dag_id: str, problems: list[str]):
        shown = problems[:20] + ([f"... and {len(problems) - 20} more (castmatch validate lists them all)"]
                                 if len(problems) > 20 else [])
        super().__init__(f"{dag_id} is not built until its roadmap files are fixed:\n" + "\n".join(shown))


def _error_dag(dag_id: str, config: RoadmapConfig, problems: list[str], tags: list[str]) -> DAG:
    dag = ConfigErrorDag(dag_id=dag_id, schedule=None, start_date=FALLBACK_START, catchup=False,
                         tags=[*tags, "config-error"])
    dag.config_problems = problems
    return dag


def _queue(config: RoadmapConfig, unit) -> dict:
    """The lead agent's track queue, when the track names one (team.yaml tracks[].queue)."""
    agent = config.agents.get(unit.agents[0])
    track = config.team.track(agent.track) if agent and config.team else None
    return {"queue": track.queue} if track and track.queue else {}


def build_week_dag(config: RoadmapConfig, week: int) -> DAG:
    from airflow.providers.standard.operators.empty import EmptyOperator

    dag_id = week_dag_id(config, week)
    phase = config.phase_of_week(week)
    tags = [config.roadmap.dag_id_prefix if config.roadmap else "roadmap", f"week-{week:02d}"]
    if phase:
        tags.append(f"phase-{phase.number}")
    problems = [str(i) for i in config.issues_for(week)]
    if problems or week not in config.weeks:
        return _error_dag(dag_id, config, problems or [f"week {week} has no valid file"], tags)

    clock = RoadmapClock.from_roadmap(config.roadmap)  # the default clock; a run may choose another
    spec = config.weeks[week]
    roadmap_dir = str(config.directory)
    with DAG(
        dag_id=dag_id,
        description=f"{config.roadmap.name} week {week}: {spec.title}",
        # Production: the week starts on its real date (roadmap timezone); castmatch_roadmap
        # triggers it there, after the previous week's go/no-go.
        schedule=None,
        start_date=_start_date(clock, clock.week_start(week) if clock.mode == "real" else None),
        catchup=False,
        max_active_runs=1,
        tags=tags,
        default_args=default_args(config),
        doc_md=_week_doc(config, week),
        params=run_params(config),
    ) as dag:
        retry_policy = agent_retry_policy(config)
        window = review_window(config, clock.mode)  # the default; the task sets its run's at run time
        tasks = {}
        for unit in spec.work_units:
            tasks[unit.id] = AgentOperator(
                task_id=unit.id,
                work_unit_id=unit.id,
                week=week,
                roadmap_dir=roadmap_dir,
                pool=config.agent_pool_of(unit.agents[0])[0],  # the lead's own slots (team.yaml capacity)
                **_queue(config, unit),
                priority_weight=config.task_weight(unit),
                weight_rule="absolute",
                retry_policy=retry_policy,
                outlets=_outlets(config, unit.id),
                doc_md=f"**{unit.title}** ({', '.join(unit.agents)}; day {unit.day_label}; {unit.priority})\n\n"
                f"Deliverable: {unit.deliverable}\n\n" + "\n".join(f"- {c}" for c in unit.acceptance_criteria),
            )
        for unit in spec.work_units:
            for dep in unit.depends_on:
                if dep in tasks:  # earlier weeks are ordered by the roadmap driver
                    tasks[dep] >> tasks[unit.id]
        # Gates of this week: after the units their criteria name, before the units they guard.
        for gate in config.all_gates:
            if gate.week != week:
                continue
            sensor = GateSensor(
                task_id=f"gate_{gate.id}",
                gate_id=gate.id,
                roadmap_dir=roadmap_dir,
                poke_interval=poke_interval(config, clock.mode),
                timeout=dt.timedelta(days=90).total_seconds(),
                outlets=_gate_outlets(config, gate.id),
                doc_md=f"**{gate.name}**{' (veto)' if gate.veto else ''}, deadline day {gate.deadline_day}; "
                f"enforcers: {', '.join(config.expand_agents(gate.enforcers)) or '-'}.\n\n" + "\n".join(f"- [{c.kind.value}] {c.text}" for c in gate.criteria),
            )
            for criterion in gate.criteria:
                for unit_id in criterion.work_units:
                    if unit_id in tasks:
                        tasks[unit_id] >> sensor
            guard = sensor
            if gate.veto:  # the guarded work runs when the gate passed or a person overrode its veto
                override = GateOverrideOperator(
                    task_id=f"override_{gate.id}", gate_id=gate.id, roadmap_dir=roadmap_dir,
                    subject=f"{gate.name} vetoed: override the veto?", response_timeout=window,
                    notifiers=[human_review_announcement(config.roadmap.connections.slack)],
                    doc_md=f"Asked only when **{gate.name}** vetoes: Approve (with a reason) lets "
                    f"{', '.join(gate.blocks) or 'its dependent work'} run; Reject or no answer upholds the veto.",
                )
                guard = EmptyOperator(task_id=f"release_{gate.id}", trigger_rule="one_success",
                                      doc_md=f"Open when {gate.name} passed or its veto was overridden.")
                sensor >> override >> guard
                sensor >> guard
            for unit_id in gate.blocks:
                if unit_id in tasks:
                    guard >> tasks[unit_id]
        # Decision points of this week: after everything else in the week, whatever its outcome.
        work = list(dag.tasks)
        for point in config.gates.decision_points if config.gates else []:
            if point.week != week:
                continue
            decide = GoNoGoOperator(task_id=f"decide_{point.id}", decision_point=point.id, roadmap_dir=roadmap_dir,
                                    trigger_rule="all_done",
                                    doc_md=f"**{point.name}** (day {point.day}): GO - {point.go}; NO-GO - {point.no_go}")
            leaves = [t for t in work if not t.downstream_task_ids]
            leaves >> decide
            decide >> EmptyOperator(task_id=go_task_id(point.id), doc_md=point.go)
            no_go = NoGoOperator(task_id=no_go_task_id(point.id), decision_point=point.id, roadmap_dir=roadmap_dir)
            ids = review_task_ids(point.id)
            review = NoGoReviewOperator(
                task_id=ids["review"], decision_point=point.id, roadmap_dir=roadmap_dir,
                subject=f"{point.name}: NO-GO. Keep it or overturn it to GO?", response_timeout=window,
                notifiers=[human_review_announcement(config.roadmap.connections.slack)],
                doc_md=f"Asked after a NO-GO at **{point.name}**: keep it ({point.no_go}) or overturn it to GO.",
            )
            decide >> no_go >> review
            review >> EmptyOperator(task_id=ids[KEEP_NO_GO], doc_md=f"NO-GO kept: {point.no_go}")
            review >> EmptyOperator(task_id=ids[OVERTURN], doc_md=f"NO-GO overturned by a person: {point.go}")
        # A chain's consumers wait for its trigger (all_of) when both are in this week.
        for chain in config.operations.chains if config.operations else []:
            for consumer in chain.action.consumers:
                for trigger in chain.trigger.all_of:
                    if consumer in tasks and trigger in tasks and trigger != consumer:
                        tasks[trigger] >> tasks[consumer]
        # Last, once every task is done whatever happened (directly after each: a leaf can be
        # upstream_failed while another branch still runs; but not after the branching and HITL
        # tasks, which skip their direct downstream, and whose branches lead here anyway): the run
        # fails when a unit did not deliver, a veto stands or a decision is NO-GO, so Airflow's own
        # run state says the truth.
        everything = [t for t in dag.tasks if not getattr(t, "inherits_from_skipmixin", False)]
        everything >> WeekCompleteOperator(task_id="week_complete", week=week, roadmap_dir=roadmap_dir,
                                       doc_md="Fails the run unless every unit delivered, no veto stands and the "
                                       "week's decision points are GO; stores the week's outcome.")
    return dag


def build_roadmap_dag(config: RoadmapConfig) -> DAG:
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    dag_id = roadmap_dag_id(config)
    tags = [config.roadmap.dag_id_prefix if config.roadmap else "roadmap", "roadmap"]
    problems = [str(i) for i in config.issues_for(None)]
    if problems:
        return _error_dag(dag_id, config, problems, tags)

    from castmatch.decisions import extension_days

    roadmap = config.roadmap
    clock = RoadmapClock.from_roadmap(roadmap)  # the default clock; a run may choose another
    points = config.gates.decision_points if config.gates else []
    most_extension_days = sum(extension_days(config, p) * p.max_extensions for p in points)
    roadmap_dir = str(config.directory)
    with DAG(
        dag_id=dag_id,
        description=f"{roadmap.name}: runs the weeks in order on the roadmap clock",
        # Real clock: one run from the roadmap's first day, its sensors wait for each week's date.
        # Compressed clock: started by hand (make run) and the weeks follow back to back.
        schedule="@once" if clock.mode == "real" else None,
        start_date=_start_date(clock, clock.roadmap_start if clock.mode == "real" else None),
        catchup=False,
        max_active_runs=1,
        tags=tags,
        default_args={**default_args(config), "retry_delay": dt.timedelta(seconds=10)},
        params={"clock": run_params(config)["clock"]},
        doc_md=(
            f"# {roadmap.name} roadmap\n\n{roadmap.mission}.\n\nTarget: {roadmap.target}.\n\n"
            "One run of this DAG is one program: everything it produces is stored under its run. For each week: "
            "wait until the week starts on the run's clock, run the week's DAG (passing the clock), then judge "
            "it: a week must succeed, and a decision point must be GO. A NO-GO extends the timeline (the "
            "remaining weeks start later) and is decided again at the end of the extension. Trigger with "
            "`{\"clock\": \"compressed\"}` to run the whole roadmap back to back "
            f"({roadmap.clock.compressed_day_seconds:g} s per roadmap day).\n\n"
            + "\n".join(f"- Phase {p.number} {p.name}: weeks {p.weeks[0]}-{p.weeks[-1]}" for p in roadmap.phases)
        ),
    ) as dag:
        checkpoints = [checkpoint_dag_id(config, c.id) for c in (config.operations.checkpoints if config.operations else [])]
        previous = StartRunOperator(task_id="start_run", roadmap_dir=roadmap_dir,
                                    doc_md="Records this run: its clock and Day 1.")
        for week in config.week_numbers:
            wait = RoadmapWeekSensor(
                task_id=f"wait_week_{week:02d}",
                week=week,
                roadmap_dir=roadmap_dir,
                poke_interval=poke_interval(config, clock.mode),
                timeout=dt.timedelta(days=7 * (week + 4) + most_extension_days).total_seconds(),
            )
            run = TriggerDagRunOperator(
                task_id=f"run_week_{week:02d}",
                trigger_dag_id=week_dag_id(config, week),
                trigger_run_id=f"roadmap__{{{{ run_id }}}}__week_{week:02d}",
                conf={"roadmap_run_id": "{{ run_id }}", "clock": "{{ params.clock }}"},
                wait_for_completion=True,
                poke_interval=5,
                # The week's outcome is judged by check_week (a NO-GO week run fails, and extends
                # the timeline): never re-trigger, which would reset the week's run.
                allowed_states=["success", "failed"],
                failed_states=[],
                reset_dag_run=True,
                retries=0,
            )
            week_points = [p for p in points if p.week == week]
            check = WeekCheckSensor(
                task_id=f"check_week_{week:02d}",
                week=week,
                roadmap_dir=roadmap_dir,
                poke_interval=poke_interval(config, clock.mode),
                timeout=dt.timedelta(days=7 + sum(extension_days(config, p) * p.max_extensions
                                                  for p in week_points)).total_seconds(),
                doc_md=f"Week {week} must succeed" + (f"; decision points {', '.join(p.id for p in week_points)} must be "
                                                       "GO (a NO-GO extends the timeline and is decided again)"
                                                       if week_points else "") + ".",
            )
            previous >> wait >> run >> check
            if checkpoints:  # the week's checkpoints at their compressed moments (a real-clock run's cron took them)
                run >> TriggerDagRunOperator.partial(
                    task_id=f"checkpoints_week_{week:02d}",
                    trigger_run_id=f"roadmap__{{{{ run_id }}}}__week_{week:02d}",
                    conf={"roadmap_run_id": "{{ run_id }}", "clock": "{{ params.clock }}"},
                    skip_when_already_exists=True,  # a retry never takes them twice
                ).expand(trigger_dag_id=checkpoints)
            previous = check
    return dag


def build_chain_dags(config: RoadmapConfig) -> list[DAG]:
    """One DAG per dependency chain, run by the assets its trigger units publish (`&` for
    all_of, `|` for any_of); its task is the chain's action."""
    from functools import reduce
    from operator import and_, or_

    if config.roadmap is None or config.operations is None:
        return []
    problems = [str(i) for i in config.issues_for(family="chains")]
    if problems:
        return [_error_dag(f"{config.roadmap.dag_id_prefix}_chain_{c.id}", config, problems, [config.roadmap.dag_id_prefix, "chain"])
                for c in config.operations.chains]
    dags = []
    for chain in config.operations.chains:
        parts = []
        if chain.trigger.all_of:
            parts.append(reduce(and_, [chain_asset(config, chain.id, u) for u in chain.trigger.all_of]))
        if chain.trigger.any_of:
            parts.append(reduce(or_, [chain_asset(config, chain.id, u) for u in chain.trigger.any_of]))
        if chain.trigger.gates:
            parts.append(reduce(and_, [chain_gate_asset(config, chain.id, g) for g in chain.trigger.gates]))
        with DAG(
            dag_id=f"{config.roadmap.dag_id_prefix}_chain_{chain.id}",
            description=f"{chain.name}: {chain.action.description}",
            schedule=reduce(and_, parts),
            start_date=FALLBACK_START,
            catchup=False,
            max_active_runs=1,
            tags=[config.roadmap.dag_id_prefix, "chain", chain.group],
            default_args=default_args(config),
            doc_md=(f"# Chain: {chain.name}\n\n- Trigger: {chain.trigger.description} "
                    f"(all of: {', '.join(chain.trigger.all_of) or '-'}; any of: {', '.join(chain.trigger.any_of) or '-'}; "
                    f"gates passed: {', '.join(chain.trigger.gates) or '-'})\n"
                    f"- Action: {chain.action.description}; notifies {', '.join(chain.action.notify)} with "
                    f"{', '.join(chain.action.artifacts) or 'the deliverables'}\n- Timeline: {chain.timeline.description}"),
        ) as dag:
            ChainHandoffOperator(task_id="handoff", chain_id=chain.id, roadmap_dir=str(config.directory))
        dags.append(dag)
    return dags


def standup_dag_id(config: RoadmapConfig) -> str:
    prefix = config.roadmap.dag_id_prefix if config.roadmap else "roadmap"
    return f"{prefix}_daily_standup"


def build_standup_dag(config: RoadmapConfig) -> DAG | None:
    """The seed's daily standup (its cron, in the roadmap's timezone), when the config has one, then
    its automated actions."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

    ops = config.operations
    if config.roadmap is None or ops is None or ops.standup is None:
        return None
    problems = [str(i) for i in config.issues_for(family="standup")]
    if problems:
        return _error_dag(standup_dag_id(config), config, problems, [config.roadmap.dag_id_prefix, "operations"])
    tz = config.roadmap.timezone
    with DAG(
        dag_id=standup_dag_id(config),
        description=f"{config.roadmap.name}: daily standup of every agent",
        schedule=CronTriggerTimetable(ops.standup.cron, timezone=tz),
        start_date=_start_date(RoadmapClock.from_roadmap(config.roadmap), None),
        catchup=False,
        max_active_runs=1,
        tags=[config.roadmap.dag_id_prefix, "operations", "standup"],
        default_args=default_args(config),
        doc_md=(
            f"# Daily standup\n\n`{ops.standup.cron}` ({tz}). Every agent reports "
            + ", ".join(ops.standup.format) + " from the stored state. On a Claude backend the reports "
            "go through the Message Batches API (half price) and the task waits deferred."
        ),
    ) as dag:
        actions = StandupActionsOperator(task_id="apply_actions", roadmap_dir=str(config.directory),
                                         doc_md="Automated actions: " + (", ".join(ops.standup.automated_actions) or "none"))
        StandupOperator(task_id="standup", roadmap_dir=str(config.directory)) >> actions >> TriggerDagRunOperator.partial(
            task_id="start_units",
            skip_when_already_exists=True,  # one run per unit and day, even retried
        ).expand_kwargs(actions.output)
    return dag


def checkpoint_dag_id(config: RoadmapConfig, checkpoint_id: str) -> str:
    return f"{config.roadmap.dag_id_prefix}_checkpoint_{checkpoint_id}"


def build_checkpoint_dags(config: RoadmapConfig) -> list[DAG]:
    """One DAG per checkpoint of ``operations.yaml`` on its cron in the roadmap's timezone (the real
    clock); the roadmap driver also triggers each after every week (the compressed clock)."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

    from castmatch.operators.checkpoint import CheckpointOperator

    if config.roadmap is None or config.operations is None:
        return []
    tags = [config.roadmap.dag_id_prefix, "operations", "checkpoint"]
    problems = [str(i) for i in config.issues_for(family="checkpoints")]
    if problems:
        return [_error_dag(checkpoint_dag_id(config, c.id), config, problems, tags) for c in config.operations.checkpoints]
    tz = config.roadmap.timezone
    dags = []
    for checkpoint in config.operations.checkpoints:
        with DAG(
            dag_id=checkpoint_dag_id(config, checkpoint.id),
            description=f"{config.roadmap.name}: {checkpoint.name} ({checkpoint.purpose or ', '.join(checkpoint.does)})",
            schedule=CronTriggerTimetable(checkpoint.cron, timezone=tz),
            start_date=FALLBACK_START,
            catchup=False,
            max_active_runs=1,
            tags=[*tags, checkpoint.cadence],
            default_args=default_args(config),
            params={**run_params(config),
                    "run_key": Param(None, type=["null", "string"], description="Take it for this run only")},
            doc_md=(f"# {checkpoint.name}\n\n`{checkpoint.cron}` ({tz}), {checkpoint.mode}. Seed: {checkpoint.purpose}.\n\n"
                    f"Does: {', '.join(checkpoint.does)}. Every due moment of every run not taken yet is taken, with "
                    "figures from the store as they stood at that moment (`castmatch checkpoints` lists them)."),
        ) as dag:
            take = CheckpointOperator(task_id="take_checkpoint", checkpoint_id=checkpoint.id,
                                      roadmap_dir=str(config.directory))
            take >> TriggerDagRunOperator.partial(
                task_id="start_unblocked",
                skip_when_already_exists=True,  # the same unit is never started twice (incidents use the same id)
            ).expand_kwargs(take.output)
        dags.append(dag)
    return dags


def _every_update_dag(config: RoadmapConfig, *, name: str, family: str, description: str, doc_md: str,
                      operator_cls, task_id: str) -> DAG:
    """An operations DAG of one task run every ``update_frequency_minutes`` (the seed's 15)."""
    from airflow.sdk import DeltaTriggerTimetable

    dag_id = f"{config.roadmap.dag_id_prefix}_{name}"
    problems = [str(i) for i in config.issues_for(family=family)]
    if problems:
        return _error_dag(dag_id, config, problems, [config.roadmap.dag_id_prefix, "operations"])
    with DAG(
        dag_id=dag_id,
        description=f"{config.roadmap.name}: {description}",
        schedule=DeltaTriggerTimetable(config.update_interval),
        start_date=FALLBACK_START,
        catchup=False,
        max_active_runs=1,
        tags=[config.roadmap.dag_id_prefix, "operations", name],
        default_args={**default_args(config), "retry_delay": dt.timedelta(seconds=30)},
        doc_md=doc_md,
    ) as dag:
        operator_cls(task_id=task_id, roadmap_dir=str(config.directory))
    return dag


def build_probe_dag(config: RoadmapConfig) -> DAG | None:
    """Samples the gates' probes every ``update_frequency_minutes``, so "stable for 24+ hours" and
    uptime KPIs are judged on a day of samples, not on the gate's own check."""
    if config.roadmap is None or not (config.gates and config.gates.probes):
        return None
    every = f"{config.update_interval.total_seconds() / 60:g}"
    return _every_update_dag(
        config, name="probes", family="probes", operator_cls=SampleProbesOperator, task_id="sample_probes",
        description=f"samples the services the gates depend on every {every} min",
        doc_md=(f"# Probes\n\nEvery {every} min each probe of `gates.yaml` is checked once through its Airflow "
                "connection and stored as a sample: "
                + ", ".join(f"`{p.id}` ({p.kind})" for p in config.gates.probes)
                + '. Gates with a window ("stable for 24+ hours") need samples covering the window; uptime KPIs '
                "are computed from them. A failing probe opens an incident."))


def build_incident_dag(config: RoadmapConfig) -> DAG | None:
    """The escalation ladder's sweep every ``update_frequency_minutes``: open incidents are
    re-checked, resolved or escalated on their run's clock."""
    from castmatch.operators.incidents import IncidentSweepOperator

    if config.roadmap is None:
        return None
    every = f"{config.update_interval.total_seconds() / 60:g}"
    dag = _every_update_dag(
        config, name="incidents", family="incidents", operator_cls=IncidentSweepOperator, task_id="sweep_incidents",
        description=f"incidents re-checked and escalated every {every} min",
        doc_md=(f"# Incidents\n\nEvery {every} min each open incident (a unit failed for good, blocked or needing "
                "review, a vetoed gate, a NO-GO, a failing probe) is re-checked: resolved when the check that opened "
                "it passes, else moved up the escalation ladder of `operations.yaml` once its level's time has passed "
                "on the run's clock. `castmatch incidents` lists them with every action taken. A unit an agents' "
                "proposal changed (level 2) runs again in its run through `" + incident_work_dag_id(config) + "`."))
    if "config-error" not in dag.tags:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        with dag:
            TriggerDagRunOperator.partial(
                task_id="trigger_incident_runs",
                skip_when_already_exists=True,  # one run per incident and purpose, even retried
            ).expand_kwargs(dag.get_task("sweep_incidents").output)
    return dag


def incident_sweep_dag_id(config: RoadmapConfig) -> str:
    return f"{config.roadmap.dag_id_prefix}_incidents"


def incident_work_dag_id(config: RoadmapConfig) -> str:
    return f"{config.roadmap.dag_id_prefix}_incident_work"


def incident_review_dag_id(config: RoadmapConfig) -> str:
    return f"{config.roadmap.dag_id_prefix}_incident_review"


def _incident_dag(config: RoadmapConfig, dag_id: str, *, description: str, params: dict, doc_md: str) -> DAG | None:
    """A DAG the incidents sweep triggers (no schedule), or the error DAG when the roadmap's
    incident settings are broken (``ConfigErrorDag``: nothing to add to it)."""
    if config.roadmap is None:
        return None
    problems = [str(i) for i in config.issues_for(family="incidents")]
    if problems:
        return _error_dag(dag_id, config, problems, [config.roadmap.dag_id_prefix, "operations"])
    return DAG(dag_id=dag_id, description=f"{config.roadmap.name}: {description}", schedule=None,
               start_date=FALLBACK_START, catchup=False,
               tags=[config.roadmap.dag_id_prefix, "operations", "incidents"], default_args=default_args(config),
               params={**params, "clock": run_params(config)["clock"]}, doc_md=doc_md)


def build_incident_review_dag(config: RoadmapConfig) -> DAG | None:
    """Level 3: people decide on an incident (Required Actions), triggered by the sweep."""
    from castmatch.operators.incidents import IncidentReviewOperator

    dag = _incident_dag(
        config, incident_review_dag_id(config),
        description="people decide on an incident the agents could not resolve",
        params={"run_key": Param("", type="string", description="The run of the incident"),
                "incident": Param(0, type="integer", description="The incident's id")},
        doc_md="# Incident review (level 3, human oversight)\n\nTriggered by the incidents sweep when an incident "
               "reaches the top of the ladder. Keep stopped (default, also without an answer), accept the risk, extend "
               "the timeline by N days, or reassign the unit to another agent.")
    if dag is None or isinstance(dag, ConfigErrorDag):
        return dag
    top = config.operations.escalation[-1] if config.operations and config.operations.escalation else None
    with dag:
        IncidentReviewOperator(
            task_id="decide", roadmap_dir=str(config.directory),
            subject="An incident needs a decision", response_timeout=review_window(config, "real"),
            assigned_users=[{"id": p, "name": p} for p in (top.people if top else [])] or None,
            notifiers=[human_review_announcement(config.roadmap.connections.slack)],
        )
    return dag


def build_incident_work_dag(config: RoadmapConfig) -> DAG | None:
    """A unit run again in its original run after level 2 changed it (triggered by the sweep)."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    from castmatch.operators.incidents import IncidentWorkOperator, StartUnblockedOperator

    dag = _incident_dag(
        config, incident_work_dag_id(config),
        description="a unit changed by an incident's level 2, run again in its run",
        params={"run_key": Param("", type="string", description="The run the unit belongs to"),
                "work_unit": Param("", type="string", description="The work unit to run again")},
        doc_md="# Incident work\n\nTriggered by the incidents sweep when agents' proposal changed a unit (another "
               "lead agent, renegotiated dependencies, revised instructions): the unit runs again in its original "
               "run, as changed; its deliverable replaces the failed attempt, and the incident resolves. Then the "
               "units that waited on it start (Dependency Unblocked: one run of this DAG each, their agents told).")
    if dag is None or isinstance(dag, ConfigErrorDag):
        return dag
    with dag:
        pool, _ = config.agent_pool
        run_unit = IncidentWorkOperator(task_id="run_unit", roadmap_dir=str(config.directory), pool=pool,
                                        retry_policy=agent_retry_policy(config))
        unblocked = StartUnblockedOperator(task_id="find_unblocked", roadmap_dir=str(config.directory))
        run_unit >> unblocked >> TriggerDagRunOperator.partial(
            task_id="start_unblocked",
            skip_when_already_exists=True,  # one run per waiting unit, even retried
        ).expand_kwargs(unblocked.output)
    return dag


FAMILIES = ("weeks", "roadmap", "chains", "operations", "checkpoints")

# DAGs built by a long-lived process that forks task processes (``prebuild_dags``), per family,
# with the config they were built from.
_prebuilt: dict[str, tuple[RoadmapConfig, dict[str, DAG]]] = {}


def prebuild_dags(roadmap_dir: str | Path | None = None) -> int:
    """Build every family's DAGs here, in the scheduler or Celery worker before it forks task
    processes (``castmatch.preload``): a task process parsing its DAG file then takes its DAG as
    built here instead of building it again (some thirty operators, ~25 ms of CPU per task), as
    long as the roadmap's files are unchanged (the cached config is then the same object; an
    edited file makes a new one, and the task process builds from it). Returns the DAGs built."""
    _prebuilt.clear()
    config = load_roadmap_cached(roadmap_dir)
    built = {family: (config, build_dags(roadmap_dir, family)) for family in FAMILIES}
    _prebuilt.update(built)
    return sum(len(dags) for _, dags in built.values())


def build_dags(roadmap_dir: str | Path | None = None, family: str | None = None) -> dict[str, DAG]:
    """The roadmap's DAGs of one ``family`` (weeks, roadmap, chains, operations; None: all),
    keyed by dag_id, for ``globals().update(...)`` in that family's file in dags/.

    A task process parses its DAG file only to find its own DAG: there (Airflow's parsing context
    names the DAG) the weeks' file builds that week's DAG alone, as Airflow's docs advise for
    generated DAGs: a week task builds one week DAG of some thirty tasks, not twelve. (A DAG built
    is registered whether or not it is returned, so the choice is made before building.)"""
    from airflow.sdk import get_parsing_context

    config = load_roadmap_cached(roadmap_dir)
    if config.roadmap is None:
        # Nothing to name the DAGs after: fail the import so the error shows in the UI.
        config.raise_for_issues(all_files=True)
    wanted = get_parsing_context().dag_id
    if wanted is not None:  # a task process: the DAG its parent built, if from this very config
        kept = _prebuilt.get(family)
        if kept is not None and kept[0] is config and wanted in kept[1]:
            return {wanted: kept[1][wanted]}
    only = wanted if family == "weeks" else None
    dags: list[DAG | None] = []
    if family in (None, "weeks"):
        dags += [build_week_dag(config, week) for week in config.week_numbers
                 if only is None or week_dag_id(config, week) == only]
    if family in (None, "roadmap"):
        dags.append(build_roadmap_dag(config))
    if family in (None, "chains"):
        dags += build_chain_dags(config)
    if family in (None, "operations"):
        dags += [build_standup_dag(config), build_probe_dag(config), build_incident_dag(config),
                 build_incident_work_dag(config), build_incident_review_dag(config)]
    if family in (None, "checkpoints"):
        dags += build_checkpoint_dags(config)
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown DAG family {family!r} (one of {', '.join(FAMILIES)})")
    return {dag.dag_id: dag for dag in dags if dag is not None}
