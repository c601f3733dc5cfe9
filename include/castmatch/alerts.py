"""Trigger-based alerts (seed: COMMUNICATION PROTOCOLS, "AUTOMATED NOTIFICATIONS"): the
``operations.yaml`` ``notifications`` whose ``when`` matches an event tell their agents (the inbox
their next prompts include) and people on Slack, once per event.

Raised where the event happens: a chain handing off (``ChainHandoffOperator``: Infrastructure Ready,
API Endpoints Complete), an incident opening (``open_incident``: Quality Gate Failures), units that
waited on a blocker starting once it is delivered (``IncidentWorkOperator``: Dependency Unblocked).
Each (run, notification, subject) is claimed in the store before anything is sent, so a retried or
rerun task never alerts twice; an alert Slack could not take is recorded with why.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def notifications_for(config, *, chain: str | None = None, incident_kind: str | None = None,
                      unblocked: bool = False) -> list:
    out = []
    for notification in config.operations.notifications if config.operations else []:
        when = notification.when
        if when is None:
            continue
        if (chain and chain in when.chains) or (incident_kind and incident_kind in when.incidents) or \
                (unblocked and when.unblocked):
            out.append(notification)
    return out


def recipients(config, notification, roles: dict[str, list[str]]) -> list[str]:
    """The agents ``notification.notify`` names, its roles (``responsible_agent`` ...) filled from
    ``roles`` for this event."""
    from castmatch.config.models import ALERT_ROLES

    out: list[str] = []
    for name in notification.notify:
        for agent_id in roles.get(name, []) if name in ALERT_ROLES else config.expand_agents([name]):
            if agent_id not in out:
                out.append(agent_id)
    return out


def base_url() -> str:
    """The Airflow UI's address, for links (``[api] base_url``)."""
    try:
        from airflow.configuration import conf

        return (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    except Exception:  # outside Airflow (the CLI without a config): the default address
        return "http://localhost:8080"


def links(config, *, run_key: str, dag_id: str | None = None, run_id: str | None = None,
          incident: int | None = None) -> list[str]:
    """Where a person looks: the run in Airflow, the incidents, the Required Actions page."""
    from urllib.parse import quote

    from castmatch.factory import incident_sweep_dag_id

    root = base_url()
    out = []
    if dag_id and run_id:
        out.append(f"Run: {root}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}")
    out.append(f"Incidents: {root}/dags/{quote(incident_sweep_dag_id(config))}"
               + (f" (incident #{incident}; `castmatch incidents --run {run_key}`)" if incident else
                  f" (`castmatch incidents --run {run_key}`)"))
    out.append(f"Required Actions: {root}/required_actions?response_received=false")
    return out


def raise_alerts(config, store, notifications: list, *, run_key: str, subject: str, summary: str,
                 roles: dict[str, list[str]] | None = None, dag_id: str | None = None, run_id: str | None = None,
                 incident: int | None = None) -> list[dict]:
    """Raise each of ``notifications`` about ``subject`` once in run ``run_key``; returns what was
    raised now (empty on a retry: it was raised before)."""
    from castmatch.notify import post_to_slack

    raised = []
    for notification in notifications:
        agents = recipients(config, notification, roles or {})
        text = "\n".join([
            f":bell: *{notification.event}*: {subject} (run `{run_key}`)",
            summary,
            f"Told: {', '.join(agents) or 'no agent'} (their next prompts include it)",
            *links(config, run_key=run_key, dag_id=dag_id, run_id=run_id, incident=incident),
        ])
        row = store.claim_alert(run_key=run_key, notification_id=notification.id, subject=subject, text=text,
                                agents=agents)
        if row is None:
            log.info("alert %s about %s in run %s was raised before: not sent again", notification.id, subject,
                     run_key)
            continue
        if notification.slack:
            connections = config.roadmap.connections
            status, channel, detail = post_to_slack(text, webhook_conn_id=connections.slack,
                                                    api_conn_id=connections.slack_api,
                                                    channel=connections.slack_channel)
        else:
            status, channel, detail = "not_sent", "", "slack: false in operations.yaml"
        store.finish_alert(row["id"], status=status, channel=channel, detail=detail)
        (log.info if status == "sent" else log.warning)(
            "alert %s (%s) about %s: agents told: %s; Slack: %s %s - %s", notification.id, notification.event,
            subject, ", ".join(agents) or "none", status.upper().replace("_", " "), channel, detail)
        raised.append({**row, "status": status, "channel": channel, "detail": detail})
    return raised


# ---------------------------------------------------------------------------- the events


def gate_responsible(config, gate_id: str) -> list[str]:
    """The leads of the units a gate judges (who answers for a failure), else its owner if an agent."""
    gate = config.gate(gate_id)
    if gate is None:
        return []
    out: list[str] = []
    for criterion in gate.criteria:
        for unit_id in criterion.work_units:
            unit = config.work_units.get(unit_id)
            if unit is not None and unit.agents[0] not in out:
                out.append(unit.agents[0])
    return out or ([gate.owner] if gate.owner in config.agents else [])


def on_incident_opened(config, store, incident: dict) -> list[dict]:
    """Quality Gate Failures (and any notification on an incident kind): the responsible agents and
    the gate's enforcers."""
    notifications = notifications_for(config, incident_kind=incident["kind"])
    if not notifications:
        return []
    roles = {"responsible_agent": list(incident["agents"]), "gate_enforcers": []}
    if incident["kind"] == "gate_vetoed":
        gate = config.gate(incident["subject"])
        roles["responsible_agent"] = gate_responsible(config, incident["subject"])
        roles["gate_enforcers"] = config.expand_agents(gate.enforcers) if gate else []
    return raise_alerts(config, store, notifications, run_key=incident["run_key"], subject=incident["subject"],
                        summary=incident["detail"][:600], roles=roles, incident=incident["id"])


def on_chain_handoff(config, store, chain, *, run_key: str, dag_id: str, run_id: str, delivered: list[str]) -> list[dict]:
    """Infrastructure Ready, API Endpoints Complete: a chain's trigger holds."""
    notifications = notifications_for(config, chain=chain.id)
    summary = (f"{chain.trigger.description}: {', '.join(delivered) or 'its trigger holds'} delivered. "
               f"{chain.action.description} ({', '.join(chain.action.artifacts) or 'the deliverables'}).")
    return raise_alerts(config, store, notifications, run_key=run_key, subject=chain.id, summary=summary,
                        roles={"chain_agents": list(chain.action.notify)}, dag_id=dag_id, run_id=run_id)


def on_units_unblocked(config, store, *, run_key: str, blocker: str, units: list[str], dag_id: str | None = None,
                       run_id: str | None = None) -> list[dict]:
    """Dependency Unblocked: the units that waited on ``blocker`` start now (auto-assigned)."""
    if not units:
        return []
    notifications = notifications_for(config, unblocked=True)
    waiting = []
    for unit_id in units:
        lead = config.work_units[unit_id].agents[0]
        if lead not in waiting:
            waiting.append(lead)
    summary = (f"{blocker} is delivered: {', '.join(units)} no longer wait and start now "
               f"({', '.join(waiting)}).")
    return raise_alerts(config, store, notifications, run_key=run_key, subject=blocker, summary=summary,
                        roles={"waiting_agents": waiting}, dag_id=dag_id, run_id=run_id)


def alerts_report(config, store, run_key: str | None) -> list[dict]:
    from castmatch.runs import roadmap_id_of

    return [{"id": r["id"], "run_key": r["run_key"], "notification": r["notification_id"], "subject": r["subject"],
             "agents": r["agents"], "status": r["status"], "channel": r["channel"], "detail": r["detail"],
             "created_at": r["created_at"], "text": r["text"]}
            for r in store.alerts(roadmap_id=roadmap_id_of(config), run_key=run_key)]


def render_alerts(report: list[dict]) -> str:
    if not report:
        return "no alerts"
    icons = {"sent": "📣", "not_sent": "📝", "failed": "⚠️", "sending": "…"}
    lines = []
    for r in report:
        lines.append(f"{icons.get(r['status'], '?')} #{r['id']} {r['notification']} about {r['subject']}: "
                     f"told {', '.join(r['agents']) or 'no agent'}; Slack {r['status'].replace('_', ' ')}"
                     + (f" ({r['channel']})" if r["channel"] else "") + (f": {r['detail']}" if r["status"] != "sent" else ""))
    return "\n".join(lines)
