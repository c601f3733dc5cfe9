"""NO-GO extends the timeline, under the real scheduler: a roadmap run on the compressed clock
(the second team's, 1 s a day) hits a NO-GO at its week-1 check (coverage 62 %), a person keeps
the NO-GO in the UI's form, the roadmap extends the timeline by 7 days, the coverage recovers
during the extension, the point is decided again (GO) and the remaining weeks start 7 days later."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from castmatch.runs import run_key_for
from castmatch.store import Store
from tests.airflow_stack import AirflowStack

STARTS_AIRFLOW = True  # tests/conftest.py: one whole Airflow at a time under pytest -n 2

SECOND = Path(__file__).resolve().parents[1] / "roadmaps" / "second"
COBERTURA = '<?xml version="1.0" ?><coverage line-rate="{rate}" branch-rate="0" version="7"><packages/></coverage>'


@pytest.mark.e2e
class TestNoGoExtension:
    def test_no_go_extends_the_timeline_and_the_roadmap_goes_on_after_the_kpi_recovers(self, pg_url, redis_prefix,
                                                                                       tmp_path):
        (tmp_path / "reports").mkdir()
        coverage = tmp_path / "reports" / "coverage.xml"
        coverage.write_text(COBERTURA.format(rate="0.62"))
        env = {"CASTMATCH_ROADMAP_DIR": str(SECOND), "CASTMATCH_DATABASE_URL": pg_url,
               "CASTMATCH_REPORTS_DIR": str(tmp_path), "CASTMATCH_CLOCK": "compressed"}  # as make run parses
        store = Store(pg_url)
        kept, fixed, seen = [], [], {}
        with AirflowStack(env) as airflow:
            airflow.unpause("second_roadmap", "second_week_01", "second_week_02", "second_week_03")
            run_id = airflow.trigger("second_roadmap", {"clock": "compressed"})
            run_key = run_key_for("second", roadmap_run_id=run_id)

            def a_person_and_a_fix():
                for request in airflow.pending_hitl("second_week_01"):  # the NO-GO review, in the UI's form
                    task_id = request["task_instance"]["task_id"]
                    # a person takes seconds to read it (an instant answer can beat Airflow to its own
                    # bookkeeping of the parked task: LocalExecutor reports it after the resume)
                    if time.monotonic() - seen.setdefault(task_id, time.monotonic()) < 3:
                        continue
                    airflow.answer_hitl(request, "Keep NO-GO", "coverage must be fixed first")
                    kept.append(task_id)
                if not fixed and store.extensions(run_key):  # the team fixes coverage during the extension
                    coverage.write_text(COBERTURA.format(rate="0.93"))
                    fixed.append(dt.datetime.now(dt.UTC))

            state = airflow.wait_run("second_roadmap", run_id, 540, while_waiting=a_person_and_a_fix)
            assert state == "success", [(t["task_id"], t["state"]) for t in airflow.task_instances("second_roadmap", run_id)]
            # Airflow's own state says week 1 failed (its decision was NO-GO), and the roadmap went on
            assert airflow.run_state("second_week_01", f"roadmap__{run_id}__week_01") == "failed"
            assert airflow.run_state("second_week_03", f"roadmap__{run_id}__week_03") == "success"

        assert kept == ["review_no_go_week1_check"] and fixed
        [extension] = store.extensions(run_key)
        assert (extension["number"], extension["days"], extension["outcome"]) == (1, 7.0, "GO")
        assert extension["evaluated_at"] >= extension["ends_at"] - dt.timedelta(seconds=1)
        [decision] = store.decisions(run_key)
        assert decision["decision"] == "GO" and decision["decided_by"] == "second-orchestrator"
        # the remaining weeks start 7 (compressed) days later than planned
        origin = store.run(run_key)["origin"]
        starts = {e["data"]["week"]: e["data"] for e in store.events("week_started", run_key=run_key)}
        for week, planned_day in ((1, 0), (2, 7 + 7), (3, 14 + 7)):
            planned = dt.datetime.fromisoformat(starts[week]["planned_start"])
            assert planned == origin + dt.timedelta(seconds=planned_day), week
            assert dt.datetime.fromisoformat(starts[week]["started"]) >= planned
        assert starts[2]["extension_days"] == starts[3]["extension_days"] == 7
        assert {r["week"]: r["state"] for r in store.week_outcomes(run_key).values()} == {
            1: "failed", 2: "success", 3: "success"}
