"""The operating rhythm on the compressed clock: week 1 runs, then each checkpoint DAG is triggered
for the run (as the roadmap driver does after each week) and takes every due moment once; Claude (the
fake Messages API) writes the summaries, one Message Batch per checkpoint DAG run."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pytest

from castmatch.config import load_roadmap
from castmatch.runs import run_clock
from castmatch.store import Store
from tests.helpers import castmatch_json, dags_test, sample_history

DAY_SECONDS = 3  # long enough that week 1's work spreads over its compressed days


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


@pytest.mark.e2e
class TestCheckpoints:
    def test_week_one_takes_each_checkpoint_once_per_day_with_the_stores_figures(
            self, pg_url, airflow_db, roadmap_copy, tmp_path, fake_claude):
        roadmap = roadmap_copy / "roadmap.yaml"
        roadmap.write_text(roadmap.read_text().replace("compressed_day_seconds: 1",
                                                       f"compressed_day_seconds: {DAY_SECONDS}"))
        llm = roadmap_copy / "llm.yaml"
        llm.write_text(llm.read_text().replace("batch_poll_seconds: 60", "batch_poll_seconds: 0.5"))
        env = {**os.environ, "CASTMATCH_LLM": "offline", "CASTMATCH_DATABASE_URL": pg_url,
               "CASTMATCH_ROADMAP_DIR": str(roadmap_copy), "CASTMATCH_REPORTS_DIR": str(tmp_path / "reports")}
        store = Store(pg_url)
        sample_history(store, ["redis", "postgres"], hours=24.5)
        # Day 1 begins when the week's run starts (`dags test` starts it at its logical date: now)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        week_run = dags_test("castmatch_week_01", now, env, conf={"clock": "compressed"})
        assert week_run.returncode == 0, week_run.stdout[-3000:]
        [run] = store.runs("castmatch")
        config = load_roadmap(roadmap_copy)
        clock = run_clock(config, store, run["run_key"], "compressed")
        end_of_week = _utc(clock.day_start(8))
        time.sleep(max(0.0, (end_of_week - dt.datetime.now(dt.UTC)).total_seconds()))

        checkpoints = [c.id for c in config.operations.checkpoints]
        live = {**env, "CASTMATCH_LLM": "live", "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
            {"conn_type": "anthropic", "password": fake_claude.api_key, "host": fake_claude.url})}
        for checkpoint in checkpoints:
            out = dags_test(f"castmatch_checkpoint_{checkpoint}", "2026-03-02T00:00:00+00:00", live,
                            conf={"run_key": run["run_key"]})
            assert out.returncode == 0, out.stdout[-3000:]
        out = dags_test("castmatch_checkpoint_daily_midday", "2026-03-03T00:00:00+00:00", live,
                        conf={"run_key": run["run_key"]})  # again: nothing new is due, nothing duplicated
        assert out.returncode == 0, out.stdout[-3000:]
        # the summaries: one batch per checkpoint DAG run that took something (the rerun took nothing)
        batches = [r.body["requests"] for r in fake_claude.requests if r.path == "/v1/messages/batches"]
        assert sorted(len(b) for b in batches) == sorted([7, 7, 7, 1, 1, 1])
        summary_calls = [c for c in store.llm_calls() if c["purpose"] == "checkpoint"]
        assert len(summary_calls) == 24 and all(c["batch"] and c["backend"] == "batch" for c in summary_calls)

        listed = castmatch_json("checkpoints", "--run", run["run_key"], database_url=pg_url)
        days = {c: [r["day"] for r in listed if r["checkpoint"] == c] for c in checkpoints}
        # daily ones once per roadmap day; Friday's and Monday's once in the week (Day 1 is Friday 5 Sep 2025)
        assert days == {"daily_morning": list(range(1, 8)), "daily_midday": list(range(1, 8)),
                        "daily_evening": list(range(1, 8)), "weekly_completion_review": [1],
                        "weekly_initialization": [4], "stakeholder_updates": [1]}

        week = config.weeks[1]
        delivered_at = {d["work_unit_id"]: _utc(d["updated_at"]) for d in store.deliverables(run_key=run["run_key"])
                        if d["status"] == "done"}
        assert len(delivered_at) == len(week.work_units)
        spread = {r["day"]: sum(1 for t in delivered_at.values() if t <= dt.datetime.fromisoformat(r["moment"]))
                  for r in listed if r["checkpoint"] == "daily_evening"}
        # the work really spread over the days (how much is done by Day 7 depends on the machine's speed
        # against the compressed clock: each checkpoint's figures are checked against the store's below)
        assert spread[1] < spread[7], spread
        for record in listed:
            moment = dt.datetime.fromisoformat(record["moment"])
            by_then = {u for u, t in delivered_at.items() if t <= moment}
            figures = record["figures"]
            if record["checkpoint"] == "daily_midday":
                planned = [u for u in week.work_units if u.last_day <= record["day"]]
                assert figures["progress"]["planned"] == len(planned)
                assert figures["progress"]["delivered"] == len(by_then)
                assert sum(len(a["behind"]) for a in figures["progress"]["agents"].values()) == len(
                    [u for u in planned if u.id not in by_then])
            if record["checkpoint"] == "daily_evening":
                start = _utc(clock.day_start(record["day"]))
                assert sorted(d["unit"] for d in figures["deliverable_review"]["delivered_today"]) == sorted(
                    u for u, t in delivered_at.items() if start <= t <= moment)
                tomorrow = [u.id for u in config.work_units.values() if u.first_day <= record["day"] + 1 <= u.last_day
                            and u.id not in by_then]
                assert sorted(u["unit"] for u in figures["next_day_plan"]["units"]) == sorted(tomorrow)
                weights = [config.priority_weight(config.work_units[u["unit"]]) for u in figures["next_day_plan"]["units"]]
                assert weights == sorted(weights, reverse=True)  # IMMEDIATE > HIGH > MEDIUM > LOW
            if record["checkpoint"] == "daily_morning":
                assert figures["status_sync"]["delivered"] == len(by_then)
                assert sum(a["assigned"] for a in figures["status_sync"]["agents"].values()) == len(week.work_units)
            if record["checkpoint"] == "weekly_completion_review":
                review = figures["week_review"]
                assert (review["week"], review["total"], review["done"]) == (1, len(week.work_units), len(by_then))
                assert review["decision"] == ("close" if len(by_then) == len(week.work_units) else "carry_over")
                assert sorted(review["carried_over"]) == sorted(u.id for u in week.work_units if u.id not in by_then)
            if record["checkpoint"] == "weekly_initialization":
                start = figures["week_start"]
                assert start["week"] == 1
                assert sorted(u["unit"] for u in start["units"]) == sorted(
                    u.id for u in week.work_units if u.id not in by_then)
                for unit in start["units"]:
                    assert unit["ready"] == all(d in by_then for d in config.work_units[unit["unit"]].depends_on)
            assert record["written_by"].startswith("Claude (") and record["written_by"].endswith("Message Batch)")
            assert record["summary"].startswith("Fake answer")  # Claude's words; the figures stay the store's
        [report] = store.reports(run["run_key"])  # the stakeholder-updates checkpoint wrote week 1's report
        assert report["week"] == 1 and (tmp_path / "reports").rglob("report.md")
