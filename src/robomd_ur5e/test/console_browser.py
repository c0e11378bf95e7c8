"""Debian's chromium driven by Selenium through Debian's chromedriver (nothing downloaded)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1280,1500")


def start_browser(profile: Path):
    """A headless chromium with a fresh profile in ``profile``; skips the test without one."""
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make setup)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options,
                            service=webdriver.ChromeService(executable_path=CHROMEDRIVER))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what: str, check, timeout: float = 60.0):
    """Poll ``check`` until it returns something true (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def screenshot(browser, tmp_path: Path, name: str) -> Path:
    """Save the page as ``tmp_path/name`` (and into $ROBOMD_SCREENSHOT_DIR if set)."""
    path = tmp_path / name
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000
    if os.environ.get("ROBOMD_SCREENSHOT_DIR"):
        shutil.copy(path, Path(os.environ["ROBOMD_SCREENSHOT_DIR"]) / name)
    return path
