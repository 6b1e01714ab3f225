"""Benchmark (issue #15): `tabflow apply` of an answered Finance archive, re-validation
included, timed from process start to exit, side by side with a plain tableauserverclient
script that moves the same workbooks one by one, at injected latency.

    .venv/bin/python bench/apply_vs_tsc.py [--scale 3000] [--latency 20] [--repeat 3]

The 60-workbook archive is `--scale 3000`; about 1 000 moves is `--scale 48000` (the Finance
archive grows with the site). With `--repeat N` both sides run N times (each on fresh
emulators) and the medians are compared: the machine may be shared.

Each side runs on a fresh emulator (`tabflow emulator serve --scale N`, a separate process)
so both move the same workbooks from the same state; the plan is made (not timed) on the
first. Calls are counted by the emulator's /_emulator/stats. Numbers go to BENCHMARKS.md."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABFLOW = os.environ.get("TABFLOW_BIN", str(ROOT / "target" / "release" / "tabflow"))
PYTHON = str(ROOT / ".venv" / "bin" / "python")
FINANCE = "Clean up the Finance project - archive workbooks not accessed in 90 days"

TSC_SCRIPT = r'''
import json, sys, time
t = time.monotonic()
import tableauserverclient as TSC
url, target, ids = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
server = TSC.Server(url, use_server_version=True)
server.auth.sign_in(TSC.PersonalAccessTokenAuth("tabflow", "tabflow", "demo"))
for i in ids:
    wb = server.workbooks.get_by_id(i)
    wb.project_id = target
    server.workbooks.update(wb)
server.auth.sign_out()
print(json.dumps({"seconds": time.monotonic() - t, "moved": len(ids)}))
'''


def post(url, body=b"{}"):
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"}))


def get_json(url):
    with urllib.request.urlopen(url) as r:
        return json.loads(r.read())


def start_emulator(scale):
    p = subprocess.Popen([TABFLOW, "emulator", "serve", "--port", "0", "--scale", str(scale)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p, p.stdout.readline().strip()


def env_for(url, home):
    e = dict(os.environ)
    e.update({"TABLEAU_SERVER": url, "TABLEAU_SITE": "demo", "TABLEAU_PAT_NAME": "tabflow", "TABLEAU_PAT_SECRET": "tabflow", "TABFLOW_HOME": home})
    return e


def timed(cmd, env=None):
    t = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    return time.monotonic() - t, p


def run_tabflow(scale, latency, home):
    """Plans (not timed) and applies (timed) on a fresh emulator: (seconds, stats, ids, target)."""
    plan_path = os.path.join(home, "plan.json")
    emu, url = start_emulator(scale)
    try:
        env = env_for(url, home)
        p = subprocess.run([TABFLOW, "plan", FINANCE, "--answer", "q1=archive-all", "-o", plan_path, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        if p.returncode != 0:
            sys.exit(f"plan failed: {p.stderr}")
        plan = json.loads(p.stdout)
        moves = [c for s in plan["steps"] for c in s["changes"] if c["field"] == "project"]
        ids = [c["item"] for c in moves]
        target = moves[0]["after_id"] if moves else None
        if not ids or not target:
            sys.exit(f"the plan moves nothing to an existing project: {json.dumps(plan['questions'])}")
        post(url + "/_emulator/faults", json.dumps({"latency_ms": latency}).encode())
        post(url + "/_emulator/stats/reset")
        secs, p = timed([TABFLOW, "apply", plan_path, "--approve", "all", "--json"], env=env)
        if p.returncode != 0:
            sys.exit(f"apply failed: {p.stderr}\n{p.stdout}")
        return secs, get_json(url + "/_emulator/stats"), ids, target
    finally:
        emu.kill()
        emu.wait()


def run_tsc(scale, latency, ids, target):
    """The plain script on a fresh copy of the same site: (seconds, stats)."""
    emu, url = start_emulator(scale)
    try:
        post(url + "/_emulator/faults", json.dumps({"latency_ms": latency}).encode())
        post(url + "/_emulator/stats/reset")
        secs, p = timed([PYTHON, "-c", TSC_SCRIPT, url, target, json.dumps(ids)])
        if p.returncode != 0:
            sys.exit(f"the TSC script failed: {p.stderr}")
        return secs, get_json(url + "/_emulator/stats")
    finally:
        emu.kill()
        emu.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=3000)
    ap.add_argument("--latency", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    tf, ts = [], []
    for _ in range(max(1, a.repeat)):
        home = tempfile.mkdtemp(prefix="tabflow-apply-bench-")
        secs, tf_calls, ids, target = run_tabflow(a.scale, a.latency, home)
        tsc_secs, tsc_calls = run_tsc(a.scale, a.latency, ids, target)
        tf.append(secs)
        ts.append(tsc_secs)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    secs, tsc_secs = med(tf), med(ts)
    print(f"apply of a Finance archive: {len(ids)} workbooks on a {a.scale}-workbook site at {a.latency} ms per call")
    print(f"  tabflow apply (re-validation included, process start to exit): {secs:.2f} s, {tf_calls['requests']} calls")
    print(f"  plain TSC script, one by one:                                  {tsc_secs:.2f} s, {tsc_calls['requests']} calls")
    if len(tf) > 1:
        print(f"  runs: tabflow {', '.join(f'{x:.2f}' for x in tf)} s; script {', '.join(f'{x:.2f}' for x in ts)} s (medians above)")
    print(f"  tabflow is {tsc_secs / secs:.1f}x the script's speed")
    if os.environ.get("TABFLOW_BENCH_ROUTES"):
        print(json.dumps(tf_calls["by_route"], indent=1))


if __name__ == "__main__":
    main()
