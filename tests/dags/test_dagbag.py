"""DagBag integrity: every DAG imports, is tagged, retries, and matches the roadmap config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from airflow.providers.standard.operators.hitl import HITLOperator

from castmatch.config import load_roadmap
from castmatch.operators.agent import AgentOperator
from castmatch.operators.roadmap import WeekCheckSensor
from castmatch.operators.week import WeekCompleteOperator

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = [f"castmatch_checkpoint_{c}" for c in ("daily_morning", "daily_midday", "daily_evening", "weekly_completion_review",
                                                  "weekly_initialization", "stakeholder_updates")]


def dagbag(monkeypatch=None, roadmap: Path | None = None):
    from airflow.dag_processing.dagbag import DagBag

    if roadmap is not None:
        monkeypatch.setenv("CASTMATCH_ROADMAP_DIR", str(roadmap))
    return DagBag(str(ROOT / "dags"))


def _judges():
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    return (WeekCompleteOperator, WeekCheckSensor, TriggerDagRunOperator)


JUDGES = _judges()


@pytest.fixture(scope="module")
def bag():
    return dagbag()


class TestDagBag:
    def test_no_import_errors(self, bag):
        assert bag.import_errors == {}

    def test_twelve_weeks_the_roadmap_the_standup_the_chains_and_the_checkpoints(self, bag):
        chains = [f"castmatch_chain_{c.id}" for c in load_roadmap().operations.chains]
        assert len(chains) == 6
        assert sorted(bag.dags) == sorted([f"castmatch_week_{w:02d}" for w in range(1, 13)]
                                          + ["castmatch_roadmap", "castmatch_daily_standup", "castmatch_probes", "castmatch_incidents",
                                             "castmatch_incident_work", "castmatch_incident_review", *chains, *CHECKPOINTS])

    def test_each_checkpoint_runs_on_its_cron_in_kolkata_and_after_each_week(self, bag):
        crons = {f"castmatch_checkpoint_{c.id}": c.cron for c in load_roadmap().operations.checkpoints}
        assert crons == {"castmatch_checkpoint_daily_morning": "0 9 * * *", "castmatch_checkpoint_daily_midday": "0 13 * * *",
                         "castmatch_checkpoint_daily_evening": "0 18 * * *",
                         "castmatch_checkpoint_weekly_completion_review": "0 17 * * 5",
                         "castmatch_checkpoint_weekly_initialization": "0 9 * * 1",
                         "castmatch_checkpoint_stakeholder_updates": "30 17 * * 5"}
        for dag_id, cron in crons.items():
            timetable = bag.dags[dag_id].timetable
            assert (timetable.expression, str(timetable.timezone)) == (cron, "Asia/Kolkata")
            assert bag.dags[dag_id].get_task("take_checkpoint").downstream_task_ids == {"start_unblocked"}
        driver = bag.dags["castmatch_roadmap"]
        for week in range(1, 13):  # the compressed clock: the driver takes the week's checkpoints after it
            assert driver.get_task(f"checkpoints_week_{week:02d}").upstream_task_ids == {f"run_week_{week:02d}"}

    def test_chain_trigger_units_publish_the_assets_their_chain_waits_for(self, bag):
        config = load_roadmap()
        for chain in config.operations.chains:
            dag = bag.dags[f"castmatch_chain_{chain.id}"]
            for unit_id in [*chain.trigger.all_of, *chain.trigger.any_of]:
                week = config.unit_week[unit_id]
                task = bag.dags[f"castmatch_week_{week:02d}"].get_task(unit_id)
                uris = {o.uri for o in task.outlets}
                assert f"castmatch://castmatch/chains/{chain.id}/{unit_id}" in uris
            assert dag.timetable.asset_condition is not None

    def test_probes_are_sampled_every_update_period(self, bag):
        dag = bag.dags["castmatch_probes"]
        assert dag.timetable.delta.total_seconds() == 15 * 60  # operations.yaml update_frequency_minutes
        assert dag.task_ids == ["sample_probes"]

    def test_standup_runs_at_nine_in_kolkata(self, bag):
        timetable = bag.dags["castmatch_daily_standup"].timetable
        assert (timetable.expression, str(timetable.timezone)) == ("0 9 * * *", "Asia/Kolkata")

    def test_every_dag_tagged_documented_and_retrying(self, bag):
        for dag_id, dag in bag.dags.items():
            assert dag.tags, dag_id
            assert "config-error" not in dag.tags, dag_id
            assert dag.doc_md, dag_id
            for task in dag.tasks:
                if isinstance(task, HITLOperator):  # a person's answer is not retried; it has a deadline
                    assert task.retries == 0 and task.response_timeout, f"{dag_id}.{task.task_id}"
                    assert task.defaults in (["Reject"], ["Keep NO-GO"], ["Keep stopped"]), f"{dag_id}.{task.task_id}"  # the veto / NO-GO stands
                    continue
                if isinstance(task, JUDGES):
                    # a verdict on what happened is not retried: retrying a re-trigger would reset the week's run,
                    # and a week_complete or check_week failure is the answer, not a glitch
                    assert task.retries == 0, f"{dag_id}.{task.task_id}"
                    continue
                assert task.retries >= 2, f"{dag_id}.{task.task_id} retries={task.retries}"

    def test_week_dags_are_tagged_with_their_phase(self, bag):
        config = load_roadmap()
        for week in range(1, 13):
            phase = config.phase_of_week(week)
            assert f"phase-{phase.number}" in bag.dags[f"castmatch_week_{week:02d}"].tags

    def test_week_tasks_and_dependencies_follow_the_config(self, bag):
        config = load_roadmap()
        for week, spec in config.weeks.items():
            dag = bag.dags[f"castmatch_week_{week:02d}"]
            gates = [g for g in config.all_gates if g.week == week]
            points = [p.id for p in config.gates.decision_points if p.week == week]
            vetoing = [g for g in gates if g.veto]
            assert sorted(dag.task_ids) == sorted(
                [u.id for u in spec.work_units] + [f"gate_{g.id}" for g in gates]
                + [f"{k}_{g.id}" for g in vetoing for k in ("override", "release")]
                + [f"{k}_{p}" for p in points
                   for k in ("decide", "go", "no_go", "review_no_go", "no_go_kept", "no_go_overturned")]
                + ["week_complete"])
            # the last task judges the whole week, once every other task is done
            # (directly after every task but those that skip their direct downstream: branches, approvals)
            complete = dag.get_task("week_complete")
            skippers = {t.task_id for t in dag.tasks if getattr(t, "inherits_from_skipmixin", False)}
            assert skippers == {f"decide_{p}" for p in points} | {f"review_no_go_{p}" for p in points} | {
                f"override_{g.id}" for g in vetoing}
            assert complete.trigger_rule == "all_done"
            assert complete.upstream_task_ids == set(dag.task_ids) - {"week_complete"} - skippers
            # the clock is chosen per run (the roadmap passes its own)
            assert dag.params["clock"] in ("real", "compressed") and "roadmap_run_id" in dag.params
            for g in vetoing:  # the guarded work waits for the gate to pass or a person to override its veto
                assert dag.get_task(f"override_{g.id}").upstream_task_ids == {f"gate_{g.id}"}
                assert dag.get_task(f"override_{g.id}").trigger_rule == "all_failed"
                assert dag.get_task(f"release_{g.id}").upstream_task_ids == {f"gate_{g.id}", f"override_{g.id}"}
                assert dag.get_task(f"release_{g.id}").trigger_rule == "one_success"
            for p in points:
                review = dag.get_task(f"review_no_go_{p}")
                assert review.upstream_task_ids == {f"no_go_{p}"}
                assert set(review.options_mapping.values()) == review.downstream_task_ids == {
                    f"no_go_kept_{p}", f"no_go_overturned_{p}"}
            for unit in spec.work_units:
                same_week = {d for d in unit.depends_on if config.unit_week[d] == week}
                chained = {t for c in config.operations.chains if unit.id in c.action.consumers
                           for t in c.trigger.all_of if config.unit_week[t] == week}
                guarded = {f"release_{g.id}" if g.veto else f"gate_{g.id}" for g in gates if unit.id in g.blocks}
                assert dag.get_task(unit.id).upstream_task_ids == same_week | chained | guarded, unit.id
                # the priority first (IMMEDIATE > HIGH > MEDIUM > LOW), then the longer critical path ahead
                assert dag.get_task(unit.id).priority_weight // 100 == config.priority_weight(unit) // 1
                assert dag.get_task(unit.id).priority_weight % 100 == config.units_after[unit.id]
                assert dag.get_task(unit.id).pool == f"castmatch_agent_{unit.agents[0]}"  # the lead's capacity
                # the outcome lives in the store and the log: no XCom copy written through the API per task
                assert dag.get_task(unit.id).do_xcom_push is False
            assert not [t.task_id for t in dag.tasks if t.pool.startswith("castmatch_agent")
                        and not isinstance(t, AgentOperator)]  # the pools cap agent work only

    def test_roadmap_runs_the_weeks_in_order_and_judges_each(self, bag):
        dag = bag.dags["castmatch_roadmap"]
        decided = {p.week for p in load_roadmap().gates.decision_points}
        assert decided == {1, 2, 4, 8, 12}
        assert dag.get_task("wait_week_01").upstream_task_ids == {"start_run"}
        for week in range(1, 13):
            wait, run, check = (dag.get_task(f"{k}_week_{week:02d}") for k in ("wait", "run", "check"))
            if week > 1:
                assert wait.upstream_task_ids == {f"check_week_{week - 1:02d}"}
            assert run.upstream_task_ids == {wait.task_id} and check.upstream_task_ids == {run.task_id}
            assert run.trigger_dag_id == f"castmatch_week_{week:02d}"
            # the run's clock travels to the week; a failed week (e.g. NO-GO) is judged by check_week
            assert run.conf == {"roadmap_run_id": "{{ run_id }}", "clock": "{{ params.clock }}"}
            assert set(run.allowed_states) == {"success", "failed"} and run.failed_states == []
            assert check.trigger_rule == "all_success"  # the trigger succeeds on a failed week too


class TestBrokenWeekFile:
    def test_a_broken_week_file_fails_that_week_and_the_driver_only(self, tmp_path, monkeypatch):
        roadmap = tmp_path / "roadmap"
        shutil.copytree(ROOT / "include" / "roadmaps" / "castmatch", roadmap)
        week = roadmap / "weeks" / "week_03.yaml"
        text = week.read_text()
        week.write_text(text.replace("title: ", "title: [", 1))  # one unclosed bracket
        config = load_roadmap(roadmap)
        referenced = [u for u in config.issues if u.file != "weeks/week_03.yaml"]
        assert referenced == [], referenced  # gates and chains naming week 3's units are not reported again
        bag = dagbag(monkeypatch, roadmap)
        assert set(bag.import_errors) == {str(ROOT / "dags" / "castmatch_weeks.py"), str(ROOT / "dags" / "castmatch_roadmap.py")}
        for message in bag.import_errors.values():
            assert "weeks/week_03.yaml:" in message and "invalid YAML" in message
            assert len(message.splitlines()) <= 3, message  # the root error, and how many follow from it
        assert "castmatch_week_03" in bag.import_errors[str(ROOT / "dags" / "castmatch_weeks.py")]
        chains = [f"castmatch_chain_{c.id}" for c in config.operations.chains]
        expected = [f"castmatch_week_{w:02d}" for w in range(1, 13) if w != 3] + [
            "castmatch_daily_standup", "castmatch_probes", "castmatch_incidents", "castmatch_incident_work",
            "castmatch_incident_review", *chains, *CHECKPOINTS]
        assert sorted(bag.dags) == sorted(expected)


class TestAgentRetryPolicy:
    def test_transient_claude_failures_retry_and_refusals_fail(self, bag):
        from airflow.sdk.definitions.retry_policy import RetryAction

        from castmatch.llm.errors import BudgetExceeded, LLMPermanentError, LLMTransientError, MalformedAnswer

        task = bag.dags["castmatch_week_01"].get_task("fix_redis_connection")
        policy = task.retry_policy
        assert policy.evaluate(LLMTransientError("529"), 1, 3).action == RetryAction.RETRY
        assert policy.evaluate(LLMTransientError("529"), 1, 3).retry_delay.total_seconds() == 60
        for exc in (LLMPermanentError("401"), MalformedAnswer("bad"), BudgetExceeded("over")):
            assert policy.evaluate(exc, 1, 3).action == RetryAction.FAIL


class TestGateTasks:
    def test_gates_sit_after_their_evidence_and_before_the_work_they_guard(self, bag):
        config = load_roadmap()
        dag = bag.dags["castmatch_week_01"]
        gate = dag.get_task("gate_infrastructure_gate")
        assert gate.mode == "reschedule"
        assert {"verify_postgresql_stability", "fix_redis_connection", "restart_configure_containers"} <= gate.upstream_task_ids
        infra = next(g for g in config.all_gates if g.id == "infrastructure_gate")
        assert gate.downstream_task_ids == {"override_infrastructure_gate", "release_infrastructure_gate",
                                            "week_complete"}
        assert set(infra.blocks) <= dag.get_task("release_infrastructure_gate").downstream_task_ids


class TestTaskProcessParse:
    def test_a_week_task_process_builds_only_its_own_week(self, bag, monkeypatch):
        """Airflow's task runner parses the task's DAG file under a parsing context naming the DAG:
        there the weeks' file builds that week alone (one DAG, not twelve), the same DAG."""
        from airflow.dag_processing.dagbag import DagBag
        from airflow.sdk.definitions.context import (
            _AIRFLOW_PARSING_CONTEXT_DAG_ID,
            _AIRFLOW_PARSING_CONTEXT_TASK_ID,
        )

        monkeypatch.setenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID, "castmatch_week_05")
        monkeypatch.setenv(_AIRFLOW_PARSING_CONTEXT_TASK_ID, "any")
        alone = DagBag(str(ROOT / "dags" / "castmatch_weeks.py"))
        assert not alone.import_errors and sorted(alone.dags) == ["castmatch_week_05"]
        built, full = alone.dags["castmatch_week_05"], bag.dags["castmatch_week_05"]
        assert {t: sorted(built.task_dict[t].upstream_task_ids) for t in built.task_dict} == \
            {t: sorted(full.task_dict[t].upstream_task_ids) for t in full.task_dict}

    def test_a_task_process_takes_its_dag_as_the_scheduler_built_it_until_the_roadmap_changes(
            self, monkeypatch, tmp_path):
        """The scheduler builds every DAG before it forks task processes (``prebuild_dags``, run by
        the preload); a task process parsing its DAG file takes its DAG from there instead of
        building thirty operators again. An edited roadmap file is a new config: the task process
        then builds its DAG from the file as it is now, never the scheduler's stale one."""
        from airflow.dag_processing.dagbag import DagBag
        from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID

        from castmatch import factory

        roadmap = tmp_path / "roadmap"
        shutil.copytree(ROOT / "include" / "roadmaps" / "castmatch", roadmap)
        monkeypatch.setenv("CASTMATCH_ROADMAP_DIR", str(roadmap))
        monkeypatch.setattr(factory, "_prebuilt", {})
        assert factory.prebuild_dags() >= 12 + 1  # the weeks and the roadmap's driver at least
        prebuilt = factory._prebuilt["weeks"][1]["castmatch_week_01"]

        built = []
        build = factory.build_week_dag
        monkeypatch.setattr(factory, "build_week_dag", lambda config, week: (built.append(week), build(config, week))[1])
        monkeypatch.setenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID, "castmatch_week_01")
        parsed = DagBag(str(ROOT / "dags" / "castmatch_weeks.py"))
        assert not parsed.import_errors and sorted(parsed.dags) == ["castmatch_week_01"]
        assert parsed.dags["castmatch_week_01"] is prebuilt and built == []

        week_file = roadmap / "weeks" / "week_01.yaml"
        title = load_roadmap(roadmap).work_units["fix_redis_connection"].title
        week_file.write_text(week_file.read_text().replace(f"title: {title}\n", "title: Fix the Redis connection, retitled\n", 1))
        parsed = DagBag(str(ROOT / "dags" / "castmatch_weeks.py"))
        rebuilt = parsed.dags["castmatch_week_01"]
        assert rebuilt is not prebuilt and built == [1]
        assert "Fix the Redis connection, retitled" in rebuilt.task_dict["fix_redis_connection"].doc_md
