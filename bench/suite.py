"""The benchmark suite of issue #22, in one run: tabflow and a plain tableauserverclient
script side by side on the same emulated sites, at 0 ms and 20 ms injected latency.

    .venv/bin/python bench/suite.py [--scales 5000,20000] [--big 100000] [--latencies 0,20]
                                    [--moves 10000] [--workers 1,2,4 --store postgres://…]
                                    [--json results.json]

(a) inventory: `tabflow site snapshot` against `bench/tsc_inventory.py` (the same inventory,
    sequential, TSC.Pager and populate_* per item as the official samples do) on each of
    `--scales`; `tabflow site snapshot` alone on `--big`, where the script's time is
    extrapolated from its largest measured site (its calls are sequential, so its time grows
    with its calls).
(b) plan of the Finance cleanup on `--big` (`tabflow bench plan --live --only finance`).
(c) apply: on each of `--scales`, `tabflow apply` of the answered Finance archive against
    the script moving the same workbooks one by one (`bench/apply_vs_tsc.py`), and `tabflow
    bench apply --moves N` (one process, and with each of `--workers` on PostgreSQL, which
    also measures (d), the rollback), against the script's measured time per move × N.

Every figure is measured in this run on this machine; only the script's 100k inventory and
its N moves are extrapolated, and they are labelled so. Numbers go to BENCHMARKS.md; nothing
here asserts on them."""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apply_vs_tsc  # noqa: E402
import snapshot  # noqa: E402

TABFLOW = snapshot.TABFLOW


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def inventory(scales, big, latencies):
    rows = []
    for lat in latencies:
        for s in scales:
            log(f"(a) inventory, {s} workbooks, {lat} ms: tabflow")
            tf = snapshot.bench_tabflow(s, lat)
            log(f"    {tf['seconds']} s, {tf['calls']} calls; the TSC script")
            tsc = snapshot.bench_tsc(s, lat)
            log(f"    {tsc['seconds']} s, {tsc['calls']} calls")
            rows.append({"scale": s, "latency_ms": lat, "tabflow": tf, "tsc": tsc, "ratio": round(tsc["seconds"] / tf["seconds"], 1)})
        if big:
            log(f"(a) inventory, {big} workbooks, {lat} ms: tabflow")
            tf = snapshot.bench_tabflow(big, lat)
            measured = [r for r in rows if r["latency_ms"] == lat]
            row = {"scale": big, "latency_ms": lat, "tabflow": tf}
            if measured:
                # The script is sequential: its time per call, times the calls it would make
                # (its calls grow with the site as tabflow's do).
                last = max(measured, key=lambda r: r["scale"])
                per_call = last["tsc"]["seconds"] / last["tsc"]["calls"]
                calls = last["tsc"]["calls"] * tf["calls"] / last["tabflow"]["calls"]
                row["tsc_extrapolated_s"] = round(per_call * calls, 1)
                row["ratio"] = round(row["tsc_extrapolated_s"] / tf["seconds"], 1)
            rows.append(row)
    return rows


def plan_big(big, latencies):
    rows = []
    for lat in latencies:
        log(f"(b) plan of the Finance cleanup, {big} workbooks, {lat} ms")
        p = subprocess.run([TABFLOW, "bench", "plan", "--scale", str(big), "--live", "--only", "finance", "--latency-ms", str(lat)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit(f"bench plan failed: {p.stderr}")
        m = re.search(r"^Finance[^\n]*?\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)", p.stdout, re.M)
        if not m:
            sys.exit(f"cannot read bench plan's output:\n{p.stdout}")
        rows.append({"scale": big, "latency_ms": lat, "wall_s": float(m.group(1)), "peak_rss_mib": int(m.group(2)), "calls": int(m.group(3)), "minimum": int(m.group(4))})
    return rows


def archive_side_by_side(scales, latency):
    rows = []
    for s in scales:
        log(f"(c) Finance archive, {s} workbooks, {latency} ms: tabflow apply, then the TSC script")
        home = apply_vs_tsc.tempfile.mkdtemp(prefix="tabflow-suite-")
        secs, tf_calls, ids, target = apply_vs_tsc.run_tabflow(s, latency, home)
        tsc_secs, tsc_calls = apply_vs_tsc.run_tsc(s, latency, ids, target)
        rows.append({"scale": s, "latency_ms": latency, "moves": len(ids), "tabflow_s": round(secs, 2), "tabflow_calls": tf_calls["requests"],
                     "tsc_s": round(tsc_secs, 2), "tsc_calls": tsc_calls["requests"], "ratio": round(tsc_secs / secs, 1)})
        log(f"    {rows[-1]}")
    return rows


def bench_apply(moves, latency, workers, store):
    rows = []
    for w in [0] + workers:
        cmd = [TABFLOW, "bench", "apply", "--moves", str(moves), "--latency-ms", str(latency)]
        if w:
            cmd += ["--workers", str(w), "--store", store]
        log(f"(c) {moves} moves, {latency} ms, {'one process' if not w else f'{w} workers on PostgreSQL'}")
        t = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit(f"bench apply failed: {p.stderr}\n{p.stdout}")
        last = [l for l in p.stdout.splitlines() if l.startswith("{")]
        out = json.loads(last[-1]) if last else {}
        out["workers"] = w
        out["bench_process_s"] = round(time.monotonic() - t, 1)
        out["text"] = p.stdout
        rows.append(out)
        log("    " + "\n    ".join(l for l in p.stdout.splitlines() if not l.startswith("{")))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="5000,20000")
    ap.add_argument("--big", type=int, default=100000)
    ap.add_argument("--latencies", default="0,20")
    ap.add_argument("--moves", type=int, default=10000)
    ap.add_argument("--workers", default="")
    ap.add_argument("--store", default=os.environ.get("TABFLOW_BENCH_STORE", ""))
    ap.add_argument("--skip", default="", help="comma list of a,b,c to leave out")
    ap.add_argument("--json", dest="json_out")
    a = ap.parse_args()
    scales = [int(x) for x in a.scales.split(",") if x]
    latencies = [int(x) for x in a.latencies.split(",") if x]
    workers = [int(x) for x in a.workers.split(",") if x]
    if workers and not a.store:
        sys.exit("--workers needs --store postgres://… (or TABFLOW_BENCH_STORE)")
    skip = set(a.skip.split(","))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    res = {"started": started, "load": os.getloadavg(), "tabflow": TABFLOW}
    if "a" not in skip:
        res["inventory"] = inventory(scales, a.big, latencies)
    if "b" not in skip and a.big:
        res["plan"] = plan_big(a.big, latencies)
    if "c" not in skip:
        lat = max(latencies)
        res["archive"] = archive_side_by_side(scales, lat)
        res["apply"] = bench_apply(a.moves, lat, workers, a.store)
    res["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(res, indent=1))
    report(res, a.moves)


def report(res, moves):
    print(f"Benchmark suite, {res['started']} – {res['finished']}, load at start {res['load'][0]:.1f}, {res['tabflow']}")
    if "inventory" in res:
        print("\n(a) inventory (tabflow site snapshot vs the plain TSC script)\n")
        print("| site | latency | tabflow s | calls | minimum | RSS MiB | TSC script s | calls | RSS MiB | ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in res["inventory"]:
            tf = r["tabflow"]
            if "tsc" in r:
                t = r["tsc"]
                tsc = f"{t['seconds']} | {t['calls']} | {t['peak_rss_mib']}"
            elif "tsc_extrapolated_s" in r:
                tsc = f"≈ {r['tsc_extrapolated_s']} (extrapolated) | — | —"
            else:
                tsc = "— | — | —"
            ratio = f"{r['ratio']}×" if "ratio" in r else "—"
            print(f"| {r['scale']} | {r['latency_ms']} ms | {tf['seconds']} | {tf['calls']} | {tf['minimum_calls']} | {tf['peak_rss_mib']} | {tsc} | {ratio} |")
    if "plan" in res:
        print("\n(b) plan of the Finance cleanup\n")
        print("| site | latency | wall s | peak RSS MiB | calls | minimum |")
        print("|---|---|---|---|---|---|")
        for r in res["plan"]:
            print(f"| {r['scale']} | {r['latency_ms']} ms | {r['wall_s']} | {r['peak_rss_mib']} | {r['calls']} | {r['minimum']} |")
    if "archive" in res:
        print("\n(c) apply of the Finance archive (tabflow apply, process start to exit, vs the script moving the same workbooks)\n")
        print("| site | latency | moves | tabflow s | calls | TSC script s | calls | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for r in res["archive"]:
            print(f"| {r['scale']} | {r['latency_ms']} ms | {r['moves']} | {r['tabflow_s']} | {r['tabflow_calls']} | {r['tsc_s']} | {r['tsc_calls']} | {r['ratio']}× |")
    if res.get("apply"):
        per_move = None
        if res.get("archive"):
            big = max(res["archive"], key=lambda r: r["moves"])
            per_move = big["tsc_s"] / big["moves"]
        print(f"\n(c)/(d) {moves} moves (tabflow bench apply; the script's time = its measured time per move × {moves})\n")
        print("| runner | apply s | calls/s | % of bound | ratio to the script | rollback |")
        print("|---|---|---|---|---|---|")
        for r in res["apply"]:
            who = "one process" if not r["workers"] else f"{r['workers']} workers (PostgreSQL)"
            text = r.get("text", "")
            if r["workers"]:
                a, d = r.get("apply", {}), r.get("rollback", {})
                apply_s = a.get("median_wall_s")
                cps = f"{a.get('calls_per_s', 0):.0f}"
                pct = f"{100.0 * a.get('ratio_to_bound', 0):.1f}"
                rollback = f"{d.get('median_wall_s', 0):.2f} s, {d.get('calls_per_s', 0):.0f} calls/s ({d.get('status', '')})" if d else "—"
            else:
                apply_s = r.get("median_with_journal_s")
                cps = f"{r.get('calls_per_s', 0):.0f}"
                pct = f"{100.0 * r.get('calls_per_s', 0) / r.get('bound_ops_per_s', 1):.1f}"
                rollback = "—"
            ratio = f"{per_move * moves / apply_s:.1f}×" if per_move and apply_s else "—"
            apply_s = round(apply_s, 2) if apply_s else apply_s
            print(f"| {who} | {apply_s} | {cps} | {pct} | {ratio} | {rollback} |")
        if per_move:
            print(f"\nThe script's time per move: {per_move:.4f} s (so ≈ {per_move * moves:.0f} s for {moves} moves).")


if __name__ == "__main__":
    main()
