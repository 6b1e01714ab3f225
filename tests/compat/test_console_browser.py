"""The web console of `tabflow serve` in a real browser (headless Chromium), on the built-in
demo site, with a data directory of its own:

- a requester, on a phone-width window, signs in with a token, asks "Clean up the Finance
  project - archive workbooks not accessed in 90 days", answers the question, unticks two
  workbooks on the review page and asks for approval; it has no approve button, and the API
  answers 403 to its approval;
- an approver, in a second browser (its own cookies), opens the approval request's URL, finds
  the requester's selection ticked and approves it;
- the requester presses Run; the run page follows the run over EventSource to its end;
- the server is stopped with SIGINT (it then saves the demo site's state), and `tabflow site
  snapshot` shows the two unticked workbooks unchanged and the others archived;
- a server started again on the same data directory: the requester asks for the run's rollback
  from the runs page (only once the confirmation box is ticked) and lands on the rollback
  plan's review page, waiting for approval (the API refuses to run it); the approver approves
  it there; the requester runs it and the run page follows the rollback to its end; after it
  the site equals the one before (`tabflow site diff` exits 0).

Every page the requester sees is checked for sideways scrolling at 390 px. Screenshots of
each stage go to target/test-artifacts/console/ (or $TABFLOW_TEST_ARTIFACTS)."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import chromium
from tabflow_bin import ROOT, binary

REQUEST = "Clean up the Finance project - archive workbooks not accessed in 90 days"
ARTIFACTS = Path(os.environ.get("TABFLOW_TEST_ARTIFACTS", ROOT / "target" / "test-artifacts")) / "console"


def environment(home):
    """Only what tabflow needs: no TABLEAU_* (so the demo site is used), a data dir of its own."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TABFLOW_HOME": str(home / "data"),
        "TABFLOW_ACTOR": "console-test",
    }


def tabflow(env, *args, check=True):
    p = subprocess.run([binary(), *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, f"tabflow {' '.join(args)} exited {p.returncode}:\n{p.stderr}\n{p.stdout}"
    return p


RATE = os.environ.get("TABFLOW_CONSOLE_TEST_RATE", "").split()


class Server:
    """`tabflow serve` on a free port. Calls to the demo site are rate-limited so that a run
    lasts long enough for the run page to watch it live."""

    def __init__(self, env):
        self.proc = subprocess.Popen(
            [binary(), "serve", "--listen", "127.0.0.1:0", *RATE],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, f"serve did not start: {line!r} {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        self.url = line.split("listening on ", 1)[1].split()[0]

    def api(self, method, path, token, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self):
        """SIGINT, as Ctrl-C: the server stops and saves the demo site's state."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, f"serve exited {self.proc.returncode}: {err}"
        assert "not saved" not in err, err


class Stage:
    """Screenshots, numbered in the order taken."""

    def __init__(self):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()
        self.n = 0
        self.t0 = time.monotonic()

    def shot(self, browser, name):
        self.n += 1
        print(f"{time.monotonic() - self.t0:6.1f}s {name}")
        path = ARTIFACTS / f"{self.n:02d}-{name}.png"
        png = browser.get_screenshot_as_png()
        assert png.startswith(b"\x89PNG") and len(png) > 5_000
        path.write_bytes(png)
        return path


def no_sideways_scroll(browser, what):
    scroll, client = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert client <= 400, f"the phone window is {client}px wide"
    assert scroll <= client, f"the {what} page scrolls sideways ({scroll}px in a {client}px window)"


def sign_in(browser, server, token):
    browser.get(server.url + "/console/login")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form[action='/console/login'] button").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/console/ask"))


def wait_finished(browser):
    """The run page's EventSource delivered `finished`: the status says so, set by the page's
    script (the server-rendered page never carries data-finished)."""
    WebDriverWait(browser, 60).until(
        lambda b: b.find_element(By.ID, "status").get_attribute("data-finished")
    )
    return browser.find_element(By.ID, "status").get_attribute("data-finished")


def workbooks(snapshot_path):
    site = json.loads(Path(snapshot_path).read_text())
    return {w["id"]: w for w in site["workbooks"]}


def test_requester_and_approver_in_chromium_archive_then_roll_back(tmp_path):
    env = environment(tmp_path)
    stage = Stage()
    before, after_run, after_rollback = (tmp_path / n for n in ("before.json", "after-run.json", "after-rollback.json"))
    tabflow(env, "demo", "reset")
    tabflow(env, "site", "snapshot", "-o", str(before))
    requester = tabflow(env, "tokens", "create", "riley", "--role", "requester").stdout.strip().splitlines()[-1]
    approver = tabflow(env, "tokens", "create", "avery", "--role", "approver").stdout.strip().splitlines()[-1]

    server = Server(env)
    phone = chromium.start(390, 844, phone=True)
    desk = chromium.start()
    try:
        # The requester, on a phone: sign in, ask, answer.
        sign_in(phone, server, requester)
        no_sideways_scroll(phone, "ask")
        stage.shot(phone, "requester-ask")
        phone.find_element(By.ID, "request").send_keys(REQUEST)
        phone.find_element(By.CSS_SELECTOR, "form[action='/console/ask'] button").click()
        WebDriverWait(phone, 30).until(lambda b: "/console/plans/" in b.current_url)
        plan_url = phone.current_url
        plan_id = plan_url.rsplit("/", 1)[1]
        no_sideways_scroll(phone, "questions")
        stage.shot(phone, "requester-question")
        phone.find_element(By.CSS_SELECTOR, "input[type=radio][value='archive-all']").click()
        phone.find_element(By.CSS_SELECTOR, "form[action$='/answers'] button").click()
        # Wait for the new page before reading it (a query into a page being left can fail).
        WebDriverWait(phone, 30).until(lambda b: b.current_url != plan_url)
        WebDriverWait(phone, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, "input[name=item]"))
        plan_url = phone.current_url  # the answers make the plan anew, under an id of its own
        plan_id = plan_url.rsplit("/", 1)[1]

        # The review: every workbook ticked; untick two, ask for approval.
        boxes = phone.find_elements(By.CSS_SELECTOR, "input[name=item]")
        assert len(boxes) >= 4, "the Finance clean-up lists several workbooks"
        assert all(b.is_selected() for b in boxes)
        assert not phone.find_elements(By.CSS_SELECTOR, "button[value=approve]"), "a requester has no approve button"
        unticked = [b.get_attribute("value") for b in boxes[:2]]
        ticked = sorted(b.get_attribute("value") for b in boxes[2:])
        for b in boxes[:2]:
            b.click()
        assert [b.is_selected() for b in boxes[:2]] == [False, False]
        no_sideways_scroll(phone, "review")
        stage.shot(phone, "requester-review-two-unticked")
        phone.find_element(By.CSS_SELECTOR, "button[value=request]").click()
        WebDriverWait(phone, 30).until(lambda b: "?request=" in b.current_url)
        review_url = phone.current_url
        status = phone.find_element(By.CSS_SELECTOR, "[role=status]").text
        assert "Waiting for approval" in status, status
        assert not phone.find_elements(By.CSS_SELECTOR, "button[value=approve]")
        assert not phone.find_elements(By.CSS_SELECTOR, "form[action='/console/runs'] button"), "no Run before approval"
        stage.shot(phone, "requester-waiting-for-approval")

        # The API refuses the requester's approval.
        code, body = server.api("POST", f"/api/v1/plans/{plan_id}/approvals", requester, {"decision": "approve", "items": "all"})
        assert code == 403, body
        assert body["error"]["code"] and body["error"]["hint"], body

        # The approver, in its own browser: the requester's selection is ticked; approve it.
        sign_in(desk, server, approver)
        desk.get(review_url)
        boxes = desk.find_elements(By.CSS_SELECTOR, "input[name=item]")
        assert sorted(b.get_attribute("value") for b in boxes if b.is_selected()) == ticked
        assert sorted(b.get_attribute("value") for b in boxes if not b.is_selected()) == sorted(unticked)
        stage.shot(desk, "approver-review")
        desk.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        WebDriverWait(desk, 30).until(lambda b: "?request=" not in b.current_url)
        WebDriverWait(desk, 30, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda b: "Approved by" in b.find_element(By.CSS_SELECTOR, "[role=status]").text
        )
        stage.shot(desk, "approver-approved")

        # The requester presses Run and watches it to the end.
        phone.get(plan_url)
        assert "Approved by avery" in phone.find_element(By.CSS_SELECTOR, "[role=status]").text
        phone.find_element(By.CSS_SELECTOR, "form[action='/console/runs'] button").click()
        WebDriverWait(phone, 30).until(lambda b: "/console/runs/" in b.current_url)
        WebDriverWait(phone, 30).until(lambda b: b.find_elements(By.ID, "status"))
        run_id = phone.current_url.rsplit("/", 1)[1]
        stage.shot(phone, "requester-run-started")
        finished = wait_finished(phone)
        assert finished == "partial", "two approved-out items make a partial run (DESIGN.md)"
        bars = phone.find_elements(By.CSS_SELECTOR, "#steps progress")
        assert bars, "the run page drew a progress bar per step from the run's events"
        for bar in bars:
            assert bar.get_attribute("value") == bar.get_attribute("max"), "every bar is full at the end"
        text = phone.find_element(By.ID, "steps").text
        assert f"{len(ticked)} done, {len(unticked)} skipped, 0 failed" in text, text
        no_sideways_scroll(phone, "run")
        stage.shot(phone, "requester-run-finished")

        code, run = server.api("GET", f"/api/v1/runs/{run_id}", requester)
        assert code == 200, run
        assert run["status"] == finished, run
        steps = run["summary"]["steps"]
        assert sum(s["done"] for s in steps) == len(ticked), steps
        assert sum(s["skipped"] for s in steps) == len(unticked), steps
        assert sum(s["failed"] for s in steps) == 0, steps

        # A second watcher, after the end, sees the same outcome (from the store).
        desk.get(server.url + f"/console/runs/{run_id}")
        assert wait_finished(desk) == finished
        bars = desk.find_elements(By.CSS_SELECTOR, "#steps progress")
        assert bars and all(b.get_attribute("value") == b.get_attribute("max") for b in bars)
        assert f"{len(ticked)} done, {len(unticked)} skipped, 0 failed" in desk.find_element(By.ID, "steps").text
        stage.shot(desk, "approver-watches-finished-run")

        # The requester may ask for a rollback (a plan of its own, approved by an approver).
        phone.get(server.url + "/console/runs")
        assert run_id in phone.find_element(By.TAG_NAME, "main").text
        assert phone.find_elements(By.CSS_SELECTOR, "form[action$='/rollback']")
        no_sideways_scroll(phone, "runs")
        for b in (phone, desk):
            b.get("about:blank")  # no EventSource left open while the server stops
    except BaseException:
        for b, name in ((phone, "failure-requester"), (desk, "failure-approver")):
            try:
                stage.shot(b, name)
            except Exception:
                pass
        raise
    finally:
        server.stop()

    # The saved demo site: the two unticked workbooks unchanged, the ticked ones archived.
    tabflow(env, "site", "snapshot", "-o", str(after_run))
    wb_before, wb_after = workbooks(before), workbooks(after_run)
    for pair in unticked:
        wid = pair.rsplit("/", 1)[1]
        assert wb_after[wid] == wb_before[wid], f"unticked workbook {wid} changed"
    for pair in ticked:
        wid = pair.rsplit("/", 1)[1]
        assert wb_after[wid] != wb_before[wid], f"ticked workbook {wid} was not archived"

    # Roll back from the runs page (a new server on the same data dir: sign in again): the
    # requester asks (the rollback plan, waiting for approval), the approver approves it on its
    # review page, the requester runs it and the run page shows the rollback to its end.
    server = Server(env)
    try:
        sign_in(phone, server, requester)
        sign_in(desk, server, approver)
        phone.get(server.url + "/console/runs")
        item = next(li for li in phone.find_elements(By.CSS_SELECTOR, "main li") if run_id in li.text)
        button = item.find_element(By.CSS_SELECTOR, "form[action$='/rollback'] button")
        button.click()  # unconfirmed: the browser keeps the form (the box is required)
        assert phone.current_url.endswith("/console/runs")
        stage.shot(phone, "requester-rollback-unconfirmed")
        item.find_element(By.CSS_SELECTOR, "input[name=confirm]").click()
        button.click()
        WebDriverWait(phone, 30).until(lambda b: "/console/plans/" in b.current_url and "?request=" in b.current_url)
        rb_review = phone.current_url
        rb_plan_url = rb_review.split("?", 1)[0]
        rb_plan_id = rb_plan_url.rsplit("/", 1)[1]
        status = phone.find_element(By.CSS_SELECTOR, "[role=status]").text
        assert "Waiting for approval" in status, status
        assert not phone.find_elements(By.CSS_SELECTOR, "button[value=approve]")
        assert not phone.find_elements(By.CSS_SELECTOR, "form[action='/console/runs'] button"), "no Run before approval"
        no_sideways_scroll(phone, "rollback-review")
        stage.shot(phone, "requester-rollback-waiting-for-approval")
        code, plan = server.api("GET", f"/api/v1/plans/{rb_plan_id}", approver)
        assert code == 200 and plan["rollback_of"] == run_id, plan
        assert all(st["kind"] == "compensate" for st in plan["steps"]), plan
        code, body = server.api("POST", "/api/v1/runs", requester, {"plan_id": rb_plan_id})
        assert code == 409, body

        desk.get(rb_review)
        boxes = desk.find_elements(By.CSS_SELECTOR, "input[name=item]")
        assert boxes and all(b.is_selected() for b in boxes), "every item of the rollback is asked for"
        stage.shot(desk, "approver-rollback-review")
        desk.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        WebDriverWait(desk, 30).until(lambda b: "?request=" not in b.current_url)
        WebDriverWait(desk, 30, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda b: "Approved by" in b.find_element(By.CSS_SELECTOR, "[role=status]").text
        )
        stage.shot(desk, "approver-rollback-approved")

        phone.get(rb_plan_url)
        phone.find_element(By.CSS_SELECTOR, "form[action='/console/runs'] button").click()
        WebDriverWait(phone, 30).until(lambda b: "/console/runs/" in b.current_url)
        assert phone.current_url.rsplit("/", 1)[1] == run_id, "the run page of the run undone"
        assert wait_finished(phone) == "rolled-back", "the rollback ends"
        stage.shot(phone, "requester-rollback-finished")
        code, orig = server.api("GET", f"/api/v1/runs/{run_id}", approver)
        assert orig["status"] == "rolled-back", orig
        desk.get(server.url + "/console/audit")
        assert "Hash chain intact" in desk.find_element(By.CSS_SELECTOR, "[role=status]").text
        stage.shot(desk, "approver-audit")
        desk.get("about:blank")
    except BaseException:
        for b, name in ((phone, "failure-rollback-requester"), (desk, "failure-rollback")):
            try:
                stage.shot(b, name)
            except Exception:
                pass
        raise
    finally:
        phone.quit()
        desk.quit()
        server.stop()

    tabflow(env, "site", "snapshot", "-o", str(after_rollback))
    diff = tabflow(env, "site", "diff", str(before), str(after_rollback), check=False)
    assert diff.returncode == 0, f"the rollback did not restore the site:\n{diff.stdout}"
    print(f"screenshots: {ARTIFACTS}")
