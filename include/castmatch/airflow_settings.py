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


def roadmap_pools(roadmap_dir: str | Path | None = None) -> dict:
    """{name: {slots, description}} of the roadmap's pools: the shared one (work an incident runs
    again) and one per agent (its week units, ``capacity`` at once)."""
    from castmatch.config import load_roadmap

    config = load_roadmap(roadmap_dir)
    name, slots = config.agent_pool
    pools = {name: {"slots": slots, "description": "Work units an incident, a standup or workload balancing runs "
                                                   "again (llm.yaml agent_pool_slots)"}}
    for agent_id in config.agents:
        own, capacity = config.agent_pool_of(agent_id)
        pools[own] = {"slots": capacity, "description": f"{agent_id}: units at once (team.yaml capacity)"}
    return pools


def load(path: str | Path, airflow_bin: str = "airflow", roadmap_dir: str | Path | None = None) -> None:
    settings = yaml.safe_load(Path(path).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for kind, file in to_import_files(settings, Path(tmp), roadmap_pools(roadmap_dir)).items():
            extra = ["--overwrite"] if kind == "connections" else []
            subprocess.run([airflow_bin, kind, "import", *extra, str(file)], check=True)
