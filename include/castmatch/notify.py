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
        from castmatch.probes.checks import ProbeFailed, get_connection

        try:
            conn = get_connection(self.slack_webhook_conn_id)
        except ProbeFailed as exc:
            self.log.warning("not announced on Slack: %s", exc)
            return
        if not (conn.password or "").strip():
            self.log.warning("not announced on Slack: connection %r has no webhook URL", self.slack_webhook_conn_id)
            return
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id=self.slack_webhook_conn_id).send(text=self.text)
        self.log.info("announced on Slack (%s)", self.slack_webhook_conn_id)


def human_review_announcement(conn_id: str = SLACK_CONN_ID) -> SlackAnnouncement:
    """What a person is asked on a veto or a NO-GO, with where to answer (on the roadmap's Slack
    connection, ``roadmap.yaml`` ``connections.slack``)."""
    return SlackAnnouncement(
        ":rotating_light: *{{ task.subject }}*\n{{ task.body }}\n\n"
        "Answer in Airflow: DAG `{{ ti.dag_id }}`, run `{{ ti.run_id }}`, task `{{ ti.task_id }}` (Required Actions).",
        slack_webhook_conn_id=conn_id,
    )
