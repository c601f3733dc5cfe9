"""Load ``airflow_settings.yaml`` (astro-cli format) into Airflow: connections, pools, variables,
and the roadmap's agent pool (its name and size from ``llm.yaml``, so the config decides how many
agents call Claude at once).

Uses Airflow's own import commands, so existing entries are overwritten, not duplicated.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import yaml


def to_import_files(settings: dict, folder: Path, extra_pools: dict | None = None) -> dict[str, Path]:
    """Write the JSON files that ``airflow connections|pools|variables import`` read
    (``extra_pools``: {name: {slots, description}}, e.g. the roadmap's agent pool)."""
    section = (settings or {}).get("airflow", {}) or {}
    out: dict[str, Path] = {}
    connections = {}
    for c in section.get("connections", []) or []:
        conn = {"conn_type": c["conn_type"]}
        for key in ("host", "port", "login", "password", "schema", "description"):
            if c.get(f"conn_{key}") is not None:
                conn[key] = c[f"conn_{key}"]
        if c.get("conn_extra"):
            conn["extra"] = json.dumps(c["conn_extra"])
        connections[c["conn_id"]] = conn
    pools = {p["pool_name"]: {"slots": p["pool_slot"], "description": p.get("pool_description", "")}
             for p in section.get("pools", []) or []}
    pools.update(extra_pools or {})
    variables = {v["variable_name"]: v["variable_value"] for v in section.get("variables", []) or []}
    for name, data in (("connections", connections), ("pools", pools), ("variables", variables)):
        if data:
            path = folder / f"{name}.json"
            path.write_text(json.dumps(data, indent=2))
            out[name] = path
    return out


def agent_pool(roadmap_dir: str | Path | None = None) -> dict:
    """{name: {slots, description}} of the roadmap's agent pool."""
    from castmatch.config import load_roadmap

    name, slots = load_roadmap(roadmap_dir).agent_pool
    return {name: {"slots": slots, "description": "Agent work units calling Claude at once (llm.yaml agent_pool_slots)"}}


def load(path: str | Path, airflow_bin: str = "airflow", roadmap_dir: str | Path | None = None) -> None:
    settings = yaml.safe_load(Path(path).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for kind, file in to_import_files(settings, Path(tmp), agent_pool(roadmap_dir)).items():
            extra = ["--overwrite"] if kind == "connections" else []
            subprocess.run([airflow_bin, kind, "import", *extra, str(file)], check=True)
