"""castmatch_roadmap starts the next week only on GO at every decision point of the week."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from castmatch.operators.decision import RoadmapDecisionCheck
from castmatch.store import Store

RUN = "manual__2026-06-01"


def check(week: int) -> dict:
    op = RoadmapDecisionCheck(task_id=f"decisions_week_{week:02d}", week=week)
    return op.execute({"ti": SimpleNamespace(run_id=RUN)})


def decide(store, point, week, decision):
    store.save_decision(run_key=f"roadmap:{RUN}", decision_point=point, week=week, decision=decision,
                        decided_by="castmatch", reason=f"{decision} for the test", gates={}, kpis_ok=True)


class TestRoadmapDecisionCheck:
    def test_go_lets_the_roadmap_proceed(self, pg_url):
        decide(Store(pg_url), "day7_check", 1, "GO")
        assert check(1) == {"week": 1, "decisions": {"day7_check": "GO"}}

    def test_no_go_stops_the_roadmap_with_the_reason(self, pg_url):
        decide(Store(pg_url), "day14_check", 2, "NO_GO")
        with pytest.raises(AirflowFailException, match="NO-GO at day14_check: NO_GO for the test"):
            check(2)

    def test_a_missing_decision_never_counts_as_go(self, pg_url):
        with pytest.raises(AirflowFailException, match="no decision recorded for phase1_end_check"):
            check(4)

    def test_an_override_replaces_the_decision(self, pg_url):
        store = Store(pg_url)
        decide(store, "day7_check", 1, "NO_GO")
        decide(store, "day7_check", 1, "GO")  # e.g. a person overturned it
        assert check(1)["decisions"] == {"day7_check": "GO"}
        assert len(store.decisions(f"roadmap:{RUN}")) == 1
