"""Debian's Chromium driven headless through its ChromeDriver (installed by
scripts/setup-browser), shared by the browser tests. Selenium is told never to fetch a driver."""

import os

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def start(width=1280, height=900, phone=False):
    """A new headless Chromium with a profile (cookies) of its own, at this window size; with
    `phone`, a phone's screen of this size (Chromium's device emulation: a desktop window is
    never narrower than 500 px, and the page's viewport meta tag is honoured)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("Chromium is not installed: run scripts/setup-browser (scripts/test does)")
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium fetch a driver
    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"]:
        opts.add_argument(a)
    # The console's messages, for tests that check a page logs no error (`get_log("browser")`).
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if phone:
        opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
