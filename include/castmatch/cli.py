"""The ``castmatch`` command: validate a roadmap, show the status matrix, manage the store."""

from __future__ import annotations

import argparse
import json
import sys


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


def _store_report(args, needs: tuple[str, ...], build, render) -> int:
    """Load the roadmap (warning about problems), build a report from the store, print it."""
    from castmatch.config import load_roadmap
    from castmatch.store import Store

    config = load_roadmap(args.roadmap)
    for issue in config.issues:
        print(f"warning: {issue}", file=sys.stderr)
    if any(getattr(config, part) is None for part in needs):
        return 1
    report = build(config, Store())
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return 0


def _status(args) -> int:
    from castmatch.status import render_matrix, status_matrix

    return _store_report(args, ("team", "roadmap"), status_matrix, render_matrix)


def _chains(args) -> int:
    from castmatch.chains import chains_report, render_chains

    return _store_report(args, ("team", "operations"), chains_report, render_chains)


def _gates(args) -> int:
    from castmatch.gates import gates_report, render_gates

    return _store_report(args, ("team", "gates", "kpis"), gates_report, render_gates)


def _usage(args) -> int:
    from castmatch.store import Store
    from castmatch.usage import render_usage, usage_report

    report = usage_report(Store().llm_calls())
    print(json.dumps(report, indent=2) if args.json else render_usage(report))
    return 0


def _db(args) -> int:
    from castmatch.store import database_url, upgrade

    url = database_url()
    revision = upgrade(url, args.revision)
    safe = url.split("@")[-1] if "@" in url else url
    print(f"store at {safe} is at revision {revision}")
    return 0


def _settings(args) -> int:
    from castmatch.airflow_settings import load

    load(args.file)
    print(f"loaded {args.file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="castmatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a roadmap folder (default: the CastMatch one)")
    p.add_argument("directory", nargs="?", default=None)
    p.set_defaults(func=_validate)

    def report(name: str, help_text: str, func, roadmap: bool = True) -> None:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if roadmap:
            p.add_argument("--roadmap", default=None, help="roadmap folder (default: $CASTMATCH_ROADMAP_DIR or CastMatch)")
        p.set_defaults(func=func)

    report("status", "the agent status matrix and weeks done/total from the store", _status)
    report("chains", "the dependency chains with their status", _chains)
    report("gates", "gates with criteria results, KPI values and decision points", _gates)
    report("usage", "LLM calls, tokens, cache hit share and cost per agent, week and backend", _usage, roadmap=False)

    p = sub.add_parser("db", help="the state store")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="bring the store ($CASTMATCH_DATABASE_URL) to the current schema")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_db)

    p = sub.add_parser("airflow-settings", help="local Airflow connections, pools, variables")
    ssub = p.add_subparsers(dest="settings_command", required=True)
    ld = ssub.add_parser("load", help="load airflow_settings.yaml into the Airflow metadata database")
    ld.add_argument("file", nargs="?", default="airflow_settings.yaml")
    ld.set_defaults(func=_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
