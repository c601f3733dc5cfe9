"""Requests waiting for a person (veto overrides, NO-GO reviews), read from Airflow's metadata
database, and answers given through Airflow's own path: the handler of the REST route behind the
UI's Required Actions form (``PATCH .../hitlDetails``), with its locking, validation and resume.

So a run started with ``airflow dags test`` (which has no UI to answer in) can be finished from a
second terminal: ``castmatch reviews`` lists what waits, ``castmatch answer`` answers it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass


class NoSuchRequest(LookupError):
    """No pending request matches what was asked (or more than one does)."""


def answer_command(dag_id: str, task_id: str, option: str, *, run_id: str | None = None) -> str:
    """The terminal command that answers a waiting task (with this process's AIRFLOW_HOME)."""
    home = os.environ.get("AIRFLOW_HOME")
    run = f" --run {shlex.quote(run_id)}" if run_id else ""
    return (f"{'AIRFLOW_HOME=' + shlex.quote(home) + ' ' if home else ''}castmatch answer {dag_id}/{task_id}{run} "
            f"--option {shlex.quote(option)} --reason 'why'")


@dataclass(frozen=True)
class PendingRequest:
    id: str  # the task instance id (what `castmatch answer` also accepts)
    dag_id: str
    run_id: str
    task_id: str
    subject: str
    body: str
    options: list[str]
    defaults: list[str]
    created_at: str | None
    deadline: str | None  # when the default answer applies (None: no limit)

    def as_dict(self) -> dict:
        return {**self.__dict__, "answer": answer_command(self.dag_id, self.task_id, self.options[0],
                                                          run_id=self.run_id)}


def pending_requests(dag_id_prefix: str | None = None) -> list[PendingRequest]:
    """Requests of tasks waiting for a person (oldest first), of DAGs starting with ``dag_id_prefix``."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        query = (select(TaskInstance, HITLDetail).join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
                 .where(TaskInstance.state == TaskInstanceState.AWAITING_INPUT, HITLDetail.responded_at.is_(None))
                 .order_by(HITLDetail.created_at))
        if dag_id_prefix:
            query = query.where(TaskInstance.dag_id.startswith(dag_id_prefix))
        out = []
        for ti, detail in session.execute(query).all():
            deadline = getattr(ti, "trigger_timeout", None)
            out.append(PendingRequest(
                id=str(ti.id), dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, subject=detail.subject,
                body=detail.body or "", options=list(detail.options or []), defaults=list(detail.defaults or []),
                created_at=detail.created_at.isoformat() if detail.created_at else None,
                deadline=deadline.isoformat() if deadline else None,
            ))
    return out


def find_request(ref: str, *, run_id: str | None = None, dag_id_prefix: str | None = None) -> PendingRequest:
    """The pending request ``ref`` names: its id, ``DAG_ID/TASK_ID`` or a bare task id (with
    ``run_id`` when several runs wait in the same task)."""
    pending = pending_requests(dag_id_prefix)
    dag_id, _, task_id = ref.rpartition("/")
    matches = [p for p in pending if ref == p.id or (p.task_id == task_id and (not dag_id or p.dag_id == dag_id))]
    if run_id:
        matches = [p for p in matches if p.run_id == run_id]
    if not matches:
        waiting = ", ".join(f"{p.dag_id}/{p.task_id}" for p in pending) or "none"
        raise NoSuchRequest(f"no pending request matches {ref!r}{f' in run {run_id}' if run_id else ''} "
                            f"(pending: {waiting})")
    if len(matches) > 1:
        raise NoSuchRequest(f"{ref!r} matches {len(matches)} pending requests; say which with --run "
                            + " or ".join(repr(m.run_id) for m in matches) + " or use the id")
    return matches[0]


def answer(request: PendingRequest, option: str, *, reason: str = "", user: str, params: dict | None = None) -> dict:
    """Answer ``request`` with ``option`` (and a reason) as ``user``, through the handler of
    Airflow's REST route (the same path as the UI form). Returns what Airflow stored."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    if option not in request.options:
        raise ValueError(f"{option!r} is not an option of {request.dag_id}/{request.task_id}: "
                         f"choose one of {', '.join(repr(o) for o in request.options)}")

    class Person:  # the user the response is recorded as (what the UI takes from the login)
        def get_id(self) -> str:
            return user

        def get_name(self) -> str:
            return user

    from airflow.api_fastapi.app import create_auth_manager
    from fastapi import HTTPException

    create_auth_manager()  # the route asks it whether the user is one the request is assigned to
    payload = UpdateHITLDetailPayload(chosen_options=[option], params_input={**(params or {}), "reason": reason})
    try:
        with create_session() as session:
            response = update_hitl_detail(dag_id=request.dag_id, dag_run_id=request.run_id, task_id=request.task_id,
                                          session=session, user=Person(), update_hitl_detail_payload=payload)
    except HTTPException as exc:  # e.g. 409: somebody answered it first
        raise ValueError(f"Airflow refused the answer ({exc.status_code}): {exc.detail}") from None
    return {"dag_id": request.dag_id, "run_id": request.run_id, "task_id": request.task_id,
            "chosen_options": list(response.chosen_options), "responded_by": user, "reason": reason}
