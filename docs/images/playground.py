"""Take docs/images/playground.png: start ``llm-adapters serve`` with the given arguments, open the playground in
headless Chromium, send one prompt to every model, wait for the answers and save a screenshot.

    python docs/images/playground.py -- --model smollm2-135m --adapter-path arithmetic=runs/demo/adapter

Needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver) and selenium.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

PROMPT = "Hugo has 20 stamps. He gets 3 more. How many stamps does Hugo have now?"


def start(serve_args: list[str]) -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).with_name("llm-adapters")
    proc = subprocess.Popen([str(exe), "serve", "--port", "0", *serve_args], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        if not line:
            break
        sys.stderr.write(line)
        found = re.search(r"\(playground\) and (http://[^ ]+)/v1 \(API\)", line)
        if found:
            return proc, found.group(1)
    proc.kill()
    raise SystemExit("the server did not start")


def shrink(png: Path) -> None:
    """A palette of 64 colours (the page has few): a third of the size, no visible change."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("playground.png"))
    parser.add_argument("--max-tokens", default="40")
    parser.add_argument("serve_args", nargs="*", help="Arguments for llm-adapters serve (after --).")
    args = parser.parse_args()
    proc, url = start(args.serve_args)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)  # explicit paths: selenium fetches nothing
    try:
        metrics = {"width": 1100, "height": 660, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # the picture's exact size
        driver.get(url + "/")
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#models input"))
        for box in driver.find_elements(By.CSS_SELECTOR, "#models input"):
            if not box.is_selected():
                box.click()
        Select(driver.find_element(By.ID, "mode")).select_by_value("chat")
        tokens = driver.find_element(By.ID, "max_tokens")
        tokens.clear()
        tokens.send_keys(args.max_tokens)
        driver.find_element(By.ID, "prompt").send_keys(PROMPT)
        driver.find_element(By.ID, "send").click()
        WebDriverWait(driver, 600).until(
            lambda d: all(
                a.get_attribute("data-state") in ("done", "error") for a in d.find_elements(By.CLASS_NAME, "answer")
            )
        )
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(args.out))
        shrink(args.out)
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
