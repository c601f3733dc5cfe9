"""The demo's KPI sources (make run): measured from the local demo product and the shipped sample
reports, labelled as demo in every sample; without demo mode only the real sources count."""

from __future__ import annotations

import pytest

from castmatch.config import load_roadmap
from castmatch.demo_service import DemoService
from castmatch.kpis import collect_kpi
from castmatch.store import Store

RUN = "castmatch:roadmap:demo"


@pytest.fixture
def demo():
    with DemoService(0, users=5, think=0.05, traffic=False) as service:
        yield service


def on(service, config, kpi_id: str):
    """The CastMatch KPI with its demo source pointed at this test's demo product."""
    kpi = next(k for k in config.kpis.kpis if k.id == kpi_id)
    url = kpi.demo_source.url.replace("http://127.0.0.1:8765", service.url)
    return kpi.model_copy(update={"demo_source": kpi.demo_source.model_copy(update={"url": url})})


class TestDemoSources:
    def test_demo_mode_measures_the_demo_product_and_labels_every_value(self, pg_url, demo, tmp_path, monkeypatch):
        config, store = load_roadmap(), Store(pg_url)
        monkeypatch.setenv("CASTMATCH_DEMO", "1")
        latency = collect_kpi(on(demo, config, "api_response_time"), config, store, base_dir=tmp_path, run_key=RUN)
        assert latency["status"] == "ok" and 0.02 < latency["value"] < 1.0  # timed requests, ~0.05 s each
        assert latency["source"].startswith("demo:http_latency:") and latency["detail"].startswith("DEMO SOURCE")
        assert demo.product.metrics()["conversations_total"] == 5  # the 5 timed requests were served
        users = collect_kpi(on(demo, config, "beta_users_engaged"), config, store, base_dir=tmp_path, run_key=RUN)
        assert (users["status"], users["source"]) == ("ok", "demo:http_json:http://127.0.0.1:"
                                                      f"{demo.url.rsplit(':', 1)[1]}/metrics (beta_users_engaged)")
        assert users["value"] == demo.product.metrics()["beta_users_engaged"] > 0
        coverage = collect_kpi(next(k for k in config.kpis.kpis if k.id == "test_coverage"), config, store,
                               base_dir=tmp_path, run_key=RUN)
        assert coverage["value"] == pytest.approx(93.0) and "coverage.sample.xml" in coverage["source"]

    def test_without_demo_mode_only_the_real_source_counts(self, pg_url, demo, tmp_path, monkeypatch):
        config, store = load_roadmap(), Store(pg_url)
        monkeypatch.delenv("CASTMATCH_DEMO", raising=False)
        sample = collect_kpi(on(demo, config, "api_response_time"), config, store, base_dir=tmp_path, run_key=RUN)
        assert sample["status"] == "missing" and sample["source"].startswith("llm_audit:")  # fails closed
        assert demo.product.metrics()["conversations_total"] == 0

    def test_a_demo_product_that_is_down_fails_closed(self, pg_url, tmp_path, monkeypatch):
        config, store = load_roadmap(), Store(pg_url)
        monkeypatch.setenv("CASTMATCH_DEMO", "1")
        with DemoService(0, traffic=False) as gone:
            kpi = on(gone, config, "api_response_time")
        sample = collect_kpi(kpi, config, store, base_dir=tmp_path, run_key=RUN)
        assert sample["status"] == "missing" and "Connection refused" in sample["detail"]
