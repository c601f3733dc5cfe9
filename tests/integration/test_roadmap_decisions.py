"""The roadmap driver's judgement after a week (``castmatch.weeks.roadmap_step``): GO proceeds; a
NO-GO extends the timeline, waits for the end of the extension, decides again with the KPIs of
then, and stops after ``max_extensions``. Real PostgreSQL, the real gate and decision code, a
coverage report as the KPI source; ``now`` moves the clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from castmatch.config import load_roadmap
from castmatch.decisions import decide
from castmatch.gates import judge_gate
from castmatch.runs import run_clock, run_key_for
from castmatch.store import Store
from castmatch.weeks import roadmap_step, week_outcome

SECOND = Path(__file__).resolve().parents[1] / "roadmaps" / "second"
COBERTURA = '<?xml version="1.0" ?><coverage line-rate="{rate}" branch-rate="0" version="7"><packages/></coverage>'
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def world(pg_url, tmp_path, monkeypatch):
    """The second roadmap's run on the compressed clock (1 s a day), after its week 1, with a
    coverage report the test can change."""
    monkeypatch.setenv("CASTMATCH_REPORTS_DIR", str(tmp_path))
    (tmp_path / "reports").mkdir()
    config, store = load_roadmap(SECOND), Store(pg_url)
    run_key = run_key_for("second", roadmap_run_id="manual__2026-03-02")
    store.register_run(run_key=run_key, roadmap_id="second", kind="roadmap", dag_id="second_roadmap",
                       run_id="manual__2026-03-02", clock="compressed", origin=T0)

    class World:
        def coverage(self, rate: float) -> None:
            (tmp_path / "reports" / "coverage.xml").write_text(COBERTURA.format(rate=rate))

        def end_week_one(self, rate: float) -> dict:
            """Week 1 as its DAG ends it: the gate judged, the decision made, the outcome stored."""
            self.coverage(rate)
            gate = config.all_gates[0]
            judge_gate(config, gate, store, run_key=run_key, dag_id="second_week_01", run_id="r", clock=self.clock(),
                       deadline_passed=True)
            decision = decide(config, config.gates.decision_points[0], store, run_key=run_key)
            store.save_week_outcome(run_key=run_key, week=1, dag_id="second_week_01", run_id="r",
                                    **week_outcome(config, store, run_key, 1))
            return decision

        def clock(self):
            return run_clock(config, store, run_key, "compressed")

        def step(self, seconds: float, week: int = 1):
            return roadmap_step(config, store, run_key=run_key, week=week, clock=self.clock(),
                                now=T0 + dt.timedelta(seconds=seconds))

    world = World()
    world.config, world.store, world.run_key = config, store, run_key
    return world


class TestRoadmapStep:
    def test_go_proceeds(self, world):
        assert world.end_week_one(0.95)["decision"] == "GO"
        step = world.step(10)
        assert step.action == "proceed" and step.message == "week 1: week1_check: GO"
        assert world.store.extensions(world.run_key) == []

    def test_no_go_extends_the_timeline_and_goes_on_when_the_kpi_recovers(self, world):
        decision = world.end_week_one(0.62)
        assert decision["decision"] == "NO_GO" and "test_coverage (62" in decision["reason"]
        first = world.step(10)
        assert first.action == "wait" and "extended by 7 day(s)" in first.message
        [extension] = world.store.extensions(world.run_key)
        assert (extension["number"], extension["days"], extension["outcome"]) == (1, 7.0, "pending")
        assert extension["ends_at"] == T0 + dt.timedelta(seconds=17)  # 7 compressed days after the NO-GO
        # the remaining weeks start later by the extension
        assert world.clock().week_start(2) == T0 + dt.timedelta(seconds=7 + 7)
        assert world.step(15).action == "wait"  # the extension is still running
        world.coverage(0.93)  # fixed during the extension
        after = world.step(18)
        assert after.action == "proceed" and "after extension 1" in after.message
        [extension] = world.store.extensions(world.run_key)
        assert extension["outcome"] == "GO"
        [row] = world.store.decisions(world.run_key)
        assert row["decision"] == "GO" and row["decided_by"] == "second-orchestrator"
        assert [e["kind"] for e in world.store.events(run_key=world.run_key)
                if e["kind"].startswith(("timeline", "decision_re"))] == ["timeline_extended", "decision_reevaluated_go"]

    def test_stops_after_the_configured_extensions_saying_why(self, world):
        world.end_week_one(0.62)
        assert world.step(1).action == "wait"
        assert world.step(9).action == "wait"  # decided again: still NO-GO, second extension
        stop = world.step(17)
        assert stop.action == "stop"
        assert "after 2 extension(s) (at most 2)" in stop.message and "test_coverage (62" in stop.message
        assert [x["outcome"] for x in world.store.extensions(world.run_key)] == ["NO_GO", "NO_GO"]
        assert world.clock().shift_days == 14

    def test_a_person_overturning_the_no_go_ends_the_extension(self, world):
        world.end_week_one(0.62)
        assert world.step(1).action == "wait"
        world.store.save_decision(run_key=world.run_key, decision_point="week1_check", week=1, decision="GO",
                                  decided_by="asha", reason="overturned by asha", gates={}, kpis_ok=False)
        assert world.step(2).action == "proceed"
        [extension] = world.store.extensions(world.run_key)
        assert extension["outcome"] == "GO" and "asha" in extension["reason"]

    def test_a_week_without_decision_must_succeed(self, world):
        world.end_week_one(0.95)
        world.store.save_week_outcome(run_key=world.run_key, week=2, dag_id="second_week_02", run_id="r2",
                                      **week_outcome(world.config, world.store, world.run_key, 2))
        stop = world.step(30, week=2)
        assert stop.action == "stop" and "pipeline_live: not run" in stop.message

    def test_a_week_that_never_finished_stops_the_roadmap(self, world):
        stop = world.step(5, week=1)
        assert stop.action == "stop" and "without an outcome" in stop.message
