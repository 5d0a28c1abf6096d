"""The UI path: open the pipeline deployment in the Prefect UI, press Run > Quick run, and
watch the run complete. Drives Debian's chromium headless through chromium-driver."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.screenshot import CHROMIUM_FLAGS
from tests.slow.conftest import RunningStack
from tests.slow.stack import REPO, poll
from tests.system_deps import PACKAGES, require_system

pytestmark = pytest.mark.slow

CHROMIUM = PACKAGES["chromium"].files[0]
DRIVER = PACKAGES["chromium-driver"].files[0]
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="session")
def chromium_driver() -> None:
    # Session-scoped and requested first, so a missing browser skips before the stack starts.
    require_system("chromium", "chromium-driver")


@pytest.fixture
def browser(chromium_driver: None, tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        *CHROMIUM_FLAGS,
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshots_dir(tmp_path: Path) -> tuple[Path, Path]:
    kept = Path(os.environ.get("LLMSYNTH_TEST_OUTPUT", REPO / "test-output")) / "ui"
    kept.mkdir(parents=True, exist_ok=True)
    return tmp_path / "screenshots", kept


def test_quick_run_from_the_ui(
    chromium_driver: None,
    prefect_stack: RunningStack,
    browser: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    shots, kept = _screenshots_dir(tmp_path)
    shots.mkdir()

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"{name}.png"))

    stack = prefect_stack
    pipeline_id = stack.deployment_id("pipeline", "pipeline")
    before = {run["id"] for run in stack.flow_runs(pipeline_id)}
    wait = WebDriverWait(browser, 60)
    console: list[dict[str, Any]] = []
    try:
        browser.get(f"{stack.stack.ui_url}/deployments")
        wait.until(ec.element_to_be_clickable((By.PARTIAL_LINK_TEXT, "pipeline"))).click()
        wait.until(ec.url_contains(f"/deployments/deployment/{pipeline_id}"))
        run_button = wait.until(
            ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Run']"))
        )
        shot("1-deployment")
        run_button.click()
        quick = wait.until(
            ec.element_to_be_clickable((By.XPATH, "//*[normalize-space()='Quick run']"))
        )
        shot("2-run-menu")
        quick.click()
        # This UI shows the parameter form (defaults and descriptions filled in) to confirm.
        confirm = WebDriverWait(browser, 10).until(
            ec.element_to_be_clickable(
                (By.XPATH, "//*[@role='dialog']//button[normalize-space()='Run']")
            )
        )
        # The form fills itself from the deployment's defaults; let it settle before submitting.
        # Which field comes first depends on the database (PostgreSQL's jsonb orders an object's
        # keys by length), so look for the experiment's name in any of them.
        WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda driver: any(
                field.get_attribute("value") == "flow-test"
                for field in driver.find_elements(
                    By.XPATH, "//*[@role='dialog']//*[self::textarea or self::input]"
                )
            )
        )
        time.sleep(1.0)
        shot("3-parameters-form")
        # On PostgreSQL the server takes the run however busy the workers' polls keep it (on
        # SQLite it could answer 503, upstream PrefectHQ/prefect#18934): one click, no retries.
        confirm.click()
        started = poll(lambda: len(stack.flow_runs(pipeline_id)) > len(before), timeout_s=30)
        console.extend(browser.get_log("browser"))
        assert started, "the UI's Run did not create a flow run:\n" + "\n".join(
            str(entry) for entry in console[-20:]
        )
        (new,) = [run for run in stack.flow_runs(pipeline_id) if run["id"] not in before]
        shot("4-started")
        finished = poll(lambda: stack.flow_run(new["id"])["state"]["type"] in FINAL, 240)
        assert finished, stack.describe(new["id"])
        browser.get(f"{stack.stack.ui_url}/runs/flow-run/{new['id']}")
        wait.until(ec.presence_of_element_located((By.XPATH, "//*[contains(., 'Completed')]")))
        shot("5-completed")
        assert stack.flow_run(new["id"])["state"]["type"] == "COMPLETED", stack.describe(new["id"])
        # Quick run means the deployment's own defaults: the tiny experiment.
        assert stack.flow_run(new["id"])["parameters"]["config"]["name"] == "flow-test"
    finally:
        shot("last")
        console.extend(browser.get_log("browser"))
        (shots / "browser-console.log").write_text("\n".join(str(entry) for entry in console))
        for picture in shots.iterdir():
            shutil.copy(picture, kept / picture.name)
        with capsys.disabled():
            print(f"\nUI screenshots: {kept}")
