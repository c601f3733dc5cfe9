"""``StandupOperator``: every agent's daily standup in one task, through the Message Batches API
(half price, ``operators.batch``), waiting deferrably; on the offline backend the reports are built
directly. ``StandupActionsOperator``: the standup's automated actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from castmatch.operators.batch import ClaudeBatchMixin


def standup_run(roadmap_dir: str | None):
    """The roadmap, the store and the run the standup reports on (the roadmap's latest)."""
    from castmatch.config import load_roadmap_cached
    from castmatch.runs import resolve_run, roadmap_id_of
    from castmatch.store import Store

    config = load_roadmap_cached(roadmap_dir)
    config.raise_for_issues()
    store = Store()
    run = resolve_run(store, roadmap_id_of(config))
    return config, store, run["run_key"] if run else None


class StandupOperator(ClaudeBatchMixin, BaseOperator):
    template_fields: Sequence[str] = ("standup_date",)

    def __init__(self, *, roadmap_dir: str | None = None, standup_date: str = "{{ ds }}",
                 timeout: float = 24 * 3600, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.roadmap_dir = roadmap_dir
        self.standup_date = standup_date
        self.timeout = timeout

    def _setup(self):
        return standup_run(self.roadmap_dir)

    def execute(self, context) -> dict:
        from castmatch.llm.backends import backend_name
        from castmatch.runs import roadmap_id_of
        from castmatch.standup import offline_report, standup_body, standup_facts

        config, store, run_key = self._setup()
        self.log.info("standup %s reports on run %s", self.standup_date, run_key or "(none yet: seed baselines)")
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        facts = {a: standup_facts(config, store, a, since, run_key) for a in config.agents}
        backend = backend_name(config.llm.conn_id)
        run_id = context["ti"].run_id
        if backend == "offline":
            for agent_id, f in facts.items():
                store.save_standup(roadmap_id=roadmap_id_of(config), standup_date=self.standup_date,
                                   agent_id=agent_id, run_id=run_id, backend="offline", model=config.agents[agent_id].model,
                                   report=offline_report(f).model_dump())
            self.log.info("standup %s: %d offline reports stored", self.standup_date, len(facts))
            return {"standup_date": self.standup_date, "reports": len(facts), "backend": "offline"}
        if backend in ("record", "replay"):
            self.log.info("standups go through the Message Batches API, which cassettes do not cover: using live")
        requests = [{"custom_id": agent_id, "params": standup_body(config, config.agents[agent_id], f, self.standup_date)}
                    for agent_id, f in facts.items()]
        self.defer_batch(context, config, requests, method_name="execute_complete", timeout=self.timeout)

    def execute_complete(self, context, event: Any = None) -> dict:
        from airflow.sdk.exceptions import AirflowException

        from castmatch.operators.batch import book_batch_call, tool_input
        from castmatch.runs import roadmap_id_of
        from castmatch.standup import StandupReport

        config, store, run_key = self._setup()
        ti = context["ti"]
        stored, problems = 0, []
        for agent_id, message, why_not in self.batch_results(config, event):
            if message is None:
                problems.append(f"{agent_id}: {why_not}")
                continue
            outcome = "ok"
            try:
                report = StandupReport.model_validate(tool_input(message))
                store.save_standup(roadmap_id=roadmap_id_of(config), standup_date=self.standup_date,
                                   agent_id=agent_id, run_id=ti.run_id, backend="batch", model=message.model,
                                   report=report.model_dump(), batch_id=self.batch_id)
                stored += 1
            except Exception as exc:  # one bad report never loses the others
                outcome = "malformed"
                problems.append(f"{agent_id}: {exc}")
            book_batch_call(config, store, ti, message, run_key=run_key, purpose="standup", agent_id=agent_id,
                            batch_id=self.batch_id, outcome=outcome)
        self.log.info("standup %s: %d reports stored from batch %s; problems: %s", self.standup_date, stored,
                      self.batch_id, problems or "none")
        if problems and not stored:
            raise AirflowException(f"standup batch {self.batch_id} gave no usable report: {problems}")
        return {"standup_date": self.standup_date, "reports": stored, "batch_id": self.batch_id, "problems": problems}


class StandupActionsOperator(BaseOperator):
    """The standup's automated actions (``castmatch.standup.apply_actions``) on the run it reported
    on, from the day's stored reports; recorded as the run's ``standup`` checkpoint of the day
    (``castmatch checkpoints``). Returns the DAG runs to start (units unblocked or reassigned)."""

    template_fields: Sequence[str] = ("standup_date",)
    ui_color = "#e8fde8"

    def __init__(self, *, roadmap_dir: str | None = None, standup_date: str = "{{ ds }}", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.roadmap_dir = roadmap_dir
        self.standup_date = standup_date

    def execute(self, context) -> list[dict]:
        from castmatch.runs import roadmap_id_of, run_clock
        from castmatch.standup import apply_actions

        config, store, run_key = standup_run(self.roadmap_dir)
        if run_key is None:
            self.log.info("standup %s: no run yet, no action", self.standup_date)
            return []
        reports = {r["agent_id"]: r["report"] for r in store.standups(self.standup_date, roadmap_id=roadmap_id_of(config))}
        run = store.run(run_key)
        now = dt.datetime.now(dt.UTC)
        actions, triggers = apply_actions(config, store, run_key=run_key, standup_date=self.standup_date,
                                          reports=reports, clock=run["clock"], since=now - dt.timedelta(days=1))
        clock = run_clock(config, store, run_key, run["clock"])
        day = clock.day_of(now, max(config.week_numbers) * config.roadmap.days_per_week)
        counts = {kind: sum(1 for a in actions if a["kind"] == kind) for kind in {a["kind"] for a in actions}}
        store.save_checkpoint(run_key=run_key, checkpoint_id="standup", day=day, week=clock.week_of(day), moment=now,
                              figures={"standup": {"date": self.standup_date, "reports": len(reports), "actions": counts}},
                              actions=actions, written_by="the agents' standup reports",
                              summary=f"Daily standup {self.standup_date}, day {day}: {len(reports)} report(s); "
                                      + (", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
                                         or "no action"))
        for action in actions:
            self.log.info("  %s", action)
        self.log.info("standup %s: %d action(s) on run %s; %d unit(s) to start", self.standup_date, len(actions),
                      run_key, len(triggers))
        return triggers
