"""The status page in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium).

A real local-stack run takes two builds live and rejects a third; the page must show what the route
serves now, the build's timeline and manifest, Streampixel's objection as plain text, and a rollback
confirmed on the page must take effect on the records.

Without Chromium the test skips with the reason; under CI=true it fails (scripts/install_browser.sh
installs it). UPDATE_SCREENSHOT=1 also writes docs/status-page.png.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pixelbridge_local.stack import STREAMPIXEL_PROJECT_ID, EmbeddedStack
from tests.e2e.conftest import events_of, push, rolled_back, wait_until

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "status-page.png"
HELD_PROJECT = "bp-held-project"
ROUTES = json.dumps(
    [
        {
            "id": "held",
            "buildpixelProjectId": HELD_PROJECT,
            "streampixelProjectId": STREAMPIXEL_PROJECT_ID,
            "policy": "hold",
        },
        {"id": "default", "streampixelProjectId": STREAMPIXEL_PROJECT_ID, "policy": "auto"},
    ]
)
HOSTILE_OBJECTION = "<img src=x onerror=\"document.title='owned'\"> missing <b>executable</b>"


def unavailable(reason: str) -> None:
    message = f"{reason}: run scripts/install_browser.sh (Debian chromium + chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed")
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(tool):
            unavailable(f"{tool} is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def live(stack: EmbeddedStack, build_id: str) -> dict[str, Any]:
    record: dict[str, Any] = wait_until(
        lambda: (r := stack.build(build_id)) and r["status"] == "live" and r, timeout=40
    )
    return record


def click(wait: Any, css: str) -> None:
    """Click an element of the page; again if the page's refresh replaced it meanwhile (stale)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(driver: Any) -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
        except StaleElementReferenceException:
            return False
        return True

    wait.until(attempt)


def text(wait: Any, css: str) -> str:
    """The text of an element of the page, read again if the page's refresh replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(driver: Any) -> tuple[str] | None:
        try:
            return (str(driver.find_element(By.CSS_SELECTOR, css).text),)
        except StaleElementReferenceException:
            return None

    found: tuple[str] = wait.until(attempt)
    return found[0]


def test_status_page_shows_live_builds_and_rolls_a_route_back(
    make_stack: Callable[..., EmbeddedStack], browser: Any
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    stack = make_stack(slot_seconds=1, routes_json=ROUTES)
    push(stack, "held-1", projectId=HELD_PROJECT)
    wait_until(
        lambda: (r := stack.build("held-1")) and "held for operator release" in events_of(r), timeout=40
    )
    push(stack, "page-1")
    first = live(stack, "page-1")
    push(stack, "page-2")
    second = live(stack, "page-2")
    stack.simulator.reject_next_upload(HOSTILE_OBJECTION, at_event="build.extracting")
    push(stack, "page-3")
    assert stack.wait_for_terminal("page-3", timeout=40)["status"] == "rejected"

    wait = WebDriverWait(browser, 30)
    browser.get(f"{stack.operator_url}/status")
    token = wait.until(seen.visibility_of_element_located((By.ID, "token")))
    assert browser.find_element(By.CSS_SELECTOR, "label[for=token]").text == "Operator token"
    token.send_keys(stack.operator_token)
    browser.find_element(By.ID, "open").click()

    # What the route serves now, and the build that was live before it.
    route = '[data-route="default"]'
    wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, f'{route} [data-live="page-2"]')))
    assert browser.find_elements(By.CSS_SELECTOR, f'{route} [data-earlier="page-1"]')
    card = text(wait, route)
    assert "page-3" in card and "null" not in card and "undefined" not in card

    # Keyboard focus survives the page's own refresh, which rebuilds the cards every few seconds.
    focused = browser.find_element(By.CSS_SELECTOR, f'{route} button[data-build="page-3"]')
    browser.execute_script("arguments[0].focus()", focused)
    before = browser.find_element(By.ID, "updated").text
    wait.until(lambda driver: driver.find_element(By.ID, "updated").text != before)
    with pytest.raises(StaleElementReferenceException):  # that button was replaced by a new one
        _ = focused.tag_name
    assert browser.execute_script("return document.activeElement.dataset.build") == "page-3"

    # The rejected build: the objection is shown as text, never as markup.
    click(wait, f'{route} button[data-build="page-3"]')
    objection = wait.until(seen.visibility_of_element_located((By.ID, "detail-objection-text")))
    assert objection.text == HOSTILE_OBJECTION
    assert not browser.find_elements(By.CSS_SELECTOR, "#detail img, #detail b")
    assert browser.title == "PixelBridge status"
    assert browser.find_elements(By.CSS_SELECTOR, '#detail-actions [data-action="retry"]')

    # The live build: its timeline and conversion manifest.
    click(wait, f'{route} [data-live="page-2"] button[data-build="page-2"]')
    wait.until(seen.text_to_be_present_in_element((By.ID, "detail-title"), "Build page-2"))
    timeline = text(wait, "#detail-timeline")
    assert "build.approved" in timeline and "live" in timeline
    assert "files" in text(wait, "#detail-manifest")
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        browser.set_window_size(1280, 1100)
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(SCREENSHOT))

    # Roll back from the page: asked first, then the route serves page-1's upload again.
    click(wait, f'{route} [data-action="rollback"]')
    dialog = wait.until(seen.visibility_of_element_located((By.ID, "confirm")))
    assert "page-1" in dialog.text
    browser.find_element(By.ID, "confirm-yes").click()
    rolled = rolled_back(stack, "page-1", timeout=40)
    assert rolled["liveSince"] > second["liveSince"] > first["liveSince"]
    distributed = [call.upload_id for call in stack.simulator.calls if call.endpoint == "distribute-file"]
    assert distributed == [first["uploadId"]]
    wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, f'{route} [data-live="page-1"]')))
    assert "Rollback of default to page-1 started." in browser.find_element(By.ID, "problem").text

    # The held build: the route says it waits for an operator; Release, confirmed, takes it live.
    held = '[data-route="held"]'
    assert "waiting for an operator to release it" in text(wait, held)
    click(wait, f'{held} button[data-build="held-1"]')
    release = '#detail-actions [data-action="release"]'
    click(wait, release)
    wait.until(seen.visibility_of_element_located((By.ID, "confirm")))
    before = browser.find_element(By.ID, "updated").text
    browser.find_element(By.ID, "confirm-no").click()  # cancelled: nothing is sent
    wait.until(lambda driver: driver.find_element(By.ID, "updated").text != before)
    assert "releaseRequestedAt" not in (stack.build("held-1") or {})
    click(wait, release)
    wait.until(seen.visibility_of_element_located((By.ID, "confirm")))
    browser.find_element(By.ID, "confirm-yes").click()
    assert live(stack, "held-1")["status"] == "live"
    assert "release requested" in events_of(stack.build("held-1") or {"timeline": []})
    wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, f'{held} [data-live="held-1"]')))
