"""Helpers shared by tests and their worker processes (no side effects on import)."""

from __future__ import annotations


def fast_llm_settings(config, **updates):
    """The roadmap's LLM settings with short back-offs, for tests."""
    retry = config.llm.retry.model_copy(update={"backoff_seconds": 0.05, "min_backoff_seconds": 0.05,
                                                "task_retry_delay_seconds": 1})
    return config.llm.model_copy(update={"retry": retry, "timeout_seconds": 2.0, **updates})


def dags_test(dag_id: str, logical_date: str, env: dict | None = None, answers: dict | None = None,
              conf: dict | None = None):
    """``airflow dags test`` of this virtualenv in a subprocess; returns the CompletedProcess.

    ``answers`` maps a human-in-the-loop task id to ``(option, reason, user)`` (or a callable given the
    request, or None to leave it unanswered until its window passes): when that task asks
    (Airflow's Required Actions), the answer is given the way the UI gives it (``castmatch.human``,
    the handler of the UI's REST route). A request with no answer here fails the test at once
    instead of waiting forever. ``conf`` is the run's conf (e.g. the roadmap run a week joins).
    """
    import json
    import os
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    from castmatch.human import answer, pending_requests

    answers = dict(answers or {})
    answered = []
    command = [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id, logical_date]
    if conf is not None:
        command += ["--conf", json.dumps(conf)]
    with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True,
                                env=env if env is not None else os.environ.copy())
        deadline = time.monotonic() + 600
        try:
            while proc.poll() is None:
                assert time.monotonic() < deadline, f"dags test {dag_id} took over 600 s"
                for request in pending_requests(dag_id):
                    if request.dag_id != dag_id:
                        continue
                    assert request.task_id in answers, f"{dag_id}.{request.task_id} asks a person and the test has no answer"
                    if answers[request.task_id] is None:  # left to its response window
                        continue
                    given = answers.pop(request.task_id)
                    if callable(given):  # the test answers itself (e.g. with `castmatch answer`)
                        given(request)
                    else:
                        option, reason, user = given
                        answer(request, option, reason=reason, user=user)
                    answered.append(request)
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
        out.seek(0)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), "")
        done.answered = answered  # the requests answered, as they were pending (deadline included)
        return done


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


WEEK_DONE = {"summary": "delivered", "content": "the content", "status": "done", "blockers": [], "progress": 100}


def week_one_with_a_veto(store, monkeypatch, run_key: str, roadmap_dir=None):
    """Week 1 of the CastMatch roadmap as its DAG leaves it when Redis is down at the gate: the
    infrastructure units delivered, the gate judged for real against a dead Redis (vetoed)."""
    from castmatch.clock import RoadmapClock
    from castmatch.config import load_roadmap
    from castmatch.gates import judge_gate

    config = load_roadmap(roadmap_dir)
    store.register_run(run_key=run_key, roadmap_id="castmatch", kind="roadmap", dag_id="castmatch_roadmap",
                       run_id=run_key.rsplit(":", 1)[-1], clock="real", origin=None)
    gate = next(g for g in config.all_gates if g.id == "infrastructure_gate")
    needed = {u for c in gate.criteria for u in c.work_units}
    for unit_id in sorted(needed):
        agent = config.work_units[unit_id].agents[0]
        keys = dict(dag_id="castmatch_week_01", run_key=run_key, run_id="w1", work_unit_id=unit_id, agent_id=agent)
        store.unit_started(**keys, try_number=1)
        store.save_deliverable(**keys, week=1, deliverable=WEEK_DONE, backend="offline", model="m", try_number=1)
    store.unit_started(dag_id="castmatch_week_01", run_key=run_key, run_id="w1", work_unit_id="fix_redis_connection",
                       agent_id="devops-infrastructure-developer", try_number=1)
    with monkeypatch.context() as env:  # Redis is down when the gate checks it
        env.setenv("AIRFLOW_CONN_CASTMATCH_REDIS", "redis://127.0.0.1:1/0")
        result = judge_gate(config, gate, store, run_key=run_key, dag_id="castmatch_week_01", run_id="w1",
                            clock=RoadmapClock.from_roadmap(config.roadmap, mode="real"), deadline_passed=True)
    assert result["status"] == "VETOED"
    return config


def in_a_task_process(work):
    """``work()`` run in a child forked from this process, as an executor forks a task process;
    returns what it returned (through a pipe, as JSON)."""
    import json
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.write(write, json.dumps(work()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        result = json.loads(pipe.read() or "null")
    assert os.waitpid(pid, 0)[1] == 0
    return result
