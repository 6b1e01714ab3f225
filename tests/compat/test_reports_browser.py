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


def run_workflow(emulator, home, intent, *params, answers=()):
    plan = home / f"{intent}.json"
    args = ["plan", "--intent", intent, "-o", str(plan)]
    for p in params:
        args += ["--param", p]
    for a in answers:
        args += ["--answer", a]
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


# ---- charts: the cleanup's days since last view, the licenses freed by type ----

XSS = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">"


def rename_a_stale_finance_workbook(emulator):
    """Gives a stale Finance workbook a name that is markup, through TSC
    (the official client) against the emulator: the report must show it as text."""
    import datetime

    import tableauserverclient as TSC

    server = TSC.Server(emulator.url, use_server_version=True)
    server.auth.sign_in(TSC.PersonalAccessTokenAuth("tabflow", "tabflow", "demo"))
    snap = emulator.snapshot()
    finance = {p["id"] for p in snap["projects"] if p["name"] == "Finance"}
    now = datetime.datetime.fromisoformat(snap["now"].replace("Z", "+00:00"))

    def last(w):
        seen = [v["last_viewed_at"] for v in w.get("views", []) if v.get("last_viewed_at")]
        return max(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in seen) if seen else None

    old = [
        w
        for w in snap["workbooks"]
        if w["project_id"] in finance and last(w) and (now - last(w)).days > 100
        and datetime.datetime.fromisoformat(w["updated_at"].replace("Z", "+00:00")) < now - datetime.timedelta(days=100)
        and datetime.datetime.fromisoformat(w["created_at"].replace("Z", "+00:00")) < now - datetime.timedelta(days=100)
    ]
    assert old, "the demo site has stale Finance workbooks"
    wb = server.workbooks.get_by_id(old[0]["id"])
    wb.name = XSS
    server.workbooks.update(wb)
    server.auth.sign_out()


def svg_bars(browser, section):
    """The chart's bars as drawn: (label, value, rendered height in px), left to right."""
    return browser.execute_script(
        """return Array.from(arguments[0].querySelectorAll('figure.chart svg rect.bar')).map(r => {
             const b = r.getBoundingClientRect();
             return [r.getAttribute('data-label'), Number(r.getAttribute('data-value')), b.height, b.left, b.width];
           });""",
        section,
    )


def no_console_errors(browser):
    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors


def test_cleanup_report_draws_days_since_last_view_with_the_cutoff(emulator, tmp_path, browser):
    rename_a_stale_finance_workbook(emulator)
    paths = run_workflow(emulator, tmp_path, "archive-stale-content", "project=Finance", "stale_days=90", answers=["q1=archive-all"])
    browser.get_log("browser")  # drop what earlier pages logged
    report = check_in_browser(browser, paths)
    no_console_errors(browser)
    find = next(s for s in report["steps"] if s["kind"] == "find-stale-workbooks")
    chart = find["chart"]
    assert chart["kind"] == "histogram" and chart["cutoff"]["label"] == "cut-off: 90 days"
    section = browser.find_element(By.ID, find["id"])
    svg = section.find_element(By.CSS_SELECTOR, "figure.chart svg")
    assert svg.is_displayed() and svg.size["width"] >= 300 and svg.size["height"] >= 120
    bars = svg_bars(browser, section)
    assert [(b[0], b[1]) for b in bars] == [(b["label"], b["value"]) for b in chart["bars"]]
    # Heights in proportion to the values; every workbook of Finance is in a bar.
    tallest = max(bars, key=lambda b: b[1])
    assert tallest[1] > 0
    for label, value, height, _, _ in bars:
        assert abs(height / tallest[2] - value / tallest[1]) < 0.02, (label, value, height)
    scanned = next(v for k, v in find_facts(report, find) if k == "scanned")
    assert sum(b[1] for b in bars) <= int(scanned)
    # The stale bars the plan archives are the marked ones, right of the dashed cut-off line.
    line = svg.find_element(By.CSS_SELECTOR, "line.cutoff")
    x = line.rect["x"]
    for b, spec in zip(bars, chart["bars"]):
        if spec["marked"]:
            assert b[3] >= x - 0.5, (b, x)
        else:
            assert b[3] + b[4] <= x + 0.5, (b, x)
    marked = sum(b["value"] for b in chart["bars"] if b["marked"])
    assert marked >= len(find["items"]), "every candidate is past the cut-off or never viewed"
    text = section.text
    assert "days since last view" in text and "cut-off: 90 days" in text and "workbooks" in text
    # A workbook named like markup is text on the page, and nothing of it ran.
    body = browser.find_element(By.TAG_NAME, "body").text
    assert XSS in body
    assert browser.execute_script("return window.pwned === undefined")
    assert not browser.find_elements(By.TAG_NAME, "script") and not browser.find_elements(By.CSS_SELECTOR, "img")


def find_facts(report, step):
    return [tuple(f) for f in step["facts"]]


def test_license_report_draws_licenses_freed_by_type(emulator, tmp_path, browser):
    paths = run_workflow(emulator, tmp_path, "reclaim-licenses", "inactive_days=90")
    browser.get_log("browser")
    report = check_in_browser(browser, paths)
    no_console_errors(browser)
    change = next(s for s in report["steps"] if s["kind"] == "change-site-roles")
    chart = change["chart"]
    assert [b["label"] for b in chart["bars"]] == ["Creator", "Explorer", "Viewer"]
    # The bars count the users whose role the run changed, by the license their old role used.
    roles = {}
    for it in change["items"]:
        before = it["changes"][0]["before"]
        lic = {"Creator": "Creator", "Explorer": "Explorer", "ExplorerCanPublish": "Explorer", "Viewer": "Viewer"}[before]
        roles[lic] = roles.get(lic, 0) + 1
    assert {b["label"]: b["value"] for b in chart["bars"]} == {t: roles.get(t, 0) for t in ["Creator", "Explorer", "Viewer"]}
    section = browser.find_element(By.ID, change["id"])
    bars = svg_bars(browser, section)
    assert [(b[0], b[1]) for b in bars] == [(b["label"], b["value"]) for b in chart["bars"]]
    tallest = max(bars, key=lambda b: b[1])
    for label, value, height, _, width in bars:
        assert width > 20
        assert abs(height / tallest[2] - value / tallest[1]) < 0.02, (label, value, height)
    assert "Licenses freed by type" in section.text and "license type" in section.text
    assert not section.find_elements(By.CSS_SELECTOR, "line.cutoff")
