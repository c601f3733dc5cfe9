"""Announcements to people on Slack, through the Slack provider's incoming-webhook hook.

The notifier is built at parse time, so it imports nothing heavy until it sends (the provider's
own ``SlackWebhookNotifier`` pulls in ``slack_sdk`` at import, about 0.3 s per DAG parse). Without
a ``castmatch_slack`` connection holding a webhook URL it logs that nothing was sent instead of
failing the task: the request still shows on Airflow's Required Actions page.
"""

from __future__ import annotations

from airflow.sdk.bases.notifier import BaseNotifier

SLACK_CONN_ID = "castmatch_slack"


class SlackAnnouncement(BaseNotifier):
    """Posts ``text`` (templated: the task's context, e.g. ``{{ task.subject }}``) to Slack."""

    template_fields = ("text",)

    def __init__(self, text: str, *, slack_webhook_conn_id: str = SLACK_CONN_ID):
        super().__init__()
        self.text = text
        self.slack_webhook_conn_id = slack_webhook_conn_id

    def notify(self, context) -> None:
        status, channel, detail = post_to_slack(self.text, webhook_conn_id=self.slack_webhook_conn_id)
        if status == "sent":
            self.log.info("announced on Slack (%s)", channel)
        else:
            self.log.warning("not announced on Slack: %s", detail)


def _defined(conn_id: str | None):
    """The connection ``conn_id`` when it is defined and holds a secret (token or webhook URL)."""
    from castmatch.probes.checks import ProbeFailed, get_connection

    if not conn_id:
        return None
    try:
        conn = get_connection(conn_id)
    except ProbeFailed:
        return None
    return conn if (conn.password or "").strip() else None


def _via_bot(api_conn_id: str | None, channel: str, method: str, send) -> tuple[str, str, str] | None:
    """``send(client, channel)`` with the Slack Web API client of ``api_conn_id`` (channel from the
    connection's extra ``channel``, else ``channel``); None when that connection is not defined."""
    from castmatch.describe import describe

    api = _defined(api_conn_id)
    if api is None:
        return None
    where = (api.extra_dejson or {}).get("channel") or channel
    try:
        from airflow.providers.slack.hooks.slack import SlackHook

        send(SlackHook(slack_conn_id=api_conn_id), where)
    except Exception as exc:  # slack_sdk's errors, a refused connection
        return "failed", f"{api_conn_id} {where}", f"{method} on {api_conn_id}: {describe(exc)}"
    return "sent", f"{api_conn_id} {where}", method


def post_to_slack(text: str, *, webhook_conn_id: str = SLACK_CONN_ID, api_conn_id: str | None = None,
                  channel: str = "") -> tuple[str, str, str]:
    """Post ``text`` once: through ``chat.postMessage`` on ``api_conn_id`` (bot token; channel from the
    connection's extra ``channel``, else ``channel``) when it is defined, else through the incoming
    webhook ``webhook_conn_id``. Returns (status ``sent`` | ``not_sent`` | ``failed``, where, detail);
    never raises: an alert that cannot reach Slack is still recorded."""
    from castmatch.describe import describe

    sent = _via_bot(api_conn_id, channel, "chat.postMessage",
                    lambda hook, where: hook.call("chat.postMessage", json={"channel": where, "text": text}))
    if sent is not None:
        return sent
    if _defined(webhook_conn_id) is not None:
        try:
            from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

            SlackWebhookHook(slack_webhook_conn_id=webhook_conn_id).send(text=text)
        except Exception as exc:
            return "failed", webhook_conn_id, f"webhook {webhook_conn_id}: {describe(exc)}"
        return "sent", webhook_conn_id, "incoming webhook"
    named = " or ".join(repr(c) for c in (api_conn_id, webhook_conn_id) if c)
    return "not_sent", "", f"no Slack connection {named} with a token or webhook URL (recorded and logged only)"


def upload_to_slack(text: str, files: list[tuple[str, str]], *, webhook_conn_id: str = SLACK_CONN_ID,
                    api_conn_id: str | None = None, channel: str = "", link: str = "") -> tuple[str, str, str]:
    """Post ``files`` ((path, title), ...) with ``text`` as their comment through ``files_upload_v2``
    on ``api_conn_id`` when it is defined; else ``text`` and ``link`` (where the files are) through
    the webhook. Same result and no-raise contract as ``post_to_slack``."""
    sent = _via_bot(api_conn_id, channel, f"files_upload_v2 ({len(files)} files)",
                    lambda hook, where: hook.client.files_upload_v2(
                        channel=where, initial_comment=text,
                        file_uploads=[{"file": path, "title": title} for path, title in files]))
    if sent is not None:
        return sent
    return post_to_slack(text + (f"\n{link}" if link else ""), webhook_conn_id=webhook_conn_id)


def human_review_announcement(conn_id: str = SLACK_CONN_ID) -> SlackAnnouncement:
    """What a person is asked on a veto or a NO-GO, with where to answer (on the roadmap's Slack
    connection, ``roadmap.yaml`` ``connections.slack``)."""
    return SlackAnnouncement(
        ":rotating_light: *{{ task.subject }}*\n{{ task.body }}\n\n"
        "Answer in Airflow: DAG `{{ ti.dag_id }}`, run `{{ ti.run_id }}`, task `{{ ti.task_id }}` (Required Actions).",
        slack_webhook_conn_id=conn_id,
    )
