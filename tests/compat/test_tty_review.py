"""`tabflow ask` in a real pseudo-terminal (pexpect), as a person uses it (issue #19).

On the built-in demo site: ask to archive the stale Finance workbooks, choose "review" at
"Archive all, or review the list first?", untick two workbooks in the review list by typing
a word of their name (the filter) and pressing space, accept the list and approve the
ticked ones; the live progress block shows the approval and the step's counts. Then the
saved demo site has exactly the ticked workbooks moved and the two unticked ones unchanged.
A second session answers the rollback confirmation in the terminal: "n" keeps the site, "y"
puts everything back."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pexpect

from tabflow_bin import binary

REQUEST = "Archive Finance workbooks not accessed in 90+ days"


def environment(home):
    """No TABLEAU_* (so the demo site is used), a data dir of its own, a terminal type."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TABFLOW_HOME": str(home / "data"),
        "TABFLOW_ACTOR": "tty-test",
        "TERM": "xterm-256color",
        "NO_COLOR": "1",
    }


def tabflow(env, *args, check=True):
    p = subprocess.run([binary(), *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, f"tabflow {' '.join(args)} exited {p.returncode}:\n{p.stderr}\n{p.stdout}"
    return p


def workbooks(path):
    site = json.loads(path.read_text())
    return {w["id"]: (w["project_id"], sorted(w.get("tags", []))) for w in site["workbooks"]}


def spawn(env, *args):
    child = pexpect.spawn(binary(), list(args), env=env, dimensions=(40, 120), encoding="utf-8", timeout=60)
    child.logfile_read = open(env["HOME"] + "/tty.log", "a", encoding="utf-8")
    return child


def filter_words(items):
    """For each item, a word (no space: space toggles) found in its row and in no other row."""
    rows = [" ".join(str(i.get(k) or "") for k in ("name", "project", "owner", "reason")).lower() for i in items]
    words = {}
    for n, item in enumerate(items):
        for word in item["name"].split():
            w = word.lower()
            if len(w) >= 4 and sum(w in r for r in rows) == 1 and w in rows[n]:
                words[item["id"]] = word
                break
    return words


def test_review_unticks_two_and_the_run_changes_exactly_the_ticked(tmp_path):
    env = environment(tmp_path)
    tabflow(env, "demo", "reset")
    before = tmp_path / "before.json"
    tabflow(env, "site", "snapshot", "--no-usage", "-o", str(before))
    # The items the review list will show (the same plan, made without a terminal).
    plan = json.loads(tabflow(env, "plan", REQUEST, "--answer", "q1=review", "--json").stdout)
    step = next(s for s in plan["steps"] if s["effect"] == "destructive")
    changed = {c["item"] for c in step["changes"]}
    items = [i for i in step["items"] if i["id"] in changed]
    assert len(items) > 5, items
    words = filter_words(items)
    untick = list(words)[:2]
    assert len(untick) == 2, f"no two items with a word of their own: {items}"

    child = spawn(env, "ask", REQUEST)
    child.expect("Archive all, or review")
    # The safe choice, "review", is where the cursor starts.
    child.send("\r")
    child.expect(r"Untick what must not change \((\d+) items")
    assert int(child.match.group(1)) == len(items)
    # The running count is on the list's first line from the start, and follows each toggle.
    child.expect(rf"{len(items)} of {len(items)} selected")
    for n, item_id in enumerate(untick, start=1):
        word = words[item_id]
        child.send(word)
        child.expect(r"\(1 shown\)")
        child.send(" ")
        child.expect(rf"{len(items) - n} of {len(items)} selected")
        child.send("\x7f" * len(word))
        child.expect("type to filter")
    child.send("\r")
    child.expect(rf"{len(items) - 2} of {len(items)} ticked \(2 left out")
    child.expect(rf"approve {len(items) - 2} of {len(items)} destructive changes")
    child.send("\r")
    # The live block: the approval as a line of its own, then the step with its counts.
    child.expect(rf"you approved {len(items) - 2} of {len(items)} items")
    child.expect(rf"{len(items) - 2} done, 2 skipped")
    child.expect(r"Run (r-\S+) partial")
    run_id = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before

    after = tmp_path / "after.json"
    tabflow(env, "site", "snapshot", "--no-usage", "-o", str(after))
    wb_before, wb_after = workbooks(before), workbooks(after)
    for i in items:
        if i["id"] in untick:
            assert wb_after[i["id"]] == wb_before[i["id"]], f"unticked {i['name']} changed"
        else:
            assert wb_after[i["id"]] != wb_before[i["id"]], f"ticked {i['name']} was not archived"
    others = set(wb_before) - {i["id"] for i in items}
    assert all(wb_after[w] == wb_before[w] for w in others), "a workbook outside the plan changed"

    # The rollback asks first: "n" (the default) keeps the site, "y" puts it back.
    child = spawn(env, "runs", "rollback", run_id)
    child.expect(rf"puts back {len(items) - 2} changed items")
    child.expect(r"Roll back \d+ items\?")
    child.send("n\r")
    child.expect("Not rolled back; nothing was changed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    tabflow(env, "site", "snapshot", "--no-usage", "-o", str(after))
    assert workbooks(after) == wb_after

    child = spawn(env, "runs", "rollback", run_id)
    child.expect(r"Roll back \d+ items\?")
    child.send("y\r")
    child.expect(r"Run \S+ rolled-back")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    rolled = tmp_path / "rolled.json"
    tabflow(env, "site", "snapshot", "--no-usage", "-o", str(rolled))
    diff = tabflow(env, "site", "diff", str(before), str(rolled), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr


def test_the_readme_first_command_shows_the_review_list(tmp_path):
    """The README's first command (`tabflow ask "Archive Finance workbooks not accessed in 90+
    days"`) in a terminal: the plan, the question, and "review" opens the review list with
    its running count; Esc goes back to the approval question, and Esc again stops without a
    change."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    first = next(l for l in readme.splitlines() if "--bin tabflow --" in l)
    request = first.split("ask ", 1)[1].split('"')[1]
    assert request == REQUEST, first
    env = environment(tmp_path)
    tabflow(env, "demo", "reset")
    child = spawn(env, "ask", request)
    child.expect("Archive all, or review")
    child.send("\r")
    child.expect(r"Untick what must not change \((\d+) items")
    n = int(child.match.group(1))
    child.expect(rf"{n} of {n} selected")
    child.expect("name +project +owner +last view +size")
    # Esc goes back to the approval question; Esc there cancels without a change.
    child.send("\x1b")
    child.expect(rf"approve {n} of {n} destructive changes\?")
    child.send("\x1b")
    child.expect("Not approved; nothing was changed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def shape(site):
    """Workbook id -> (its project's name, its tags)."""
    names = {p["id"]: p["name"] for p in site["projects"]}
    return {w["id"]: (names.get(w["project_id"]), sorted(w.get("tags", []))) for w in site["workbooks"]}


def test_ctrl_c_mid_run_then_resume_ends_like_an_uninterrupted_run(tmp_path):
    """Ctrl-C in a terminal during the move step (an emulator slowed by --latency-ms): the run
    stops between items, says how to resume or roll back, exits 130 with status interrupted;
    `tabflow runs resume` then leaves the site exactly as an uninterrupted run does."""
    slow = subprocess.Popen([binary(), "emulator", "serve", "--port", "0", "--latency-ms", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    plain = subprocess.Popen([binary(), "emulator", "serve", "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        slow_url, plain_url = slow.stdout.readline().strip(), plain.stdout.readline().strip()
        env = environment(tmp_path)
        env.update({"TABLEAU_SITE": "demo", "TABLEAU_PAT_NAME": "tabflow", "TABLEAU_PAT_SECRET": "tabflow"})
        plain_env = dict(env, TABLEAU_SERVER=plain_url, TABFLOW_HOME=str(tmp_path / "plain"))
        done = json.loads(tabflow(plain_env, "ask", REQUEST, "--approve", "all", "--json").stdout)
        assert done["status"] == "succeeded", done
        expected = shape(json.loads(urllib.request.urlopen(plain_url + "/_emulator/snapshot").read()))

        env["TABLEAU_SERVER"] = slow_url
        before = shape(json.loads(urllib.request.urlopen(slow_url + "/_emulator/snapshot").read()))
        child = spawn(env, "ask", REQUEST, "--approve", "all", "--concurrency", "2")
        child.expect("Step 2/2")
        # A few items moved (the bar's count is past 0), then Ctrl-C.
        child.expect(r" ([1-9]|1\d)/23 ")
        child.sendintr()
        child.expect("Stopping: finishing the items in flight")
        child.expect(r"Run (r-\S+) interrupted")
        run_id = child.match.group(1)
        child.expect(f"tabflow runs resume {run_id}")
        child.expect(f"tabflow runs rollback {run_id}")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 130, child.before
        runs = json.loads(tabflow(env, "runs", "list", "--json").stdout)
        assert runs[0]["id"] == run_id and runs[0]["status"] == "interrupted", runs
        half = shape(json.loads(urllib.request.urlopen(slow_url + "/_emulator/snapshot").read()))
        assert half != before and half != expected, "Ctrl-C did not stop the run half-way"

        resumed = json.loads(tabflow(env, "runs", "resume", run_id, "--json").stdout)
        assert resumed["status"] == "succeeded", resumed
        after = shape(json.loads(urllib.request.urlopen(slow_url + "/_emulator/snapshot").read()))
        assert after == expected
    finally:
        for p in (slow, plain):
            p.terminate()
            p.wait(timeout=10)


def test_purge_asks_in_a_terminal(tmp_path):
    """`tabflow runs purge --now` in a terminal says how many staged items it deletes for good
    and asks: "n" (the default) keeps them, "y" purges them."""
    env = environment(tmp_path)
    tabflow(env, "demo", "reset")
    plan = tmp_path / "delete.json"
    tabflow(env, "plan", "--intent", "delete-content", "--param", "project=Finance", "--param", "stale_days=90",
            "--answer", "q1=delete-all", "-o", str(plan))
    run = json.loads(tabflow(env, "apply", str(plan), "--approve", "all", "--json").stdout)
    staged = run["staged"]["items"]
    assert staged > 0, run
    child = spawn(env, "runs", "purge", "--now")
    child.expect(rf"deletes {staged} staged items for good")
    child.expect(rf"Delete {staged} items for good\?")
    child.send("n\r")
    child.expect("Not purged; nothing was deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    child = spawn(env, "runs", "purge", "--now")
    child.expect(rf"Delete {staged} items for good\?")
    child.send("y\r")
    child.expect(rf"Purged {staged} staged deletes")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_config_init_asks_in_a_terminal(tmp_path):
    """`tabflow config init` in a terminal asks for each setting and writes a commented profile
    that names the secret's environment variable, never a secret."""
    env = environment(tmp_path)
    env["TABLEAU_PAT_SECRET"] = "never-written-0042"
    config = tmp_path / "config.toml"
    child = spawn(env, "config", "init", "--profile", "prod", "--config", str(config))
    child.expect("Tableau server address")
    child.send("https://tableau.example.com\r")
    child.expect("Site content URL")
    child.send("finance\r")
    child.expect("How does tabflow sign in")
    child.send("\r")
    child.expect("Personal access token name")
    child.send("\r")
    child.expect("Environment variable holding the secret")
    child.send("\r")
    child.expect("State store")
    child.send("\r")
    child.expect("Calls in flight")
    child.send("4\r")
    child.expect("Policy file")
    child.send("\r")
    child.expect("Wrote profile 'prod'")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    text = config.read_text()
    assert 'server = "https://tableau.example.com"' in text and 'site = "finance"' in text, text
    assert 'pat_secret_env = "TABLEAU_PAT_SECRET"' in text and "concurrency = 4" in text, text
    assert "never-written-0042" not in text
    assert text.count("\n# ") >= 6, "every key has its comment"
