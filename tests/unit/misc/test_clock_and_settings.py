"""The roadmap clock, and airflow_settings.yaml turned into Airflow's import files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml

from castmatch.airflow_settings import roadmap_pools, to_import_files
from castmatch.clock import RoadmapClock
from castmatch.config import load_roadmap

ROOT = Path(__file__).resolve().parents[3]


class TestRoadmapClock:
    def test_real_clock_places_weeks_on_kolkata_dates(self):
        clock = RoadmapClock.from_roadmap(load_roadmap().roadmap, mode="real")
        start = clock.week_start(2)
        assert start.isoformat() == "2025-09-12T00:00:00+05:30"
        assert clock.day_start(14).isoformat() == "2025-09-18T00:00:00+05:30"
        assert clock.week_of(14) == 2 and clock.week_of(15) == 3

    def test_compressed_clock_counts_days_in_seconds_from_the_origin(self):
        origin = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        clock = RoadmapClock.from_roadmap(load_roadmap().roadmap, mode="compressed", origin=origin)
        assert clock.week_start(1) == origin
        assert (clock.week_start(12) - origin).total_seconds() == 77 * clock.day_seconds

    def test_env_overrides_the_configured_mode(self, monkeypatch):
        monkeypatch.setenv("CASTMATCH_CLOCK", "compressed")
        assert RoadmapClock.from_roadmap(load_roadmap().roadmap).mode == "compressed"


    def test_moments_are_plain_utc_and_fall_on_their_roadmap_day(self):
        import pendulum

        from castmatch.clock import as_utc

        clock = RoadmapClock.from_roadmap(load_roadmap().roadmap, mode="real")  # Asia/Kolkata days
        kolkata = clock.day_start(3)
        assert as_utc(kolkata) == dt.datetime(2025, 9, 6, 18, 30, tzinfo=dt.UTC) and type(as_utc(kolkata)) is dt.datetime
        assert as_utc(dt.datetime(2025, 9, 6, 18, 30)) == as_utc(kolkata)  # naive, as SQLite hands it back: UTC
        assert as_utc(None) is None
        assert clock.day_of(kolkata, 84) == 3 and clock.day_of(kolkata - dt.timedelta(seconds=1), 84) == 2
        assert clock.day_of(dt.datetime(2025, 9, 6, 18, 29), 84) == 2  # naive UTC, a minute before day 3
        assert clock.day_of(pendulum.datetime(2030, 1, 1), 84) == 84 and clock.day_of(clock.day_start(1), 84) == 1


class TestHumanReviewWindow:
    def test_roadmap_days_on_either_clock_never_under_the_minimum(self):
        from castmatch.config.models import HumanReview

        roadmap = load_roadmap().roadmap
        real = RoadmapClock.from_roadmap(roadmap, mode="real")
        compressed = RoadmapClock.from_roadmap(roadmap, mode="compressed")  # 1 s a day in the shipped config
        review = HumanReview(response_days=2, minimum_minutes=5)
        assert review.window(real) == dt.timedelta(days=2)
        assert review.window(compressed) == dt.timedelta(minutes=5)  # a person can still answer
        assert HumanReview(response_days=0.5, minimum_minutes=0).window(compressed) == dt.timedelta(seconds=0.5)


class TestAirflowSettings:
    def test_connections_pools_and_variables_become_import_files(self, tmp_path):
        settings = yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())
        files = to_import_files(settings, tmp_path, roadmap_pools())
        connections = json.loads(files["connections"].read_text())
        assert connections["castmatch_redis"] == {"conn_type": "redis", "host": "127.0.0.1", "port": 6379,
                                                  "extra": json.dumps({"db": 0})}
        assert all("password" not in c for c in connections.values())  # no secrets in the shipped settings
        # the agent pool's size comes from the roadmap's llm.yaml, not from the settings file
        pools = json.loads(files["pools"].read_text())
        assert pools["castmatch_agents"]["slots"] == load_roadmap().llm.agent_pool_slots
        for agent in load_roadmap().agents.values():  # one pool per agent, its capacity (team.yaml)
            assert pools[f"castmatch_agent_{agent.id}"]["slots"] == agent.capacity
        assert json.loads(files["variables"].read_text()) == {"castmatch_team_timezone": "Asia/Kolkata"}


def test_the_dag_processor_preloads_parsing_and_the_scheduler_the_llm_stack():
    from castmatch.preload import is_parse_parent, is_task_parent, preload_dag_parsing

    assert is_parse_parent(["/venv/bin/airflow", "dag-processor"]) and not is_task_parent(["/venv/bin/airflow", "dag-processor"])
    assert is_task_parent(["/venv/bin/airflow", "scheduler"]) and not is_parse_parent(["/venv/bin/airflow", "scheduler"])
    assert not is_parse_parent(["/venv/bin/airflow", "api-server"])
    import sys

    preload_dag_parsing()
    assert "castmatch.factory" in sys.modules


def test_the_scheduler_warms_the_sdk_answer_path_without_a_socket(monkeypatch):
    import socket

    from castmatch.preload import warm_messages_api

    def no_network(*args, **kwargs):
        raise AssertionError("the warm-up opened a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert warm_messages_api() == {"a": 1}  # the streamed tool call, assembled by the SDK


def test_after_the_warm_up_a_streamed_answer_builds_no_model_class(monkeypatch):
    """What a forked task inherits stays built: a garbage collection between the scheduler's
    warm-up and the fork must not drop a model class the SDK's stream needs again."""
    import gc

    from pydantic._internal import _generics

    from castmatch.preload import warm_messages_api

    warm_messages_api()
    gc.collect()
    built = []
    create = _generics.create_generic_submodel
    monkeypatch.setattr(_generics, "create_generic_submodel", lambda *a, **k: built.append(a[0]) or create(*a, **k))
    assert warm_messages_api() == {"a": 1}
    assert built == []


def test_step_timings_round_trip_through_a_log_line():
    from castmatch.timing import mark, parse_line, track

    mark("nothing")  # no task is being timed: a no-op
    steps = track()
    mark("config")
    mark("llm_call")
    steps.mark("config")  # a step booked twice adds up
    line = steps.line()
    found = parse_line(f"[info] {line} [airflow.task.operators]")
    assert set(found) == {"config", "llm_call", "total", "cpu", "process_cpu"}
    assert found["total"] >= found["config"] + found["llm_call"] - 0.2
    assert parse_line("an ordinary log line") is None
