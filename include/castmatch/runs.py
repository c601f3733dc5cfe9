"""Runs of a roadmap: the scope of all program state.

A *run* is one ``<prefix>_roadmap`` DAG run (the whole program), or a week DAG run started on its
own. Its ``run_key`` keys every deliverable, unit run, review, gate result, decision, event, KPI
sample and LLM call it produces, and starts with the roadmap's id, so two roadmaps share one
store (and one Redis) without seeing each other, and a second run of a roadmap starts from the
seed's baselines instead of inheriting the first run's results.

The clock mode travels with the run: ``params.clock`` of the roadmap run, passed to every week
it triggers; the parse-time environment (``CASTMATCH_CLOCK``) only sets the default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

SEP = ":"


def roadmap_id_of(config) -> str:
    """The roadmap's own id (its ``dag_id_prefix``): on rows, Redis keys, asset URIs, names."""
    return config.roadmap.dag_id_prefix if config.roadmap else "roadmap"


def driver_dag_id(roadmap_id: str) -> str:
    """The DAG that runs the whole roadmap (``<prefix>_roadmap``)."""
    return f"{roadmap_id}_roadmap"


def orchestrator_name(roadmap_id: str) -> str:
    """Who automatic decisions are recorded as decided by."""
    return f"{roadmap_id}-orchestrator"


def run_key_for(roadmap_id: str, *, roadmap_run_id: str | None = None, dag_id: str | None = None,
                logical_date: dt.datetime | None = None, run_id: str | None = None) -> str:
    """``<roadmap>:roadmap:<run id>`` for a roadmap run; ``<roadmap>:<dag>:date:<logical date>``
    (else ``:run:<run id>``) for a week run on its own. Rerunning the same run gives the same key,
    so its rows are replaced, never duplicated."""
    if roadmap_run_id:
        return SEP.join([roadmap_id, "roadmap", roadmap_run_id])
    if logical_date is not None:
        return SEP.join([roadmap_id, dag_id or "-", "date", logical_date.isoformat()])
    return SEP.join([roadmap_id, dag_id or "-", "run", run_id or "-"])


def roadmap_of(run_key: str) -> str:
    """The roadmap id a run key belongs to."""
    return run_key.split(SEP, 1)[0]


@dataclass(frozen=True)
class RunScope:
    """Where a task's results belong."""

    roadmap_id: str
    run_key: str
    kind: str  # roadmap | week
    dag_id: str
    run_id: str  # the Airflow run id of the task's own DAG run
    clock: str  # real | compressed


def _params(context) -> dict:
    return dict(context.get("params") or {})


def clock_of(context, default: str) -> str:
    """The run's clock mode: ``params.clock`` when the run has one, else ``default``."""
    mode = _params(context).get("clock") or default
    if mode not in ("real", "compressed"):
        raise ValueError(f"clock must be 'real' or 'compressed', not {mode!r}")
    return mode


def run_scope(context, config) -> RunScope:
    """The run a task of ``config``'s DAGs belongs to, from its Airflow context."""
    from castmatch.clock import default_clock_mode

    roadmap_id = roadmap_id_of(config)
    ti = context["ti"]
    params = _params(context)
    clock = clock_of(context, default_clock_mode(config.roadmap))
    joined = params.get("run_key")  # work an incident asks for in an existing run (castmatch.collaboration)
    if joined and roadmap_of(joined) == roadmap_id:
        return RunScope(roadmap_id, joined, "roadmap" if joined.split(SEP)[1:2] == ["roadmap"] else "week",
                        ti.dag_id, ti.run_id, clock)
    roadmap_run = params.get("roadmap_run_id")
    if ti.dag_id == driver_dag_id(roadmap_id):  # the roadmap driver itself
        roadmap_run = ti.run_id
    if roadmap_run:
        key = run_key_for(roadmap_id, roadmap_run_id=roadmap_run)
        return RunScope(roadmap_id, key, "roadmap", ti.dag_id, ti.run_id, clock)
    key = run_key_for(roadmap_id, dag_id=ti.dag_id, logical_date=context.get("logical_date"), run_id=ti.run_id)
    return RunScope(roadmap_id, key, "week", ti.dag_id, ti.run_id, clock)


def register(store, scope: RunScope, context, config) -> dict:
    """Record the run (once; later calls keep its start and origin) and return its row. The call
    that records it also mirrors ``config``'s agents and work units in the store (once per run,
    not once per task), so SQL reports can join on them."""
    dag_run = context.get("dag_run")
    started = getattr(dag_run, "start_date", None) if dag_run is not None else None
    run_id = scope.run_id
    dag_id = scope.dag_id
    if scope.kind == "roadmap" and dag_id != driver_dag_id(scope.roadmap_id):
        # a week triggered by the roadmap: the run is the roadmap's, registered by its driver;
        # register it here too in case the week is the first to write (same key, same values)
        dag_id, run_id = driver_dag_id(scope.roadmap_id), scope.run_key.split(SEP, 2)[2]
        started = None
    row = store.register_run(run_key=scope.run_key, roadmap_id=scope.roadmap_id, kind=scope.kind, dag_id=dag_id,
                             run_id=run_id, clock=scope.clock, origin=started)
    if row["new"]:
        store.sync_config(config)
    return row


def resolve_run(store, roadmap_id: str, wanted: str | None = None) -> dict | None:
    """The run a report shows: ``wanted`` (a run key, or an Airflow run id of the roadmap or of
    a week run on its own), else the newest roadmap run, else the newest run of any kind."""
    runs = store.runs(roadmap_id)
    if wanted:
        for run in runs:
            if wanted in (run["run_key"], run["run_id"]):
                return run
        return None
    roadmap_runs = [r for r in runs if r["kind"] == "roadmap"]
    return (roadmap_runs or runs or [None])[0]


def active_weeks(config, store, run_key: str | None, unit_runs: list[dict] | None = None) -> set[int]:
    """The weeks run ``run_key`` has worked in (a unit of theirs started); from ``unit_runs`` when
    the caller has read them already."""
    if not run_key:
        return set()
    rows = store.unit_runs(run_key) if unit_runs is None else unit_runs
    return {w for w in (config.unit_week.get(r["work_unit_id"]) for r in rows) if w}


def run_clock(config, store, run_key: str, mode: str):
    """The roadmap clock of run ``run_key`` in ``mode``: its origin (compressed: when the run's
    Day 1 began) and the days its timeline was extended so far."""
    from castmatch.clock import RoadmapClock

    run = store.run(run_key)
    return RoadmapClock.from_roadmap(config.roadmap, mode=mode, origin=run["origin"] if run else None,
                                     shift_days=store.extension_days(run_key))


def poke_interval(config, mode: str) -> float:
    """Seconds between two checks of a waiting gate or week: 5 s on the compressed clock, the
    roadmap's update cycle (15 min) on the real one."""
    return 5.0 if mode == "compressed" else config.update_interval.total_seconds()


def review_window(config, mode: str) -> dt.timedelta:
    """How long a person has to answer a veto override or NO-GO review, on the run's clock."""
    from castmatch.clock import RoadmapClock
    from castmatch.config.models import HumanReview

    human = config.gates.human_review if config.gates else HumanReview()
    return human.window(RoadmapClock.from_roadmap(config.roadmap, mode=mode))


def runs_report(config, store) -> list[dict]:
    """Every run of the roadmap, newest first, with what it achieved so far."""
    out = []
    for run in store.runs(roadmap_id_of(config)):
        key = run["run_key"]
        delivered = {d["work_unit_id"] for d in store.deliverables(run_key=key) if d["status"] == "done"}
        decisions = {d["decision_point"]: d["decision"] for d in store.decisions(key)}
        weeks = store.week_outcomes(key)
        out.append({
            "run_key": key, "kind": run["kind"], "dag_id": run["dag_id"], "run_id": run["run_id"],
            "clock": run["clock"], "started_at": run["started_at"].isoformat() if run["started_at"] else None,
            "delivered": len(delivered), "work_units": len(config.work_units),
            "weeks": {str(w): o["state"] for w, o in sorted(weeks.items())},
            "decisions": decisions, "extension_days": store.extension_days(key),
        })
    return out


def render_runs(report: list[dict]) -> str:
    if not report:
        return "no runs yet"
    lines = []
    for r in report:
        weeks = " ".join(f"W{int(w):02d}:{'ok' if s == 'success' else 'FAILED'}" for w, s in r["weeks"].items())
        decisions = ", ".join(f"{p}={d}" for p, d in r["decisions"].items()) or "no decision yet"
        lines.append(f"{r['run_key']}  ({r['kind']} run, {r['clock']} clock, started {r['started_at']})")
        lines.append(f"    delivered {r['delivered']}/{r['work_units']} units; {weeks or 'no week finished'}; {decisions}"
                     + (f"; timeline extended by {r['extension_days']:g} day(s)" if r["extension_days"] else ""))
    return "\n".join(lines)
