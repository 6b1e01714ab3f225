"""The run reports in a real browser: an offboarding and a permission fix are run through the
tabflow binary against the emulator, and the HTML reports they write are opened in Debian's
Chromium (through ChromeDriver) and read back as a person would see them: every step is a
visible section, every item a visible table row, text large enough to read and no horizontal
scrolling at a laptop's width. The CSV and JSON reports of the same runs are parsed with
Python's own csv and json modules and must agree with the HTML."""

import csv
import json
import os
import subprocess

import pytest
from selenium.webdriver.common.by import By

import chromium
from tabflow_bin import binary


@pytest.fixture(scope="module")
def browser():
    d = chromium.start()
    yield d
    d.quit()


def tabflow(emulator, home, *args):
    env = dict(
        os.environ,
        TABLEAU_SERVER=emulator.url,
        TABLEAU_SITE="demo",
        TABLEAU_PAT_NAME="tabflow",
        TABLEAU_PAT_SECRET="tabflow",
        TABFLOW_HOME=str(home),
        TABFLOW_ACTOR="report-reviewer",
    )
    return subprocess.run([binary(), *args], env=env, capture_output=True, text=True, timeout=120)


def run_workflow(emulator, home, intent, *params):
    plan = home / f"{intent}.json"
    args = ["plan", "--intent", intent, "-o", str(plan)]
    for p in params:
        args += ["--param", p]
    r = tabflow(emulator, home, *args)
    assert r.returncode == 0, r.stderr
    r = tabflow(emulator, home, "apply", str(plan), "--approve", "all", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "succeeded", out
    return {x["format"]: x["path"] for x in out["reports"]}


def check_in_browser(browser, paths):
    report = json.load(open(paths["json"], encoding="utf-8"))
    browser.get("file://" + paths["html"])
    assert browser.title == report["title"]
    body = browser.find_element(By.TAG_NAME, "body")
    assert report["title"] in body.text
    sections = browser.find_elements(By.CSS_SELECTOR, "section.step")
    assert len(sections) == len(report["steps"])
    for sec, step in zip(sections, report["steps"]):
        assert sec.is_displayed()
        assert sec.get_attribute("id") == step["id"]
        heading = sec.find_element(By.TAG_NAME, "h2")
        assert heading.is_displayed() and step["title"] in heading.text
        rows = sec.find_elements(By.CSS_SELECTOR, "table.items tbody tr")
        assert len(rows) == max(len(step["items"]), 1), step["id"]
        for row, item in zip(rows, step["items"]):
            assert row.is_displayed()
            assert item["name"] in row.text
    # Readable: body text at least 12 px, headings larger, and nothing wider than the window.
    size = lambda el: float(browser.execute_script("return parseFloat(getComputedStyle(arguments[0]).fontSize)", el))
    assert size(body) >= 12
    cell = browser.find_element(By.CSS_SELECTOR, "table.items td")
    assert size(cell) >= 12
    assert size(browser.find_element(By.TAG_NAME, "h1")) > size(body)
    scroll, client = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, f"the report scrolls sideways ({scroll}px in a {client}px window)"
    assert not browser.find_elements(By.TAG_NAME, "script")
    png = browser.get_screenshot_as_png()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    return report


def check_csv(paths, report):
    with open(paths["csv"], newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, strict=True))
    header, data = rows[0], rows[1:]
    assert len(set(len(r) for r in rows)) == 1, "every CSV row has the header's columns"
    items = [r for r in data if r[header.index("section")] == "item"]
    assert len(items) == sum(len(s["items"]) for s in report["steps"])
    steps = [r for r in data if r[header.index("section")] == "step"]
    assert [r[header.index("step")] for r in steps] == [s["id"] for s in report["steps"]]
    names = {r[header.index("name")] for r in items}
    for s in report["steps"]:
        for it in s["items"]:
            assert it["name"] in names


def test_offboarding_reports_read_in_chromium(emulator, tmp_path, browser):
    paths = run_workflow(
        emulator, tmp_path, "offboard-user", "user=jsmith", "new_owner=Tom Baker", "remove_access=true"
    )
    assert set(paths) == {"md", "html", "csv", "json"}
    report = check_in_browser(browser, paths)
    check_csv(paths, report)
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Run by\nreport-reviewer" in text or "report-reviewer" in text
    # The people told about the hand-over are a table of names and addresses, not raw keys.
    assert "Tom Baker" in text and "tbaker@example.com" in text
    assert "people.8f02" not in text


def test_permission_fix_reports_read_in_chromium(emulator, tmp_path, browser):
    paths = run_workflow(emulator, tmp_path, "update-permissions", "tags=sensitive")
    report = check_in_browser(browser, paths)
    check_csv(paths, report)
    assert "This will affect" in browser.find_element(By.TAG_NAME, "body").text
