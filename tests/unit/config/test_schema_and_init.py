"""`castmatch schema` (JSON Schema for editors), docs/roadmap-schema.md generated from the models,
and `castmatch init` writing a starter roadmap that validates and builds its DAGs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from castmatch.config import load_roadmap
from castmatch.config.schema import FILES, markdown, schema_file_for

ROOT = Path(__file__).resolve().parents[3]
CASTMATCH_BIN = Path(sys.executable).parent / "castmatch"
SHIPPED = [ROOT / "include" / "roadmaps" / "castmatch", ROOT / "include" / "roadmaps" / "example",
           ROOT / "tests" / "roadmaps" / "second"]


def castmatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CASTMATCH_BIN), *args], capture_output=True, text=True, timeout=120)


def roadmap_files(directory: Path):
    for path in sorted(directory.rglob("*.yaml")):
        kind = schema_file_for(str(path.relative_to(directory)))
        if kind:
            yield path, kind


@pytest.fixture(scope="module")
def schemas() -> dict:
    out = castmatch("schema")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


class TestJsonSchema:
    def test_every_file_kind_has_a_valid_json_schema(self, schemas):
        assert set(schemas) == set(FILES)
        for schema in schemas.values():
            jsonschema.Draft202012Validator.check_schema(schema)

    @pytest.mark.parametrize("directory", SHIPPED, ids=lambda p: p.name)
    def test_the_shipped_roadmaps_conform(self, schemas, directory):
        checked = 0
        for path, kind in roadmap_files(directory):
            errors = list(jsonschema.Draft202012Validator(schemas[kind]).iter_errors(yaml.safe_load(path.read_text())))
            assert errors == [], f"{path}: {[e.message for e in errors]}"
            checked += 1
        assert checked >= 6

    def test_a_wrong_type_or_an_unknown_field_is_rejected(self, schemas):
        week = yaml.safe_load((SHIPPED[1] / "weeks" / "week_01.yaml").read_text())
        validator = jsonschema.Draft202012Validator(schemas["week"])
        week["work_units"][0]["agents"] = "lead-developer"  # a string where a list belongs
        assert any("is not of type 'array'" in e.message for e in validator.iter_errors(week))
        team = yaml.safe_load((SHIPPED[1] / "team.yaml").read_text())
        team["agents"][0]["rol"] = team["agents"][0].pop("role")
        messages = [e.message for e in jsonschema.Draft202012Validator(schemas["team"]).iter_errors(team)]
        assert any("'role' is a required property" in m for m in messages), messages
        assert any("Additional properties are not allowed ('rol'" in m for m in messages), messages

    def test_one_kind_alone(self):
        out = castmatch("schema", "team")
        schema = json.loads(out.stdout)
        assert schema["title"] == "team.yaml" and "agents" in schema["properties"]


class TestDocs:
    def test_the_reference_is_generated_from_the_models(self):
        committed = (ROOT / "docs" / "roadmap-schema.md").read_text()
        assert committed == markdown(), "docs/roadmap-schema.md is stale: run `castmatch schema --docs > docs/roadmap-schema.md`"
        assert castmatch("schema", "--docs").stdout == committed
        for field in ("`enforcer`", "`veto`", "`days`", "`tracks`", "`priorities`", "`default_model`", "`connections`"):
            assert field in committed, field

    def test_the_example_points_editors_at_current_schemas(self, tmp_path):
        from castmatch.config.schema import write_schemas

        for path in write_schemas(tmp_path):
            assert path.read_text() == (SHIPPED[1] / ".schema" / path.name).read_text(), path.name


class TestInit:
    def test_the_starter_validates_and_builds_its_dags(self, tmp_path, monkeypatch):
        from airflow.dag_processing.dagbag import DagBag

        target = tmp_path / "acme"
        out = castmatch("init", str(target), "--name", "Acme Analytics", "--agents", "5", "--weeks", "6")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "agents=5 phases=2 weeks=6" in out.stdout and "castmatch validate" in out.stdout
        assert castmatch("validate", str(target)).returncode == 0
        config = load_roadmap(target)
        assert [p.weeks for p in config.roadmap.phases] == [[1, 2, 3], [4, 5, 6]]
        assert [a.id for a in config.agents.values() if a.enforcer and a.veto] == ["reviewer"]
        assert {a.model for a in config.agents.values()} == {config.team.default_model}
        assert "# yaml-language-server: $schema=../.schema/week.schema.json" in (target / "weeks" / "week_02.yaml").read_text()
        monkeypatch.setenv("CASTMATCH_ROADMAP_DIR", str(target))
        bag = DagBag(str(ROOT / "dags"))
        assert bag.import_errors == {}
        assert {f"acme_analytics_week_{w:02d}" for w in range(1, 7)} | {"acme_analytics_roadmap"} <= set(bag.dags)

    def test_it_never_overwrites_a_roadmap(self, tmp_path):
        assert castmatch("init", str(tmp_path / "one")).returncode == 0
        again = castmatch("init", str(tmp_path / "one"))
        assert again.returncode == 2 and "already holds a roadmap" in again.stderr and "Traceback" not in again.stderr
        bad = castmatch("init", str(tmp_path / "two"), "--agents", "1")
        assert bad.returncode == 2 and "--agents must be between 2 and 50" in bad.stderr


class TestPerRoadmapServices:
    def test_connections_and_track_queues_come_from_the_roadmap(self, tmp_path, monkeypatch):
        from airflow.dag_processing.dagbag import DagBag

        from castmatch.shared_redis import redis_conn_id, redis_url

        target = tmp_path / "acme"
        assert castmatch("init", str(target), "--name", "Acme").returncode == 0
        roadmap = target / "roadmap.yaml"
        roadmap.write_text(roadmap.read_text().replace("phases:", "connections: {redis: acme_redis, slack: acme_slack}\nphases:"))
        team = target / "team.yaml"
        team.write_text(team.read_text().replace("tracks: [build, quality]", "tracks: [{id: build, queue: acme_build}, quality]"))
        config = load_roadmap(target)
        assert config.issues == []
        monkeypatch.setenv("AIRFLOW_CONN_ACME_REDIS", "redis://127.0.0.1:6390?db=3")  # db in extra, as RedisHook reads it
        assert redis_conn_id(config) == "acme_redis" and redis_url(redis_conn_id(config)) == "redis://127.0.0.1:6390/3"
        monkeypatch.setenv("CASTMATCH_ROADMAP_DIR", str(target))
        bag = DagBag(str(ROOT / "dags"))
        week1 = bag.dags["acme_week_01"]
        assert [n.slack_webhook_conn_id for n in week1.get_task("override_foundation_gate").notifiers] == ["acme_slack"]
        assert week1.get_task("w01_lead_developer").queue == "acme_build"  # the build track's queue
        assert week1.get_task("w01_review").queue != "acme_build"  # the reviewer is on the quality track
