"""Benchmark: `tabflow site snapshot` of an emulated site, and the same inventory with a
plain tableauserverclient script, side by side at 0 ms and 20 ms injected latency.

    .venv/bin/python bench/snapshot.py [--scale 100000] [--side-by-side-scale 2000]

Reports wall time, API calls (counted by the emulator's /_emulator/stats) against the minimum
the snapshot's contents need, and each client's peak RSS. Numbers go to BENCHMARKS.md."""

import argparse
import json
import math
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABFLOW = os.environ.get("TABFLOW_BIN", str(ROOT / "target" / "release" / "tabflow"))
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def post(url, body=b"{}"):
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"}))


def get_json(url):
    with urllib.request.urlopen(url) as r:
        return json.loads(r.read())


def peak_rss_of(cmd, env=None):
    """Runs cmd and reads its own peak RSS. Not from this process's wait4: Python starts
    children with vfork, and Linux then carries the parent's high-water RSS into the child's
    ru_maxrss (after a 100k snapshot JSON is loaded here, every later child "peaks" at ~700
    MiB). /usr/bin/time forks from a small process, so its %M is the child's own."""
    t = time.monotonic()
    fd, rss_file = tempfile.mkstemp(suffix=".rss")
    os.close(fd)
    timer = ["/usr/bin/time", "-f", "%M", "-o", rss_file] if os.path.exists("/usr/bin/time") else []
    p = subprocess.Popen(timer + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate()
    secs = time.monotonic() - t
    kib = None
    if timer:
        lines = [l for l in open(rss_file).read().split() if l.isdigit()]
        kib = int(lines[-1]) if lines else None
    os.unlink(rss_file)
    if kib is None:
        raise SystemExit("cannot read the peak RSS: install /usr/bin/time (GNU time)")
    return secs, kib / 1024.0, out.decode(), err.decode(), p.returncode


def minimum_calls(site):
    pages = lambda n: max(1, math.ceil(n / 1000))
    views = [v for w in site["workbooks"] for v in w["views"]]
    untabbed_views = sum(len(w["views"]) for w in site["workbooks"] if not w.get("show_tabs", True))
    m = 2  # serverInfo, signin
    m += sum(pages(len(site[k])) for k in ["users", "groups", "projects", "datasources", "workbooks", "subscriptions"])
    m += pages(len(views)) + 1 + 1  # views, webhooks, data alerts
    m += sum(pages(len(g["members"])) for g in site["groups"])
    flows = site.get("flows", [])  # absent when the site has none
    m += pages(len(flows))  # flows list
    m += len(site["projects"]) + len(site["workbooks"]) + len(site["datasources"]) + untabbed_views + len(flows)  # permissions
    m += 2 * len(site["projects"])  # default permissions (workbooks, datasources)
    m += len(site["datasources"])  # connections
    m += max(1, math.ceil(len(site["datasources"]) / 500)) + max(1, math.ceil(len(site["workbooks"]) / 500))  # Metadata API
    m += 3  # Admin Insights: find the datasource, read-metadata, query
    # Since the refresh workflows (issue #18): the site itself (its name), the extract refresh
    # schedules (list, then each extract schedule's tasks), the site's refresh tasks and jobs
    # (lists, then each refresh job for its content and finish code: the list does not say),
    # and each data alert's recipients.
    schedules = site.get("schedules", [])
    jobs = site.get("refresh_jobs", [])
    m += 1 + 1 + sum(1 for x in schedules if x.get("type") == "Extract")
    m += pages(len(site.get("extract_refreshes", []))) + pages(len(jobs)) + len(jobs)
    m += len(site.get("data_alerts", []))
    return m


def start_emulator(scale, latency):
    p = subprocess.Popen([TABFLOW, "emulator", "serve", "--port", "0", "--scale", str(scale)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = p.stdout.readline().strip()
    if latency:
        post(url + "/_emulator/faults", json.dumps({"latency_ms": latency}).encode())
    return p, url


def bench_tabflow(scale, latency, concurrency=None):
    """concurrency None = tabflow's defaults (16 reads, 8 writes in flight); N caps both."""
    p, url = start_emulator(scale, latency)
    try:
        post(url + "/_emulator/stats/reset")
        out = tempfile.mktemp(suffix=".json")
        env = dict(os.environ, TABLEAU_PAT_NAME="tabflow", TABLEAU_PAT_SECRET="tabflow")
        conc = ["--concurrency", str(concurrency)] if concurrency else []
        secs, rss, _, err, status = peak_rss_of([TABFLOW, "site", "snapshot", "--server", url, "--site", "demo", *conc, "-o", out], env)
        assert status == 0, err
        calls = get_json(url + "/_emulator/stats")["requests"]
        # The process's own VmHWM from its summary line, as a cross-check of /usr/bin/time.
        m = re.search(r"peak RSS (\d+) MiB", err)
        site = json.load(open(out))
        os.unlink(out)
        return {"tool": "tabflow", "scale": scale, "latency_ms": latency, "concurrency": concurrency or "default (16 reads/8 writes)", "seconds": round(secs, 2),
                "calls": calls, "minimum_calls": minimum_calls(site), "peak_rss_mib": round(rss),
                "self_reported_peak_rss_mib": int(m.group(1)) if m else None, "permission_rules": len(site["permissions"])}
    finally:
        p.terminate()
        p.wait()


def bench_tsc(scale, latency):
    p, url = start_emulator(scale, latency)
    try:
        post(url + "/_emulator/stats/reset")
        secs, rss, out, err, status = peak_rss_of([PYTHON, str(ROOT / "bench" / "tsc_inventory.py"), url])
        assert status == 0, err
        calls = get_json(url + "/_emulator/stats")["requests"]
        r = json.loads(out)
        return {"tool": "python tableauserverclient", "scale": scale, "latency_ms": latency, "seconds": round(secs, 2), "calls": calls,
                "peak_rss_mib": round(rss), "permission_rules": r["permission_rules"]}
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=100000)
    ap.add_argument("--side-by-side-scale", type=int, default=2000)
    ap.add_argument("--latencies", default="0,20")
    args = ap.parse_args()
    results = []
    lat = [int(x) for x in args.latencies.split(",")]
    for l in lat:
        b = bench_tsc(args.side_by_side_scale, l)
        print(json.dumps(b), flush=True)
        for conc in (None, 8):
            a = bench_tabflow(args.side_by_side_scale, l, conc)
            a["speedup_vs_tsc"] = round(b["seconds"] / a["seconds"], 1)
            results.append(a)
            print(json.dumps(a), flush=True)
        results.append(b)
    for l in lat:
        r = bench_tabflow(args.scale, l)
        results.append(r)
        print(json.dumps(r), flush=True)
    for r in results:
        extra = ""
        if "minimum_calls" in r:
            extra = f", minimum {r['minimum_calls']} ({100.0 * (r['calls'] - r['minimum_calls']) / r['minimum_calls']:+.1f} %)"
        if "speedup_vs_tsc" in r:
            extra += f", {r['speedup_vs_tsc']}x the TSC script"
        conc = f" c={r['concurrency']}" if "concurrency" in r else "     "
        print(f"{r['tool']:28}{conc} scale {r['scale']:>6} latency {r['latency_ms']:>2} ms: {r['seconds']:>8.2f} s, {r['calls']} calls{extra}, peak RSS {r['peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
