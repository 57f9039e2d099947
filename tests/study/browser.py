"""Open a page in a real headless Chromium (Debian's `chromium` + `chromium-driver`, through
Selenium) and return what a reader gets: the page's text, its console messages and a screenshot."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,2000",
)


def available() -> str | None:
    """Why the browser cannot run here (None when it can)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        return (
            f"{', '.join(missing)} missing: apt-get install chromium chromium-driver (.ci/run does)"
        )
    return None


@dataclass
class Rendered:
    text: str
    console: list[dict]
    screenshot: bytes
    requests: list[str]


def render(page: Path) -> Rendered:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="fl-chromium-") as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            uri = page.resolve().as_uri()
            driver.get(uri)
            text = driver.find_element("tag name", "body").text
            console = driver.get_log("browser")
            requests = []  # every URL the page itself asked for (the browser's own tabs aside)
            for entry in driver.get_log("performance"):
                message = json.loads(entry["message"])["message"]
                params = message.get("params", {})
                if (
                    message["method"] == "Network.requestWillBeSent"
                    and params.get("documentURL") == uri
                ):
                    requests.append(params["request"]["url"])
            screenshot = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    return Rendered(text, console, screenshot, requests)


def screenshot_section(page: Path, section_id: str, out: Path, width: int = 1280) -> Path:
    """A PNG of one section of the page (how docs/report_html.png was made):
    `python -m tests.study.browser PAGE SECTION_ID OUT`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="fl-chromium-") as profile:
        for flag in (*FLAGS[:-1], f"--window-size={width},1000", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.get(page.resolve().as_uri())
            height = driver.execute_script("return document.body.scrollHeight")
            driver.set_window_size(width, height + 200)
            out.write_bytes(driver.find_element("id", section_id).screenshot_as_png)
        finally:
            driver.quit()
    return out


if __name__ == "__main__":
    import sys

    print(screenshot_section(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
