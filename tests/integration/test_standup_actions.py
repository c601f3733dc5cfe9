"""The standup's automated actions on the real store: a blocker opens one incident and later reports
join it, a valid redistribution moves a unit (and `castmatch status` shows it), units whose
dependencies were delivered start."""

from __future__ import annotations

import datetime as dt

from castmatch.config import load_roadmap
from castmatch.standup import apply_actions
from castmatch.store import Store
from tests.helpers import castmatch_json

RUN = "castmatch:roadmap:manual__standup"
DONE = {"summary": "delivered", "content": "the content", "status": "done", "blockers": [], "progress": 100}
DEVOPS, BACKEND, FRONTEND = "devops-infrastructure-developer", "backend-api-developer", "frontend-ui-developer"


def _roadmap(roadmap_copy):
    team = roadmap_copy / "team.yaml"  # the backend developer may cover DevOps
    team.write_text(team.read_text().replace("    name: Backend API Developer\n",
                                              f"    name: Backend API Developer\n    can_cover: [{DEVOPS}]\n"))
    return load_roadmap(roadmap_copy)


def _standup(config, store, date: str, reports: dict) -> tuple[list[dict], list[dict]]:
    return apply_actions(config, store, run_key=RUN, standup_date=date, reports=reports, clock="real",
                         since=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))


class TestStandupActions:
    def test_a_blocker_opens_one_incident_and_a_second_standup_joins_it(self, pg_url, roadmap_copy):
        config, store = _roadmap(roadmap_copy), Store(pg_url)
        store.register_run(run_key=RUN, roadmap_id="castmatch", kind="roadmap", dag_id="castmatch_roadmap",
                           run_id="manual__standup", clock="real")
        # running since, and long past its day on the real clock (Day 1 was 5 Sep 2025): late
        store.unit_started(dag_id="castmatch_week_01", run_key=RUN, run_id="w1", work_unit_id="fix_redis_connection",
                           agent_id=DEVOPS, try_number=1)
        actions, _ = _standup(config, store, "2026-11-29", {
            DEVOPS: {"blockers_identified": ["fix_redis_connection: Redis drops connections under load",
                                             "the coffee machine"]}})
        assert [(a["unit"], a["outcome"]) for a in actions] == [
            ("fix_redis_connection", "opened"), (None, "names no work unit: not escalated")]
        [incident] = store.incidents(roadmap_id="castmatch", run_key=RUN)
        assert (incident["kind"], incident["subject"], incident["id"]) == (
            "unit_blocked", "fix_redis_connection", actions[0]["incident"])

        for _ in range(2):  # the next day's standup names it again (and its task is retried)
            actions, _ = _standup(config, store, "2026-11-30", {BACKEND: {"blockers_identified": [
                "waiting on fix_redis_connection for the connection config"]}})
            assert [(a["unit"], a["outcome"], a["incident"]) for a in actions] == [
                ("fix_redis_connection", "joined", incident["id"])]
        [incident] = store.incidents(roadmap_id="castmatch", run_key=RUN, with_actions=True)
        joined = [a["detail"] for a in incident["actions"] if a["action"] == "joined"]
        assert joined == [f"standup 2026-11-30 ({BACKEND}) reports fix_redis_connection (blocked)"]
        listed = castmatch_json("incidents", "--roadmap", str(roadmap_copy), "--run", RUN, database_url=pg_url)
        assert len(listed) == 1

    def test_a_valid_redistribution_moves_the_unit_and_delivered_dependencies_start_the_waiting_units(
            self, pg_url, roadmap_copy):
        config, store = _roadmap(roadmap_copy), Store(pg_url)
        store.register_run(run_key=RUN, roadmap_id="castmatch", kind="roadmap", dag_id="castmatch_roadmap",
                           run_id="manual__standup", clock="real")
        store.save_deliverable(dag_id="castmatch_week_01", run_key=RUN, run_id="w1", work_unit_id="fix_redis_connection",
                               agent_id=DEVOPS, week=1, deliverable=DONE, backend="offline", model="m", try_number=1)
        store.unit_failed(dag_id="castmatch_week_01", run_key=RUN, run_id="w1", work_unit_id="setup_gpu_infrastructure",
                          agent_id=DEVOPS, try_number=3, error="no GPU quota", state="failed")
        # week 1's run has ended: the units that waited on Redis were skipped (Redis was delivered late)
        store.save_week_outcome(run_key=RUN, week=1, dag_id="castmatch_week_01", run_id="w1", state="failed",
                                problems=["units not delivered"], delivered=1, total=19)
        actions, triggers = _standup(config, store, "2026-11-29", {DEVOPS: {"redistribution": [
            {"unit": "setup_gpu_infrastructure", "to_agent": BACKEND, "reason": "I am on Redis all week"},
            {"unit": "restart_configure_containers", "to_agent": FRONTEND},
            {"unit": "conversation_api_with_memory", "to_agent": BACKEND}]}})
        moves = {a["unit"]: a["outcome"] for a in actions if a["kind"] == "task_redistribution"}
        assert moves["setup_gpu_infrastructure"].startswith("setup_gpu_infrastructure reassigned from")
        assert moves["restart_configure_containers"] == f"refused: {FRONTEND} cannot cover {DEVOPS} (team.yaml can_cover)"
        assert moves["conversation_api_with_memory"].startswith("refused:")
        status = castmatch_json("status", "--roadmap", str(roadmap_copy), "--run", RUN, database_url=pg_url)
        rows = {a["id"]: a for a in status["agents"]}
        assert rows[BACKEND]["moved_in"] == ["setup_gpu_infrastructure"]
        assert rows[DEVOPS]["moved_out"] == ["setup_gpu_infrastructure"]

        # it had failed: it runs again, as the backend developer; the units that waited on Redis start
        started = {t["conf"]["work_unit"]: t for t in triggers}
        assert started["setup_gpu_infrastructure"]["trigger_dag_id"] == "castmatch_incident_work"
        waiting = {u.id for u in config.weeks[1].work_units if "fix_redis_connection" in u.depends_on
                   and set(u.depends_on) == {"fix_redis_connection"}}
        assert waiting and set(started) == waiting | {"setup_gpu_infrastructure"}
        assert {a["unit"] for a in actions if a["kind"] == "dependency_update"} == waiting
