"""One roadmap run is one program: a second run of week 1 (as the roadmap driver starts it, with the
run in its conf) starts from the seed's baselines and never inherits the first run's results; a
run that delivers nothing is NO-GO and its DAG run fails. And a person answers what waits for them
from a second terminal with ``castmatch answer``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from castmatch.config import load_roadmap
from castmatch.store import Store
from tests.helpers import castmatch_json, dags_test, sample_history

BIN = Path(sys.executable).parent
FIRST, SECOND = "manual__2026-05-11T03:30:00+00:00", "manual__2026-05-18T03:30:00+00:00"


def week_one(run_id: str, env: dict, answers: dict | None = None) -> str:
    out = dags_test("castmatch_week_01", run_id.split("__", 1)[1], env, answers=answers,
                    conf={"roadmap_run_id": run_id, "clock": "real"})
    return out.stdout


@pytest.mark.e2e
class TestRunsDoNotInherit:
    def test_a_run_that_delivers_nothing_after_a_healthy_run_is_no_go_and_fails(self, pg_url, airflow_db, fake_claude,
                                                                                redis_prefix):
        sample_history(Store(pg_url), ["redis", "postgres"], hours=24.5)  # the probe DAG's last day
        healthy = week_one(FIRST, dict(os.environ))
        assert "state=success" in healthy, healthy[-3000:]
        first = castmatch_json("gates", "--run", FIRST, database_url=pg_url)
        assert next(d for d in first["decision_points"] if d["id"] == "day7_check")["decision"] == "GO"

        # the same program again, and this time Claude refuses every call (a revoked key)
        refused = {**os.environ, "CASTMATCH_LLM": "live", "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
            {"conn_type": "anthropic", "password": "sk-revoked", "host": fake_claude.url})}
        log = week_one(SECOND, refused, {"review_no_go_day7_check": ("Keep NO-GO", "nothing delivered", "lead")})
        assert "state=failed" in log and "week 1 is not complete" in log
        second = castmatch_json("gates", "--run", SECOND, database_url=pg_url)
        day7 = next(d for d in second["decision_points"] if d["id"] == "day7_check")
        assert day7["decision"] == "NO_GO"
        assert day7["gates_status"] == {"infrastructure_success": "PENDING", "ai_integration_success": "PENDING"}
        assert all(g["status"] == "PENDING" for g in second["gates"])  # nothing of the first run's PASSes

        # the second run starts at the seed's baselines; the first keeps its progress
        status = castmatch_json("status", database_url=pg_url)  # the newest run by default
        assert status["run_key"] == f"castmatch:roadmap:{SECOND}" and status["weeks"][0]["done"] == 0
        devops = {a["id"]: a for a in status["agents"]}["devops-infrastructure-developer"]
        assert devops["progress"] == 70 and devops["status"] == "BLOCKED"
        before = castmatch_json("status", "--run", FIRST, database_url=pg_url)
        assert before["weeks"][0]["done"] == len(load_roadmap().weeks[1].work_units)
        assert castmatch_json("usage", "--run", SECOND, database_url=pg_url)["total"]["by_backend"].keys() == {"live"}
        runs = castmatch_json("runs", database_url=pg_url)
        assert [r["run_key"] for r in runs] == [f"castmatch:roadmap:{SECOND}", f"castmatch:roadmap:{FIRST}"]
        assert [r["weeks"] for r in runs] == [{"1": "failed"}, {"1": "success"}]


def castmatch(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "castmatch"), *args], capture_output=True, text=True, env=env)


@pytest.mark.e2e
class TestAnswerFromATerminal:
    def test_a_veto_under_dags_test_is_answered_with_castmatch_answer(self, pg_url, airflow_db, tmp_path):
        env = {**os.environ, "AIRFLOW_CONN_CASTMATCH_REDIS": "redis://127.0.0.1:1/0"}  # Redis is down
        log_file = tmp_path / "dags_test.log"
        with open(log_file, "w") as out:
            run = subprocess.Popen([str(BIN / "airflow"), "dags", "test", "castmatch_week_01", "2026-05-25T03:30:00+00:00"],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
        answered, deadline = [], time.monotonic() + 300
        try:
            while run.poll() is None and time.monotonic() < deadline:
                listed = castmatch("reviews", "--json", env=env)
                assert listed.returncode == 0, listed.stderr
                for request in json.loads(listed.stdout):
                    option, reason = {"override_infrastructure_gate": ("Approve", "Redis Cloud fallback is live"),
                                      "review_no_go_day7_check": ("Keep NO-GO", "stability first")}[request["task_id"]]
                    assert request["options"] and request["subject"] and request["answer"].startswith("AIRFLOW_HOME=")
                    done = castmatch("answer", f"castmatch_week_01/{request['task_id']}", "--option", option,
                                     "--reason", reason, "--as", "priya", env=env)
                    assert done.returncode == 0, done.stderr
                    answered.append(request["task_id"])
                time.sleep(1)
        finally:
            if run.poll() is None:
                run.kill()
        log = log_file.read_text()
        assert answered == ["override_infrastructure_gate", "review_no_go_day7_check"], log[-3000:]
        # the waiting task said what it waits for and how to answer it from a terminal
        assert "WAITING FOR A PERSON" in log and "castmatch answer castmatch_week_01/override_infrastructure_gate" in log
        gates = {g["id"]: g for g in castmatch_json("gates", database_url=pg_url)["gates"]}
        infra = gates["infrastructure_gate"]
        assert infra["status"] == "OVERRIDDEN" and infra["decided_by"] == "priya"
        assert "Redis Cloud fallback is live" in infra["reason"]
        again = castmatch("answer", "castmatch_week_01/override_infrastructure_gate", "--option", "Approve", env=env)
        assert again.returncode == 2 and "no pending request matches" in again.stderr and "Traceback" not in again.stderr
