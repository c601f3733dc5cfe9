"""Helpers shared by tests and their worker processes (no side effects on import)."""

from __future__ import annotations


def fast_llm_settings(config, **updates):
    """The roadmap's LLM settings with short back-offs, for tests."""
    retry = config.llm.retry.model_copy(update={"backoff_seconds": 0.05, "task_retry_delay_seconds": 1})
    return config.llm.model_copy(update={"retry": retry, "timeout_seconds": 2.0, **updates})


def dags_test(dag_id: str, logical_date: str, env: dict | None = None, answers: dict | None = None):
    """``airflow dags test`` of this virtualenv in a subprocess; returns the CompletedProcess.

    ``answers`` maps a human-in-the-loop task id to ``(option, reason, user)``: when that task asks
    (Airflow's Required Actions), the answer is given the way the UI gives it. A request with no
    answer here fails the test at once instead of waiting forever.
    """
    import os
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    answers = dict(answers or {})
    with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id, logical_date],
                                stdout=out, stderr=subprocess.STDOUT, text=True,
                                env=env if env is not None else os.environ.copy())
        deadline = time.monotonic() + 600
        try:
            while proc.poll() is None:
                assert time.monotonic() < deadline, f"dags test {dag_id} took over 600 s"
                for task_id, run_id in waiting_for_input(dag_id):
                    assert task_id in answers, f"{dag_id}.{task_id} asks a person and the test has no answer"
                    option, reason, user = answers.pop(task_id)
                    answer_hitl(dag_id, run_id, task_id, option, reason=reason, user=user)
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
        out.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), "")


def waiting_for_input(dag_id: str) -> list[tuple[str, str]]:
    """(task id, run id) of the DAG's tasks parked for a person's answer (Airflow's metadata DB)."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.run_id)
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                   HITLDetail.responded_at.is_(None))
        ).all()
    return [(r.task_id, r.run_id) for r in rows]


def answer_hitl(dag_id: str, run_id: str, task_id: str, option: str, *, reason: str = "", user: str = "lead") -> None:
    """Answer a human-in-the-loop request through the same handler as the UI's Required Actions
    form (Airflow's public HITL API route), as ``user``."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    class Person:
        def get_id(self) -> str:
            return user

        def get_name(self) -> str:
            return user

    with create_session() as session:
        update_hitl_detail(dag_id=dag_id, dag_run_id=run_id, task_id=task_id, session=session, user=Person(),
                           update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option],
                                                                              params_input={"reason": reason}))


def castmatch_json(*args: str, database_url: str):
    """``castmatch <args> --json`` against the store at ``database_url``, parsed."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([str(Path(sys.executable).parent / "castmatch"), *args, "--json"], capture_output=True,
                         text=True, env={**os.environ, "CASTMATCH_DATABASE_URL": database_url})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sample_history(store, probes, *, hours: float, every_min: float = 15, skip: tuple[float, float] | None = None,
                   ok: bool = True, now=None) -> int:
    """Samples as the probe DAG stores them: one per probe every ``every_min`` over the last
    ``hours`` (none between ``skip`` = (from, to) hours ago)."""
    import datetime as dt

    now = now or dt.datetime.now(dt.UTC)
    count, minutes = 0, 0.0
    while minutes < hours * 60:
        ago = minutes / 60
        if not (skip and skip[0] <= ago < skip[1]):
            for p in probes:
                store.record_probe_sample(probe_id=p, kind=p, ok=ok, latency_ms=1.0,
                                          ts=now - dt.timedelta(minutes=minutes))
                count += 1
        minutes += every_min
    return count

