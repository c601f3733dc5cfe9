"""The daily standup: through the Message Batches API (deferred) on a Claude backend, direct offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from castmatch.store import Store

BIN = Path(sys.executable).parent


def run_standup(env: dict, logical_date: str) -> subprocess.CompletedProcess:
    out = subprocess.run([str(BIN / "airflow"), "dags", "test", "castmatch_daily_standup", logical_date],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0 and "state=success" in out.stdout + out.stderr, (out.stdout + out.stderr)[-4000:]
    return out


@pytest.mark.e2e
class TestDailyStandup:
    def test_batch_standup_is_half_price_and_stored_per_agent(self, pg_url, airflow_db, fake_claude, roadmap_copy):
        llm = roadmap_copy / "llm.yaml"
        llm.write_text(llm.read_text().replace("batch_poll_seconds: 60", "batch_poll_seconds: 0.5"))
        env = {**os.environ, "CASTMATCH_LLM": "live", "CASTMATCH_ROADMAP_DIR": str(roadmap_copy),
               "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                   {"conn_type": "anthropic", "password": fake_claude.api_key, "host": fake_claude.url})}
        run_standup(env, "2026-03-02T03:30:00+00:00")
        paths = [r.path for r in fake_claude.requests]
        assert paths[0] == "/v1/messages/batches" and paths[-1].endswith("/results")
        assert not any(p == "/v1/messages" for p in paths)  # nothing went through the full-price API
        assert len(fake_claude.requests[0].body["requests"]) == 11

        store = Store(pg_url)
        reports = store.standups("2026-03-02")
        assert len(reports) == 11 and {r["backend"] for r in reports} == {"batch"}
        calls = store.llm_calls()
        assert len(calls) == 11 and all(c["batch"] for c in calls)
        from castmatch.config import load_roadmap
        from castmatch.llm.budget import cost_usd

        settings = load_roadmap().llm
        for call in calls:
            usage = {k: call[k] for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                          "cache_read_input_tokens")}
            assert call["cost_usd"] == pytest.approx(cost_usd(settings, call["model"], usage) / 2)

        run_standup(env, "2026-03-02T03:30:00+00:00")  # a rerun replaces the day's reports
        assert len(store.standups("2026-03-02")) == 11

    def test_offline_standup_reports_from_the_store(self, pg_url, airflow_db):
        run_standup({**os.environ, "CASTMATCH_LLM": "offline"}, "2026-03-03T03:30:00+00:00")
        reports = {r["agent_id"]: r["report"] for r in Store(pg_url).standups("2026-03-03")}
        assert len(reports) == 11
        assert reports["devops-infrastructure-developer"]["today_planned"][0] == "fix_redis_connection"
