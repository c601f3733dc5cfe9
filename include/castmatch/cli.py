"""The ``castmatch`` command: validate a roadmap, report on its runs, answer what waits for a person.

Reports show one run of the roadmap: the newest roadmap run by default (else the newest run of
any kind), or the one ``--run`` names (its run key, or the Airflow run id). A store or service
that cannot be reached is one line naming it and what to do, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path


class CliError(Exception):
    """Something the person can fix: printed as one line, exit status 2."""


def _validate(args) -> int:
    from castmatch.config import load_roadmap

    config = load_roadmap(args.directory)
    for issue in config.issues:
        print(issue)
    if config.issues:
        print(f"{len(config.issues)} error(s) in {config.directory}", file=sys.stderr)
        return 1
    print(config.summary())
    return 0


def _init(args) -> int:
    from pathlib import Path

    from castmatch.config import load_roadmap
    from castmatch.config.starter import StarterError, write_starter

    directory = Path(args.directory)
    try:
        written = write_starter(directory, name=args.name, agents=args.agents, weeks=args.weeks, force=args.force)
    except StarterError as exc:
        raise CliError(str(exc)) from None
    config = load_roadmap(directory)
    for issue in config.issues:  # a starter that does not validate is our bug: say so plainly
        print(issue, file=sys.stderr)
    print(f"wrote {len(written)} files to {directory}: {config.summary()}")
    print(f"next: edit them (docs/roadmap-schema.md lists every field), then\n  castmatch validate {directory}\n"
          f"  CASTMATCH_ROADMAP_DIR={directory.resolve()} make run")
    return 1 if config.issues else 0


def _schema(args) -> int:
    from pathlib import Path

    from castmatch.config import schema

    if args.docs:
        print(schema.markdown(), end="")
        return 0
    if args.write:
        for path in schema.write_schemas(Path(args.write)):
            print(path)
        return 0
    print(json.dumps(schema.json_schema(args.kind) if args.kind else schema.all_schemas(), indent=2))
    return 0


def _config(args, needs: tuple[str, ...] = ("team", "roadmap")):
    from castmatch.config import load_roadmap

    config = load_roadmap(args.roadmap)
    for issue in config.issues:
        print(f"warning: {issue}", file=sys.stderr)
    missing = [part for part in needs if getattr(config, part) is None]
    if missing:
        raise CliError(f"the roadmap in {config.directory} has no usable {', '.join(missing)} (see the warnings)")
    return config


def _run_report(args, needs: tuple[str, ...], build, render) -> int:
    """Resolve the run, build a report of it from the store, print it."""
    from castmatch.runs import resolve_run, roadmap_id_of
    from castmatch.store import Store

    config = _config(args, needs)
    store = Store()
    run = resolve_run(store, roadmap_id_of(config), args.run)
    if args.run and run is None:
        raise CliError(f"no run {args.run!r} of roadmap {roadmap_id_of(config)!r}: `castmatch runs` lists them")
    report = build(config, store, run["run_key"] if run else None)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(f"run: {run['run_key']} ({run['kind']}, {run['clock']} clock)" if run else
              f"run: none yet for roadmap {roadmap_id_of(config)!r} (seed baselines)")
        print(render(report))
    return 0


def _status(args) -> int:
    from castmatch.status import render_matrix, status_matrix

    return _run_report(args, ("team", "roadmap"), status_matrix, render_matrix)


def _chains(args) -> int:
    from castmatch.chains import chains_report, render_chains

    return _run_report(args, ("team", "operations"), chains_report, render_chains)


def _gates(args) -> int:
    from castmatch.gates import gates_report, render_gates

    return _run_report(args, ("team", "gates", "kpis"), gates_report, render_gates)


def _incidents(args) -> int:
    from castmatch.incidents import incidents_report, render_incidents

    return _run_report(args, ("team", "roadmap"),
                       lambda config, store, run_key: incidents_report(config, store, run_key, open_only=args.open),
                       render_incidents)


def _checkpoints(args) -> int:
    from castmatch.checkpoints import checkpoints_report, render_checkpoints

    return _run_report(args, ("team", "roadmap", "operations"), checkpoints_report, render_checkpoints)


def _alerts(args) -> int:
    from castmatch.alerts import alerts_report, render_alerts

    return _run_report(args, ("team", "operations"), alerts_report, render_alerts)


def _usage(args) -> int:
    from castmatch.reconcile import in_flight_limit
    from castmatch.usage import render_usage, usage_report

    def build(config, store, run_key):
        if not run_key:
            return usage_report([])
        store.reconcile_lost_calls(run_key=run_key, older_than=in_flight_limit(config))  # no call still "started"
        return usage_report(store.llm_calls(run_key=run_key))

    return _run_report(args, ("roadmap",), build, render_usage)


def _reconcile(args) -> int:
    from castmatch.reconcile import reconcile, render_reconcile
    from castmatch.runs import resolve_run, roadmap_id_of
    from castmatch.store import Store

    config = _config(args, ("roadmap",))
    store = Store()
    run = resolve_run(store, roadmap_id_of(config), args.run)
    if run is None:
        raise CliError(f"no run {args.run!r} of roadmap {roadmap_id_of(config)!r}: `castmatch runs` lists them"
                       if args.run else f"no run of roadmap {roadmap_id_of(config)!r} yet")
    report = reconcile(config, store, run["run_key"])
    print(json.dumps(report, indent=2, default=str) if args.json else render_reconcile(report))
    return 1 if report["problems"] else 0


def _runs(args) -> int:
    from castmatch.runs import render_runs, runs_report
    from castmatch.store import Store

    report = runs_report(_config(args, ("roadmap",)), Store())
    print(json.dumps(report, indent=2, default=str) if args.json else render_runs(report))
    return 0


def _report(args) -> int:
    from castmatch.report import write_report
    from castmatch.runs import active_weeks, resolve_run, roadmap_id_of
    from castmatch.store import Store

    config = _config(args, ("team", "roadmap"))
    store = Store()
    run = resolve_run(store, roadmap_id_of(config), args.run)
    if run is None:
        raise CliError(f"no run {args.run or ''} of roadmap {roadmap_id_of(config)!r} to report on: "
                       "`castmatch runs` lists them".replace("  ", " "))
    week = args.week
    if week is None:  # the newest week the run has worked in
        week = max(active_weeks(config, store, run["run_key"]), default=1)
    if week not in config.weeks:
        raise CliError(f"--week {week}: the roadmap has weeks {min(config.weeks)}-{max(config.weeks)}")
    out = Path(args.out) if args.out else Path("reports") / run["run_key"].replace(":", "_") / f"week_{week:02d}"
    with contextlib.redirect_stdout(sys.stderr):  # what Airflow's hooks log never mixes with the JSON
        result = write_report(config, store, run["run_key"], week, out, slack=args.slack)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"week {week} report of run {run['run_key']}: {result['markdown']}")
        for chart in result["charts"]:
            print(f"    {chart}")
        print(f"summary: {result['written_by']}; kept in the store; Slack: {result['slack']['status']} "
              f"({result['slack']['detail']})")
    return 0


def _queues(args) -> int:
    from castmatch.workers import roadmap_queues

    queues = roadmap_queues(_config(args, ("team",)))
    print(json.dumps(queues) if args.json else ",".join(queues))
    return 0


def _reviews(args) -> int:
    from castmatch.human import pending_requests

    config = _config(args, ("roadmap",))
    pending = [p.as_dict() for p in _airflow_db(lambda: pending_requests(config.roadmap.dag_id_prefix + "_"))]
    if args.json:
        print(json.dumps(pending, indent=2))
        return 0
    if not pending:
        print("nothing waits for a person")
        return 0
    for p in pending:
        print(f"{p['dag_id']}/{p['task_id']}  run {p['run_id']}  (id {p['id']})")
        print(f"    {p['subject']}")
        print(f"    options: {' | '.join(p['options'])}; default {', '.join(p['defaults']) or 'none'} "
              f"applies at {p['deadline'] or 'no deadline'}")
        print(f"    answer: {p['answer']}")
    return 0


def _form_params(pairs: list[str] | None) -> dict:
    """``KEY=VALUE`` form fields (a number or JSON value is parsed, anything else kept as text)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--param takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _answer(args) -> int:
    from castmatch.human import NoSuchRequest, answer, find_request

    config = _config(args, ("roadmap",))
    try:
        request = _airflow_db(lambda: find_request(args.request, run_id=args.run,
                                                   dag_id_prefix=config.roadmap.dag_id_prefix + "_"))
        params = _form_params(args.param)
        done = _airflow_db(lambda: answer(request, args.option, reason=args.reason, user=args.user, params=params))
    except (NoSuchRequest, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(f"answered {done['dag_id']}/{done['task_id']} (run {done['run_id']}): {args.option!r} as {done['responded_by']}"
          + (f", reason: {done['reason']}" if done["reason"] else ""))
    return 0


def _db(args) -> int:
    from castmatch.store import database_url, upgrade

    url = database_url()
    revision = upgrade(url, args.revision)
    print(f"store at {_safe_url(url)} is at revision {revision}")
    return 0


def _settings(args) -> int:
    from castmatch.airflow_settings import load

    load(args.file)
    print(f"loaded {args.file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="castmatch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a roadmap folder (default: the CastMatch one)")
    p.add_argument("directory", nargs="?", default=None)
    p.set_defaults(func=_validate)

    p = sub.add_parser("init", help="write a commented starter roadmap that validates, to edit into your own")
    p.add_argument("directory")
    p.add_argument("--name", default="My Team", help="the roadmap's name (its DAG id prefix is made from it)")
    p.add_argument("--agents", type=int, default=4, help="agents, the last being the reviewer (default 4)")
    p.add_argument("--weeks", type=int, default=4, help="weeks, split into two phases (default 4)")
    p.add_argument("--force", action="store_true", help="write into a folder that already holds YAML")
    p.set_defaults(func=_init)

    p = sub.add_parser("schema", help="JSON Schema of the roadmap files, for editors (YAML language server)")
    p.add_argument("kind", nargs="?", choices=["roadmap", "team", "week", "gates", "kpis", "operations", "llm"],
                   help="one file kind (default: all, keyed by kind)")
    p.add_argument("--write", metavar="DIR", help="write DIR/.schema/<kind>.schema.json for every kind")
    p.add_argument("--docs", action="store_true", help="print the field-by-field reference (docs/roadmap-schema.md)")
    p.set_defaults(func=_schema)

    def command(name: str, help_text: str, func, *, run: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--roadmap", default=None, help="roadmap folder (default: $CASTMATCH_ROADMAP_DIR or CastMatch)")
        if run:
            p.add_argument("--run", default=None, help="a run key or Airflow run id (default: the newest roadmap run)")
        p.set_defaults(func=func)
        return p

    command("status", "the agent status matrix and weeks done/total of a run", _status)
    command("chains", "the dependency chains of a run with their status", _chains)
    command("gates", "gates with criteria results, KPI values and decision points of a run", _gates)
    command("usage", "LLM calls, tokens, cache hit share and cost of a run per agent, week and backend", _usage)
    p = command("incidents", "incidents of a run (and failing services) with their level and every action", _incidents)
    p.add_argument("--open", action="store_true", help="only those not resolved")
    command("checkpoints", "checkpoints of a run (morning, midday, evening, week review, week start, stakeholder "
            "updates): the moment each stands for, its figures and the actions it took", _checkpoints)
    command("alerts", "trigger-based alerts of a run: the event, the agents told, whether Slack got it", _alerts)
    command("runs", "the runs of the roadmap, newest first", _runs, run=False)
    command("reconcile", "check a run: one deliverable or one failure per started unit, no duplicates, nothing left "
            "running, every attempt in the ledger (exit 1 on a discrepancy)", _reconcile)
    p = command("report", "the stakeholder report of a week of a run: Markdown with PNG charts (progress, burn-up, "
                "gates, KPIs, cost) and a summary", _report)
    p.add_argument("--week", type=int, default=None, help="the week (default: the newest the run worked in)")
    p.add_argument("--out", default=None, help="folder to write into (default: reports/<run>/week_NN)")
    p.add_argument("--slack", action="store_true", help="post it too (connections.slack_api: the files; else a "
                   "link through the webhook)")
    command("queues", "the Airflow queues the roadmap's tasks use, comma-separated: what a Celery worker listens "
            "on (airflow celery worker --queues \"$(castmatch queues)\")", _queues, run=False)
    command("reviews", "requests waiting for a person (veto overrides, NO-GO reviews)", _reviews, run=False)

    p = sub.add_parser("answer", help="answer a request waiting for a person, as the UI form does")
    p.add_argument("request", help="DAG_ID/TASK_ID, a task id, or the id `castmatch reviews` shows")
    p.add_argument("--option", required=True, help="one of the request's options, e.g. Approve, Reject, 'Keep NO-GO'")
    p.add_argument("--reason", default="", help="why (recorded with the answer)")
    p.add_argument("--as", dest="user", default=os.environ.get("USER") or "cli", help="who answers (default: $USER)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a field of the request's form, e.g. days=3 or agent=backend-api-developer (repeatable)")
    p.add_argument("--run", default=None, help="the run id, when several runs wait in the same task")
    p.add_argument("--roadmap", default=None, help="roadmap folder (default: $CASTMATCH_ROADMAP_DIR or CastMatch)")
    p.set_defaults(func=_answer)

    p = sub.add_parser("db", help="the state store")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="bring the store ($CASTMATCH_DATABASE_URL) to the current schema")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_db)

    p = sub.add_parser("airflow-settings", help="local Airflow connections, pools, variables")
    ssub = p.add_subparsers(dest="settings_command", required=True)
    ld = ssub.add_parser("load", help="load airflow_settings.yaml (and the roadmap's agent pool) into Airflow")
    ld.add_argument("file", nargs="?", default="airflow_settings.yaml")
    ld.set_defaults(func=_settings)
    return parser


def _safe_url(url: str) -> str:
    """A database URL without its credentials."""
    try:
        import sqlalchemy as sa

        parsed = sa.engine.make_url(url)
        return sa.engine.URL.create(parsed.drivername, host=parsed.host, port=parsed.port,
                                    database=parsed.database).render_as_string()
    except Exception:
        return url.split("@")[-1]


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _store_unreachable(exc: BaseException) -> str | None:
    """One line for a store that cannot be reached, or None if ``exc`` is not that."""
    import sqlalchemy as sa

    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return None
    from castmatch.store import database_url

    return (f"cannot reach the CastMatch store at {_safe_url(database_url())}: {_reason(exc)}. Start the database, "
            "or point CASTMATCH_DATABASE_URL at one that runs")


def _airflow_db(call):
    """Run ``call`` against Airflow's metadata database; unreachable, it is one line of advice.
    Whatever Airflow prints while it loads goes to stderr: stdout stays the command's own (JSON)."""
    import contextlib

    import sqlalchemy as sa

    try:
        with contextlib.redirect_stdout(sys.stderr):
            return call()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        home = os.environ.get("AIRFLOW_HOME", "~/airflow")
        raise CliError(f"cannot reach Airflow's metadata database (AIRFLOW_HOME={home}): {_reason(exc)}. Run this "
                       "with the AIRFLOW_HOME of the running Airflow (make run prints it)") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"castmatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("CASTMATCH_DEBUG"):
            raise
        line = _store_unreachable(exc)
        if line is None:
            from castmatch.config.errors import ConfigError

            text = str(exc).strip().splitlines()
            line = str(exc) if isinstance(exc, ConfigError) else \
                f"{type(exc).__name__}: {text[0] if text else ''} (CASTMATCH_DEBUG=1 shows the traceback)"
        print(f"castmatch {args.command}: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
