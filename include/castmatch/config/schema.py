"""The roadmap files' schema, generated from the pydantic models so it cannot drift from them:
a JSON Schema per file (``castmatch schema``, for editors' YAML language server) and the
field-by-field reference ``docs/roadmap-schema.md`` (``castmatch schema --docs``)."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from castmatch.config import models as m

# kind -> (file in the roadmap folder, model, what the file is for)
FILES: dict[str, tuple[str, type[BaseModel], str]] = {
    "roadmap": ("roadmap.yaml", m.Roadmap, "The roadmap: name, clock, phases, priorities, connections and limits."),
    "team": ("team.yaml", m.Team, "The agents, their tracks and models."),
    "week": ("weeks/week_NN.yaml", m.Week, "One file per week: its work units."),
    "gates": ("gates.yaml", m.GatesFile, "Quality and success gates, probes and go/no-go decision points."),
    "kpis": ("kpis.yaml", m.KpisFile, "KPIs with their thresholds and where their values come from."),
    "operations": ("operations.yaml", m.Operations, "Dependency chains, standup, checkpoints, escalation."),
    "llm": ("llm.yaml", m.LlmSettings, "Optional: Claude connection, retries, rate limits, prices and budgets."),
}
SCHEMA_DIR = ".schema"


def json_schema(kind: str) -> dict:
    """The JSON Schema (draft 2020-12) of one roadmap file kind."""
    file, model, purpose = FILES[kind]
    schema = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"castmatch-{kind}.schema.json",
            "title": f"{file}", "description": purpose, **{k: v for k, v in schema.items() if k != "title"}}


def all_schemas() -> dict:
    """Every file kind's schema in one document, keyed by kind."""
    return {kind: json_schema(kind) for kind in FILES}


def schema_file_for(relative: str) -> str | None:
    """The schema kind of a file of a roadmap folder (``weeks/week_03.yaml`` -> ``week``)."""
    if relative.startswith("weeks/"):
        return "week"
    return next((kind for kind, (file, _, _) in FILES.items() if file == relative), None)


def write_schemas(directory: Path) -> list[Path]:
    """Write ``<directory>/.schema/<kind>.schema.json`` for every kind; the files of a roadmap made
    by ``castmatch init`` point at them (``# yaml-language-server: $schema=...``)."""
    target = directory / SCHEMA_DIR
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in FILES:
        path = target / f"{kind}.schema.json"
        path.write_text(json.dumps(json_schema(kind), indent=2) + "\n")
        written.append(path)
    return written


# ---------------------------------------------------------------------------- markdown reference


def _type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map {_type_name(args[0])} → {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _nested(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _nested(arg)]


def _default(field) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "see below"
        if isinstance(value, BaseModel):
            return "all defaults"
        value = [v.id if isinstance(v, BaseModel) and hasattr(v, "id") else v for v in value] if isinstance(value, list) else value
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "all defaults"
    if value is None or value is PydanticUndefined:
        return "none"
    if value == "" or value == [] or value == {}:
        return "empty"
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def _constraints(field) -> str:
    parts = []
    for meta in field.metadata:
        for name, label in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "min length"),
                            ("pattern", "pattern")):
            value = getattr(meta, name, None)
            if value is not None:
                parts.append(f"{label} `{value}`")
    return f" ({', '.join(parts)})" if parts else ""


def _model_section(model: type[BaseModel]) -> str:
    doc = " ".join((model.__doc__ or "").split()) if model.__doc__ and model.__module__ == m.__name__ else ""
    rows = []
    for name, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {_type_name(field.annotation)}{_constraints(field)} | {_default(field)} | {description} |")
    head = f"### {model.__name__}\n\n" + (f"{doc}\n\n" if doc and not doc.startswith("Base for") else "")
    return head + "| field | type | default | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def markdown() -> str:
    """docs/roadmap-schema.md: every file and every field, from the models."""
    out = [
        "# Roadmap schema\n",
        "<!-- Generated from include/castmatch/config/models.py by `castmatch schema --docs`; do not edit by hand "
        "(a test keeps this file equal to the models). -->\n",
        "A roadmap is a folder of YAML files. Only ids, names, roles, week plans, owners and dependencies are "
        "required; everything descriptive has a default. Unknown fields are errors, so a typo never passes "
        "silently. `castmatch validate DIR` checks a folder (every error with file:line and field); "
        "`castmatch schema` prints the JSON Schema editors use to complete and check fields as you type; "
        "`castmatch init DIR` writes a starter roadmap.\n",
        "Ids of agents, phases, tracks, gates, KPIs and work units are lowercase (`a-z`, digits, `_`; agents and "
        "phases may use `-`). Lists of agents in gates (`enforcers`, `reviewers`) accept `@enforcers`: every "
        "agent with `enforcer: true`.\n",
        "## Files\n",
        "| file | top-level model | what it holds |\n|---|---|---|",
    ]
    out += [f"| `{file}` | [{model.__name__}](#{model.__name__.lower()}) | {purpose} |" for file, model, purpose in FILES.values()]
    out.append("")
    seen: set[type[BaseModel]] = set()
    for _kind, (file, model, _purpose) in FILES.items():
        out.append(f"## `{file}`\n")
        queue = [model]
        while queue:
            current = queue.pop(0)
            if current in seen:
                continue
            seen.add(current)
            out.append(_model_section(current))
            for field in current.model_fields.values():
                queue += [n for n in _nested(field.annotation) if n not in seen]
    return "\n".join(out).rstrip() + "\n"
