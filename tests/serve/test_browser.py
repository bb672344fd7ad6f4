"""The playground page in a real headless browser (Chromium through selenium): it lists the models, sends one
prompt to two of them at once, and both answers stream in, equal to local greedy generation."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import BASE, Served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="no headless browser: the browser test needs chromium and chromedriver on PATH "
        "(Debian: apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="the browser test needs selenium (pip install selenium)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,820"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def _answers(driver: Any, models: list[str], timeout: float = 60) -> dict[str, str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def finished(d: Any) -> bool:
        states = [
            d.find_element(By.CSS_SELECTOR, f'.answer[data-model="{m}"]').get_attribute("data-state") for m in models
        ]
        assert "error" not in states, [d.find_element(By.CSS_SELECTOR, ".answer .status").text]
        return all(s == "done" for s in states)

    WebDriverWait(driver, timeout).until(finished)
    return {
        m: driver.find_element(By.CSS_SELECTOR, f'.answer[data-model="{m}"] .text').get_attribute("textContent")
        for m in models
    }


def test_the_page_streams_two_models_side_by_side(served: Served, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(served.url + "/")
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#models input")) == 3)
    boxes = {b.get_attribute("value"): b for b in browser.find_elements(By.CSS_SELECTOR, "#models input")}
    assert list(boxes) == [BASE, "alpha", "beta-dir"]
    for name, box in boxes.items():  # pick the base and beta-dir
        if box.is_selected() != (name in (BASE, "beta-dir")):
            box.click()
    Select(browser.find_element(By.ID, "mode")).select_by_value("completion")
    for field, value in (("max_tokens", "14"), ("temperature", "0")):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    prompt = "Tom has 5 pens and buys 2 more."
    browser.find_element(By.ID, "prompt").send_keys(prompt)
    before = len(served.running.scheduler.history)
    browser.find_element(By.ID, "send").click()
    got = _answers(browser, [BASE, "beta-dir"])
    assert got == {m: served.local(m, prompt, 14).text for m in (BASE, "beta-dir")}
    assert all(got.values())
    status = browser.find_element(By.CSS_SELECTOR, '.answer[data-model="beta-dir"] .status').text
    assert status.startswith("done: ") and "14 tokens" in status
    batches = list(served.running.scheduler.history)[before:]
    assert sum(b.size for b in batches) == 2

    # chat mode, same two models: the page sends the messages through the chat template
    Select(browser.find_element(By.ID, "mode")).select_by_value("chat")
    browser.find_element(By.ID, "prompt").clear()
    browser.find_element(By.ID, "prompt").send_keys("Hi there")
    browser.find_element(By.ID, "send").click()
    got = _answers(browser, [BASE, "beta-dir"])
    assert got == {m: served.local(m, "[user] Hi there\n[assistant] ", 14).text for m in (BASE, "beta-dir")}

    shot = os.environ.get("LLM_ADAPTERS_PLAYGROUND_SCREENSHOT")  # docs/images/playground.png is taken this way
    if shot:
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(shot)
