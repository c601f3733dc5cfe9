"""The Control Center in a real headless Chromium, inside a real Airflow: log in through Airflow's
own login form, open "Control Center" from the navigation, and read what a program lead reads: the
11 agents with their stored statuses, the vetoed gate's reason, and the page updating by itself
when a unit's state changes in the store. A screenshot is saved in ``test-output/``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from castmatch.store import Store
from tests.airflow_stack import AirflowStack, wait_until
from tests.helpers import week_one_with_a_veto

STARTS_AIRFLOW = True  # tests/conftest.py: one whole Airflow at a time under pytest -n 2

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
RUN = "castmatch:roadmap:manual__browser"
INSTALL = "make browser (apt-get install chromium chromium-driver)"


def chromium():
    """Debian's chromium through chromium-driver: a missing browser fails with the command to install it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.fail(f"the browser test needs chromium and chromedriver: run `{INSTALL}`")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture
def roadmap(tmp_path) -> Path:
    """The CastMatch roadmap, its Control Center refreshing every 2 s (config, not the default 15)."""
    root = tmp_path / "castmatch"
    shutil.copytree(ROOT / "include" / "roadmaps" / "castmatch", root)
    ops = root / "operations.yaml"
    ops.write_text("dashboard_refresh_seconds: 2\n" + ops.read_text())
    return root


@pytest.mark.browser
class TestControlCenterInTheBrowser:
    def test_a_lead_logs_in_opens_the_control_center_and_sees_the_run_live(self, pg_url, roadmap, monkeypatch):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        from castmatch.status import status_matrix

        store = Store(pg_url)
        config = week_one_with_a_veto(store, monkeypatch, RUN, roadmap)
        expected = {a["id"]: a["status"] for a in status_matrix(config, store, RUN)["agents"]}
        OUTPUT.mkdir(exist_ok=True)
        env = {"CASTMATCH_ROADMAP_DIR": str(roadmap), "CASTMATCH_DATABASE_URL": pg_url}
        with AirflowStack(env) as airflow:
            browser = chromium()
            try:
                wait = WebDriverWait(browser, 60)
                browser.get(airflow.url + "/")
                # Airflow's own login form (simple auth manager): admin / admin
                wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
                browser.find_element(By.NAME, "password").send_keys("admin")
                browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
                # "Control Center" in the navigation (the Browse menu)
                wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, 'button[aria-label="Browse"]'))).click()
                wait.until(ec.element_to_be_clickable(
                    (By.XPATH, "//*[@role='menuitem'][normalize-space(.)='Control Center']"))).click()
                wait.until(lambda b: "castmatch-control-center" in b.current_url)
                wait.until(ec.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))

                def rows():
                    return {r.get_attribute("data-agent"): r.find_element(By.CSS_SELECTOR, ".status").text
                            for r in browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr[data-agent]")}

                shown = wait.until(lambda b: (lambda r: r if len(r) == 11 else None)(rows()))
                assert {agent: text.split()[-1] for agent, text in shown.items()} == expected
                assert all(text.split()[0] in "●○" for text in shown.values())  # a dot beside the word
                blocked = browser.find_element(By.ID, "blocked").text
                assert "Infrastructure Gate (DevOps)" in blocked and "Connection refused" in blocked
                assert "VETOED" in browser.find_element(By.CSS_SELECTOR, '[data-gate="infrastructure_gate"]').text
                browser.switch_to.default_content()
                browser.save_screenshot(str(OUTPUT / "control_center.png"))
                browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))

                # a unit starts in the store: the page shows it by itself, no reload
                before = browser.find_element(By.ID, "updated-at").text
                agent = "ai-ml-developer"
                store.unit_started(dag_id="castmatch_week_01", run_key=RUN, run_id="w1",
                                   work_unit_id="install_anthropic_sdk", agent_id=agent, try_number=1)
                wait_until(lambda: rows()[agent].endswith("ACTIVE"), 30, f"{agent} to show ACTIVE", every=0.5)
                assert browser.find_element(By.ID, "updated-at").text != before
                assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1
            except BaseException:  # what the browser showed, for the person reading the failure
                browser.switch_to.default_content()
                browser.save_screenshot(str(OUTPUT / "control_center_failure.png"))
                (OUTPUT / "control_center_failure.html").write_text(browser.page_source)
                raise
            finally:
                browser.quit()
