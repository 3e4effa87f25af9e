#!/usr/bin/env python3
"""
fleet.py -- the fleet experiment: what a platform team pays over time for
the same app under the same load, strategy by strategy.  Standard library
only; started by `scripts/experiment --fleet` (which installs what is
missing and builds bin/cowlab first).  `fleet.py --help` lists the options.

Strategies (server flags in STRATEGIES below, parameters from the options):
    none            plain prefork (GC on, the default policy)
    max-requests    gunicorn's max_requests (+ jitter): recycle after N
    reload-on-rss   uWSGI's reload-on-rss: recycle past an RSS limit
    max-copied-pct  recycle once a worker's exact heap copies pass P%
    refork          Pitchfork: a warmed worker becomes the mold of the next
    ksm             kernel samepage merging (PR_SET_MEMORY_MERGE, ksmd)
    ksm+freeze      the same with gc.freeze() before fork
Each strategy is one server run ("cell") under the same paced load: wrk
sends RATE requests per second in consecutive slices of SLICE seconds
(scripts/wrk_rate.lua), one wrk process per slice, so every slice has its
own throughput and latency percentiles; the server writes one totals.csv
row per sampling round (PSS of master + workers + molds).  The two are
lined up on CLOCK_MONOTONIC (totals.csv's t_mono_s).

Output (OUT = results/<timestamp>-fleet unless --out):
    OUT/cells/<strategy>/  the server's files (samples.csv, totals.csv,
                           runs.csv, meta.json), server.log, slices.csv
                           (one wrk result per slice), wrk.txt, cell.json
    OUT/fleet.csv          one row per strategy per slice
    OUT/summary.csv, OUT/summary.txt   the table at equal load, the targets
    OUT/fleet_total_pss.png, OUT/fleet_load.png, plots.gp, plotdata/
KSM needs root and a kernel with KSM (Linux 6.4+ for PR_SET_MEMORY_MERGE):
without them the ksm strategies are skipped, and the run says so.
"""

import argparse
import csv
import datetime
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from runner import (LineReader, SampleTail, stop_process, gp_str,  # noqa: E402
                    read_csv, num, mean, median)

STRATEGY_ORDER = ["none", "max-requests", "reload-on-rss", "max-copied-pct",
                  "refork", "ksm", "ksm+freeze"]
KSM_STRATEGIES = ("ksm", "ksm+freeze")

# The fleet.csv columns: the first, then ours.
FLEET_COLUMNS = ["strategy", "t_s", "total_pss_kb", "rps", "p99_ms",
                 "respawns", "refork_generation", "ksmd_cpu_s",
                 "p50_ms", "p90_ms", "requests", "errors", "master_pss_kb",
                 "workers_pss_kb", "heap_copied_pages", "heap_shared_pct",
                 "ksm_pages_sharing", "recycles", "reforks", "cpu_s",
                 "slice_s"]

SUMMARY_COLUMNS = [
    "strategy", "flags", "total_pss_mib", "total_pss_mib_end",
    "vs_none_pct", "heap_shared_pct", "rps", "rps_vs_offered_pct",
    "p50_ms", "p99_ms", "p99_max_ms", "p99_events_ms", "p99_quiet_ms",
    "errors", "respawns", "recycles", "reforks", "cpu_ms_per_request",
    "ksmd_cpu_s", "ksmd_core_pct", "ksmd_cpu_s_per_gib",
    "ksm_saved_mib", "status"]

QUICK = {"scale": 0.05, "workers": 2, "rate": 100, "duration": 2.0,
         "slice": 1.0, "max_requests": 40, "max_requests_jitter": 5,
         "max_copied_pct": 30.0, "refork_after": "20,40",
         "sample_ms": 100}
DEFAULTS = {"scale": 1.0, "workers": 4, "rate": 600, "duration": 90.0,
            "slice": 5.0, "max_requests": 2000, "max_requests_jitter": 200,
            "max_copied_pct": 50.0, "refork_after": "50,100,1000",
            "sample_ms": 1000}


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/experiment --fleet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The fleet experiment: every strategy under the same "
        "paced load over time; total PSS (master + workers), throughput "
        "and latency per slice, a summary at equal load and its plots.",
        epilog="Strategies: %s.\nExamples:\n"
        "  scripts/experiment --fleet                 # a few minutes\n"
        "  scripts/experiment --fleet --quick         # seconds (tests)\n"
        "  scripts/experiment --fleet --strategies none,ksm --duration 300\n"
        % ", ".join(STRATEGY_ORDER))
    p.add_argument("--fleet", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true",
                   help="scale %g, %d workers, %d req/s, %g s per strategy "
                   "in %g s slices: seconds; what the tests use" % (
                       QUICK["scale"], QUICK["workers"], QUICK["rate"],
                       QUICK["duration"], QUICK["slice"]))
    p.add_argument("--strategies", default=",".join(STRATEGY_ORDER),
                   help="comma-separated strategies [all]")
    p.add_argument("--workload", default="webapp-stateful",
                   help="embedded workload name or JSON file "
                   "[%(default)s]")
    p.add_argument("--workers", type=int, default=None,
                   help="workers [%d]" % DEFAULTS["workers"])
    p.add_argument("--scale", type=float, default=None,
                   help="heap scale [%g]" % DEFAULTS["scale"])
    p.add_argument("--rate", type=float, default=None,
                   help="offered load, requests/s over all connections, the "
                   "same for every strategy [%d]" % DEFAULTS["rate"])
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of load per strategy [%g]" %
                   DEFAULTS["duration"])
    p.add_argument("--slice", type=float, default=None,
                   help="seconds per wrk slice (one throughput and latency "
                   "figure each) [%g]" % DEFAULTS["slice"])
    p.add_argument("--connections", type=int, default=0,
                   help="wrk connections [4 per worker]")
    p.add_argument("--threads", type=int, default=1, help="wrk threads [1]")
    p.add_argument("--exit", choices=["skip", "finalize"], default="skip",
                   help="how recycled workers exit [%(default)s: os._exit, "
                   "as Instagram's]")
    p.add_argument("--max-requests", type=int, default=None,
                   help="max-requests: N [%d]" % DEFAULTS["max_requests"])
    p.add_argument("--max-requests-jitter", type=int, default=None,
                   help="max-requests: jitter [%d]" %
                   DEFAULTS["max_requests_jitter"])
    p.add_argument("--reload-on-rss", type=int, default=0,
                   help="reload-on-rss: MiB [auto: a worker's RSS at "
                   "start + --reload-margin-pct of the heap]")
    p.add_argument("--reload-margin-pct", type=float, default=10.0,
                   help="reload-on-rss auto limit: margin in %% of the heap "
                   "[%(default)s]")
    p.add_argument("--max-copied-pct", type=float, default=None,
                   help="max-copied-pct: P [%g]" % DEFAULTS["max_copied_pct"])
    p.add_argument("--refork-after", default=None,
                   help="refork: N[,N2,...] (Pitchfork's default) [%s]" %
                   DEFAULTS["refork_after"])
    p.add_argument("--refork-select", choices=["first", "least-copied"],
                   default="first", help="refork: the mold [%(default)s]")
    p.add_argument("--ksm-pages-to-scan", type=int, default=5000,
                   help="ksm: pages per wake-up [%(default)s]")
    p.add_argument("--ksm-sleep-ms", type=int, default=20,
                   help="ksm: ms between wake-ups [%(default)s]")
    p.add_argument("--sample-ms", type=int, default=None,
                   help="server sample interval [%d; quick %d]" %
                   (DEFAULTS["sample_ms"], QUICK["sample_ms"]))
    p.add_argument("--sample-budget", type=float, default=5.0,
                   help="the sampler's share of a core [%(default)s]")
    p.add_argument("--server-args", default="",
                   help="more server flags for every strategy, e.g. "
                   "\"--identical-pages --identical-diff --type-census\"")
    p.add_argument("--out", default=None,
                   help="results folder [results/<timestamp>-fleet]")
    p.add_argument("--merge", metavar="OUT", default=None,
                   help="rebuild fleet.csv, the summary and the plots from "
                   "OUT/cells")
    p.add_argument("--bin", default=os.path.join(ROOT, "bin", "cowlab"),
                   help="the server binary [bin/cowlab]")
    p.add_argument("--no-plots", action="store_true", help="no PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    o = p.parse_args(argv)
    base = QUICK if o.quick else DEFAULTS
    for k in ("workers", "scale", "rate", "duration", "slice",
              "max_requests", "max_requests_jitter", "max_copied_pct",
              "refork_after", "sample_ms"):
        if getattr(o, k) is None:
            setattr(o, k, base[k])
    o.strategy_list = [s.strip() for s in o.strategies.split(",")
                       if s.strip()]
    for s in o.strategy_list:
        if s not in STRATEGY_ORDER:
            raise SystemExit("fleet: --strategies: unknown strategy %r "
                             "(known: %s)" % (s, ", ".join(STRATEGY_ORDER)))
    if not o.strategy_list:
        raise SystemExit("fleet: --strategies: empty list")
    if not 1 <= o.workers <= 256:
        raise SystemExit("fleet: --workers: %d is not in 1..256" % o.workers)
    if o.rate <= 0 or o.duration <= 0 or o.slice <= 0:
        raise SystemExit("fleet: --rate, --duration and --slice must be > 0")
    if o.slice > o.duration:
        o.slice = o.duration
    if os.path.isfile(o.workload):
        o.workload = os.path.abspath(o.workload)
    if o.out is None and o.merge is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        o.out = os.path.join("results", stamp + "-fleet" +
                             ("-quick" if o.quick else ""))
    return o


def strategy_flags(o, name, rss_limit):
    """The server flags of a strategy."""
    if name == "none":
        return []
    if name == "max-requests":
        return ["--max-requests", str(o.max_requests),
                "--max-requests-jitter", str(o.max_requests_jitter)]
    if name == "reload-on-rss":
        return ["--reload-on-rss", str(rss_limit)]
    if name == "max-copied-pct":
        return ["--max-copied-pct", "%g" % o.max_copied_pct]
    if name == "refork":
        return ["--refork-after", o.refork_after,
                "--refork-select", o.refork_select]
    ksm = ["--ksm", "--ksm-pages-to-scan", str(o.ksm_pages_to_scan),
           "--ksm-sleep-ms", str(o.ksm_sleep_ms)]
    if name == "ksm":
        return ksm
    if name == "ksm+freeze":
        return ksm + ["--freeze"]
    raise ValueError(name)


def ksm_usable():
    """(True, "") or (False, why not)."""
    run = "/sys/kernel/mm/ksm/run"
    if not os.path.exists(run):
        return False, "this kernel has no KSM (%s is missing)" % run
    if os.geteuid() != 0 or not os.access(run, os.W_OK):
        return False, "setting ksmd running needs root"
    return True, ""


def workload_paths(o):
    cmd = [o.bin, "--check-config", "--workload", o.workload]
    try:
        j = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                      text=True, timeout=30).stdout)
        return [r["path"] for r in j["workload_spec"]["routes"]]
    except (OSError, ValueError, KeyError,
            subprocess.SubprocessError) as e:
        raise SystemExit("fleet: cannot read the workload's routes with "
                         "%s: %s" % (" ".join(cmd), e))


def rel(a):
    """A path as recorded (cell.json, meta.json): this checkout's files
    relative to its root."""
    a = str(a)
    if a == ROOT or a.startswith(ROOT + os.sep):
        return os.path.relpath(a, ROOT)
    return a


# ---- one strategy ---------------------------------------------------------

def start_server(o, cdir, run_id, name, flags, duration):
    cmd = [o.bin, "--port", "0", "--workers", str(o.workers),
           "--scale", "%g" % o.scale, "--workload", o.workload,
           "--exit", o.exit, "--out", cdir, "--run-id", run_id,
           "--policy-name", name, "--sample-ms", str(o.sample_ms),
           "--sample-budget", "%g" % o.sample_budget,
           "--duration", "%d" % int(duration + 600)] + flags \
        + o.server_args.split()
    logf = open(os.path.join(cdir, "server.log"), "w")
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf,
                           stdin=subprocess.DEVNULL)
    out = LineReader(srv.stdout)
    port = None
    deadline = time.monotonic() + 180 + 60 * o.scale
    while port is None:
        for line in out.lines(0.5):
            if line.startswith("listening http://"):
                port = int(line.strip().rsplit(":", 1)[1])
        if port is None and (out.eof or srv.poll() is not None):
            logf.close()
            with open(os.path.join(cdir, "server.log")) as f:
                tail = f.read().strip().splitlines()[-3:]
            raise RuntimeError("server exited before listening (status %s): "
                               "%s" % (srv.wait(), " / ".join(tail)))
        if time.monotonic() > deadline:
            srv.kill()
            raise RuntimeError("server did not listen in time")
    # every worker serving: samples.csv has a row for each
    tail = SampleTail(os.path.join(cdir, "samples.csv"))
    while len(tail.last) < o.workers:
        if srv.poll() is not None:
            raise RuntimeError("server exited while starting")
        if time.monotonic() > deadline:
            raise RuntimeError("workers not serving in time")
        time.sleep(0.05)
        tail.poll()
    return srv, cmd, port, logf


def probe_rss_limit(o):
    """reload-on-rss's limit: a worker's RSS at start plus a margin of the
    heap (what a platform team would set: the RSS it sees, and room)."""
    cdir = os.path.join(o.out, "cells", "_probe")
    os.makedirs(cdir, exist_ok=True)
    srv, _, _, logf = start_server(o, cdir, "probe", "probe", [], 10)
    stop_process(srv, signal.SIGTERM, 60)
    logf.close()
    return rss_limit_from(o, cdir)


def rss_limit_from(o, cdir):
    rows = read_csv(os.path.join(cdir, "samples.csv"))
    first = {}
    for r in rows:
        first.setdefault(r.get("pid"), r)
    rss = median([num(r.get("rss_kb")) for r in first.values()])
    meta = json.load(open(os.path.join(cdir, "meta.json")))
    heap_mib = meta["heap_pages"] * meta["page_size"] / 1048576.0
    return int(math.ceil(rss / 1024.0 + heap_mib * o.reload_margin_pct
                         / 100.0)), rss / 1024.0, heap_mib


def run_strategy(o, name, i, n, paths, rss_limit):
    cdir = os.path.join(o.out, "cells", name.replace("+", "_"))
    if os.path.isdir(cdir):
        shutil.rmtree(cdir)
    os.makedirs(cdir)
    flags = strategy_flags(o, name, rss_limit)
    info = {"strategy": name, "flags": flags, "rate": o.rate,
            "duration_s": o.duration, "slice_s": o.slice,
            "workers": o.workers, "scale": o.scale, "workload": o.workload,
            "status": "running"}
    t0 = time.monotonic()
    srv = logf = None
    slices = []
    conns = max(o.connections or 4 * o.workers, o.threads)
    try:
        srv, cmd, port, logf = start_server(o, cdir, "fleet-" + name.replace(
            "+", "_"), name, flags, o.duration)
        info["server_cmd"] = [rel(a) for a in cmd]
        info["ready_s"] = round(time.monotonic() - t0, 3)
        time.sleep(0.25)
        wrk_txt = open(os.path.join(cdir, "wrk.txt"), "w")
        t_load = time.monotonic()
        info["t_load_mono_s"] = t_load
        k = 0
        while True:
            elapsed = time.monotonic() - t_load
            if elapsed >= o.duration - 1e-3:
                break
            secs = min(o.slice, o.duration - elapsed)
            # wrk's -d is whole seconds at least; a shorter last slice
            # becomes one of 1 s
            d = max(1, int(round(secs)))
            wcmd = ["wrk", "-t", str(o.threads), "-c", str(conns),
                    "-d", "%ds" % d, "--timeout", "10s",
                    "-s", os.path.join(HERE, "wrk_rate.lua"),
                    "http://127.0.0.1:%d" % port, "--",
                    "%g" % o.rate, ",".join(paths), str(o.threads)]
            ts = time.monotonic()
            r = subprocess.run(wcmd, capture_output=True, text=True,
                               timeout=d + 60)
            te = time.monotonic()
            wrk_txt.write("# slice %d\n" % k + r.stdout + r.stderr)
            res = None
            for line in r.stdout.splitlines():
                if line.startswith("WRK_RESULT "):
                    res = json.loads(line[len("WRK_RESULT "):])
            if res is None:
                raise RuntimeError("wrk printed no result (slice %d; see "
                                   "wrk.txt)" % k)
            res.update({"slice": k, "t_start_mono_s": ts,
                        "t_end_mono_s": te,
                        "t_s": round(te - t_load, 3)})
            slices.append(res)
            k += 1
            if srv.poll() is not None:
                raise RuntimeError("server exited during the load (status "
                                   "%s)" % srv.returncode)
            if not o.quiet:
                sys.stderr.write(
                    "\r\033[K[%d/%d] %-14s %5.1f/%g s  %6.0f req/s  p99 "
                    "%7.1f ms" % (i, n, name, te - t_load, o.duration,
                                  res["rps"], res["p99_ms"])
                    if sys.stderr.isatty() else "")
        wrk_txt.close()
        info["load_s"] = round(time.monotonic() - t_load, 3)
        rc = stop_process(srv, signal.SIGTERM, 120)
        if rc != 0:
            raise RuntimeError("server exited with status %s" % rc)
        info["status"] = "ok"
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        info["status"] = "failed: %s" % e
    finally:
        if srv is not None and srv.poll() is None:
            stop_process(srv, signal.SIGTERM, 60)
        if logf is not None:
            logf.close()
        with open(os.path.join(cdir, "slices.csv"), "w", newline="") as f:
            cols = ["slice", "t_s", "t_start_mono_s", "t_end_mono_s",
                    "requests", "wrk_duration_s", "rps", "p50_ms", "p90_ms",
                    "p99_ms", "p999_ms", "latency_mean_ms", "latency_max_ms",
                    "errors_connect", "errors_read", "errors_write",
                    "errors_status", "errors_timeout"]
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore",
                               lineterminator="\n")
            w.writeheader()
            for s in slices:
                w.writerow(s)
        info["wall_s"] = round(time.monotonic() - t0, 3)
        with open(os.path.join(cdir, "cell.json"), "w") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
    if not o.quiet:
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
        if info["status"] == "ok":
            s = summarize_cell(o_like(o), cdir, info)
            log("[%d/%d] %-14s done: total PSS %s MiB, %s req/s, p99 %s ms, "
                "respawns %s, reforks %s (%.0f s)" % (
                    i, n, name, fmt(s["total_pss_mib"], 1), fmt(s["rps"], 0),
                    fmt(s["p99_ms"], 1), s["respawns"], s["reforks"],
                    time.monotonic() - t0))
        else:
            log("[%d/%d] %-14s %s" % (i, n, name, info["status"].upper()))
    return info


class o_like:
    """The options merge needs, from a run's options or its cells."""

    def __init__(self, o):
        self.rate = o.rate
        self.duration = o.duration


# ---- merging -----------------------------------------------------------------

def fmt(v, nd=1):
    if v is None or v == "":
        return ""
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    return ("%." + str(nd) + "f") % v


def fleet_rows(cdir, info):
    """fleet.csv rows of a cell: one per slice, the server's totals over
    the slice lined up by CLOCK_MONOTONIC."""
    totals = read_csv(os.path.join(cdir, "totals.csv"))
    slices = read_csv(os.path.join(cdir, "slices.csv"))
    meta = {}
    try:
        meta = json.load(open(os.path.join(cdir, "meta.json")))
    except (OSError, ValueError):
        pass
    heap_pages = num(meta.get("heap_pages"), 0)
    for t in totals:
        t["_t"] = num(t.get("t_mono_s"), 0)
    rows = []
    for s in slices:
        a, b = num(s["t_start_mono_s"]), num(s["t_end_mono_s"])
        inside = [t for t in totals if a < t["_t"] <= b]
        before = [t for t in totals if t["_t"] <= b]
        last = before[-1] if before else (totals[0] if totals else {})
        use = inside or ([last] if last else [])

        def m(col):
            return mean([num(t.get(col)) for t in use])
        workers = m("workers") or 0
        copied = m("heap_copied_pages")
        shared = (100.0 * (1 - copied / (workers * heap_pages))
                  if copied is not None and workers and heap_pages else None)
        errors = sum(int(num(s.get(c), 0)) for c in (
            "errors_connect", "errors_read", "errors_write", "errors_status",
            "errors_timeout"))
        rows.append({
            "strategy": info["strategy"], "t_s": num(s["t_s"]),
            "total_pss_kb": m("total_pss_kb"), "rps": num(s["rps"]),
            "p99_ms": num(s["p99_ms"]),
            "respawns": int(num(last.get("respawns"), 0)),
            "refork_generation": int(num(last.get("refork_generation"), 0)),
            "ksmd_cpu_s": num(last.get("ksmd_cpu_s")),
            "p50_ms": num(s["p50_ms"]), "p90_ms": num(s["p90_ms"]),
            "requests": int(num(s["requests"], 0)), "errors": errors,
            "master_pss_kb": m("master_pss_kb"),
            "workers_pss_kb": m("workers_pss_kb"),
            "heap_copied_pages": copied, "heap_shared_pct": shared,
            "ksm_pages_sharing": m("ksm_pages_sharing"),
            "recycles": int(num(last.get("recycles"), 0)),
            "reforks": int(num(last.get("reforks"), 0)),
            "cpu_s": num(last.get("cpu_s")),
            "slice_s": num(s["wrk_duration_s"]),
        })
    return rows


def summarize_cell(o, cdir, info):
    rows = fleet_rows(cdir, info)
    runs = read_csv(os.path.join(cdir, "runs.csv"))
    run = runs[-1] if runs else {}
    dur = num(info.get("duration_s"), o.duration) or o.duration
    steady = [r for r in rows if r["t_s"] is not None and r["t_s"] > dur / 2]
    steady = steady or rows
    s = {"strategy": info["strategy"], "flags": " ".join(info["flags"]),
         "status": info.get("status", "")}
    s["total_pss_mib"] = (mean([r["total_pss_kb"] for r in steady]) or 0) \
        / 1024.0 if steady else None
    s["total_pss_mib_end"] = (rows[-1]["total_pss_kb"] or 0) / 1024.0 \
        if rows else None
    s["heap_shared_pct"] = mean([r["heap_shared_pct"] for r in steady])
    s["rps"] = mean([r["rps"] for r in rows])
    s["rps_vs_offered_pct"] = (100.0 * s["rps"] / num(info.get("rate"),
                                                      o.rate)
                               if s["rps"] else None)
    s["p50_ms"] = median([r["p50_ms"] for r in rows])
    s["p99_ms"] = median([r["p99_ms"] for r in rows])
    s["p99_max_ms"] = max([r["p99_ms"] for r in rows if r["p99_ms"]
                           is not None], default=None)
    # latency during recycles: slices in which a worker was replaced or a
    # mold made, against the others
    ev, quiet = [], []
    prev = (0, 0)
    for r in rows:
        cur = (r["respawns"], r["reforks"])
        (ev if cur != prev else quiet).append(r["p99_ms"])
        prev = cur
    s["p99_events_ms"] = median(ev)
    s["p99_quiet_ms"] = median(quiet)
    s["errors"] = sum(r["errors"] for r in rows)
    s["respawns"] = int(num(run.get("respawns"), 0))
    s["recycles"] = int(num(run.get("recycles"), 0))
    s["reforks"] = int(num(run.get("reforks"), 0))
    req = num(run.get("requests"), 0)
    cpu = num(run.get("cpu_s"))
    s["cpu_ms_per_request"] = 1000.0 * cpu / req if cpu and req else None
    s["ksmd_cpu_s"] = num(run.get("ksmd_cpu_s"))
    dur_run = num(run.get("duration_s"))
    s["ksmd_core_pct"] = (100.0 * s["ksmd_cpu_s"] / dur_run
                          if s["ksmd_cpu_s"] is not None and dur_run
                          else None)
    saved = mean([r["ksm_pages_sharing"] for r in steady])
    s["ksm_saved_mib"] = saved * 4096 / 1048576.0 if saved else None
    s["ksmd_cpu_s_per_gib"] = (s["ksmd_cpu_s"] / (saved * 4096 / 2 ** 30)
                               if s["ksmd_cpu_s"] is not None and saved
                               else None)
    return s


def load_cells(out):
    infos = []
    cells = os.path.join(out, "cells")
    for name in sorted(os.listdir(cells)) if os.path.isdir(cells) else []:
        try:
            info = json.load(open(os.path.join(cells, name, "cell.json")))
        except (OSError, ValueError):
            continue
        info["dir"] = os.path.join(cells, name)
        infos.append(info)
    infos.sort(key=lambda i: STRATEGY_ORDER.index(i["strategy"])
               if i["strategy"] in STRATEGY_ORDER else 99)
    return infos


def merge(o, skipped):
    infos = load_cells(o.out)
    if not infos:
        raise SystemExit("fleet: no cells under %s/cells" % o.out)
    if infos:
        o.rate = num(infos[0].get("rate"), o.rate)
        o.duration = num(infos[0].get("duration_s"), o.duration)
    all_rows, summary = [], []
    for info in infos:
        if not info.get("status", "").startswith("ok"):
            summary.append({"strategy": info["strategy"],
                            "flags": " ".join(info.get("flags", [])),
                            "status": info.get("status")})
            continue
        all_rows += fleet_rows(info["dir"], info)
        summary.append(summarize_cell(o, info["dir"], info))
    for name, why in skipped:
        summary.append({"strategy": name, "status": "skipped: " + why})
    base = next((s for s in summary if s["strategy"] == "none"
                 and s.get("total_pss_mib")), None)
    for s in summary:
        if base and s.get("total_pss_mib"):
            s["vs_none_pct"] = 100.0 * (s["total_pss_mib"]
                                        / base["total_pss_mib"] - 1)
    with open(os.path.join(o.out, "fleet.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FLEET_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in all_rows:
            w.writerow({k: ("" if r[k] is None else
                            (round(r[k], 3) if isinstance(r[k], float)
                             else r[k])) for k in FLEET_COLUMNS})
    with open(os.path.join(o.out, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS,
                           extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for s in summary:
            w.writerow({k: ("" if s.get(k) is None else
                            (round(s[k], 3) if isinstance(s[k], float)
                             else s[k])) for k in SUMMARY_COLUMNS})
    text = table_text(o, summary, infos)
    with open(os.path.join(o.out, "summary.txt"), "w") as f:
        f.write(text)
    made = [] if o.no_plots else plots(o, all_rows, summary)
    return summary, text, made


def targets(summary):
    """The issue's targets, figure by figure."""
    by = {s["strategy"]: s for s in summary if s.get("total_pss_mib")}
    lines = []
    k = by.get("ksm")
    if k:
        sh = k.get("heap_shared_pct")
        lines.append("KSM (default policy): %s%% of the heap shared at "
                     "steady load (target >= 50%%): %s; ksmd %s s of CPU, "
                     "%s s per GiB merged, %s%% of a core" % (
                         fmt(sh, 1), "met" if sh is not None and sh >= 50
                         else "missed", fmt(k.get("ksmd_cpu_s"), 1),
                         fmt(k.get("ksmd_cpu_s_per_gib"), 1),
                         fmt(k.get("ksmd_core_pct"), 1)))
    else:
        lines.append("KSM: not run here")
    bases = [by[n] for n in ("max-requests", "reload-on-rss") if n in by]
    if bases:
        b = min(bases, key=lambda s: s["total_pss_mib"])
        rivals = [s for s in by.values() if s is not b
                  and s["strategy"] not in ("max-requests", "reload-on-rss")]
        ok = [s for s in rivals
              if s.get("rps") and b.get("rps")
              and s["rps"] >= 0.95 * b["rps"]
              and s.get("p99_ms") is not None and b.get("p99_ms") is not None
              and s["p99_ms"] <= b["p99_ms"]]
        best = min(rivals, key=lambda s: s["total_pss_mib"]) if rivals \
            else None
        if best:
            cut = 100.0 * (1 - best["total_pss_mib"] / b["total_pss_mib"])
            lines.append(
                "Best strategy by total PSS: %s, %.1f MiB, %.1f%% below the "
                "better of max-requests and reload-on-rss (%s, %.1f MiB); "
                "throughput %s vs %s req/s, p99 %s vs %s ms: %s" % (
                    best["strategy"], best["total_pss_mib"], cut,
                    b["strategy"], b["total_pss_mib"],
                    fmt(best.get("rps"), 0), fmt(b.get("rps"), 0),
                    fmt(best.get("p99_ms"), 1), fmt(b.get("p99_ms"), 1),
                    "within 5% and no worse" if best in ok else
                    "throughput or p99 worse"))
        # the target holds only where all three do
        alt = min(ok, key=lambda s: s["total_pss_mib"]) if ok else None
        if alt:
            cut = 100.0 * (1 - alt["total_pss_mib"] / b["total_pss_mib"])
            lines.append(
                "Target (>= 20%% below %s at throughput within 5%% and p99 "
                "no worse): %s; the best that keeps throughput and p99 is "
                "%s, %.1f MiB, %s" % (
                    b["strategy"], "met" if cut >= 20 else "missed",
                    alt["strategy"], alt["total_pss_mib"],
                    "%.1f%% below" % cut if cut >= 0
                    else "%.1f%% above" % -cut))
        else:
            lines.append("Target (>= 20%% below %s at throughput within 5%% "
                         "and p99 no worse): missed; no other strategy kept "
                         "throughput and p99" % b["strategy"])
    return lines


def table_text(o, summary, infos):
    hdr = ("strategy", "PSS MiB", "vs none", "shared %", "req/s", "p50 ms",
           "p99 ms", "p99 max", "p99 events", "errors", "respawns",
           "reforks", "CPU ms/req", "ksmd s", "ksmd s/GiB")
    rows = []
    for s in summary:
        if not s.get("total_pss_mib"):
            rows.append((s["strategy"], s.get("status", "")) +
                        ("",) * (len(hdr) - 2))
            continue
        rows.append((
            s["strategy"], fmt(s["total_pss_mib"], 1),
            ("%+.1f%%" % s["vs_none_pct"]) if s.get("vs_none_pct")
            is not None else "", fmt(s.get("heap_shared_pct"), 1),
            fmt(s.get("rps"), 0), fmt(s.get("p50_ms"), 2),
            fmt(s.get("p99_ms"), 1), fmt(s.get("p99_max_ms"), 1),
            fmt(s.get("p99_events_ms"), 1), str(s.get("errors", "")),
            str(s.get("respawns", "")), str(s.get("reforks", "")),
            fmt(s.get("cpu_ms_per_request"), 2), fmt(s.get("ksmd_cpu_s"), 1),
            fmt(s.get("ksmd_cpu_s_per_gib"), 1)))
    widths = [max(len(str(r[i])) for r in rows + [hdr])
              for i in range(len(hdr))]
    out = []
    i0 = infos[0] if infos else {}
    out.append("Fleet strategies at equal load: %s req/s offered for %s s "
               "each, %s workers, workload %s, scale %s; PSS and heap "
               "shared: mean over the second half" % (
                   fmt(num(i0.get("rate")), 0), fmt(num(i0.get("duration_s")),
                                                    0),
                   i0.get("workers", "?"), os.path.basename(
                       str(i0.get("workload", "?"))), i0.get("scale", "?")))
    out.append("  ".join(h.ljust(widths[i]) if i == 0 else h.rjust(widths[i])
                         for i, h in enumerate(hdr)))
    for r in rows:
        out.append("  ".join(str(c).ljust(widths[i]) if i == 0
                             else str(c).rjust(widths[i])
                             for i, c in enumerate(r)))
    out.append("")
    out.append("p99 events: median p99 of the slices in which a worker was "
               "replaced or a mold made.  wrk is paced (wrk_rate.lua) but "
               "closed-loop per connection: no coordinated-omission "
               "correction.")
    out += targets(summary)
    return "\n".join(out) + "\n"


COLORS = {"none": "#7f7f7f", "max-requests": "#1f77b4",
          "reload-on-rss": "#17becf", "max-copied-pct": "#9467bd",
          "refork": "#ff7f0e", "ksm": "#2ca02c", "ksm+freeze": "#d62728"}


def plots(o, rows, summary):
    if shutil.which("gnuplot") is None:
        log("fleet: gnuplot not found: no plots (install gnuplot-nox)")
        with open(os.path.join(o.out, "PLOTS-SKIPPED.txt"), "w") as f:
            f.write("gnuplot was not installed: no PNG plots were made.\n")
        return []
    pdir = os.path.join(o.out, "plotdata")
    os.makedirs(pdir, exist_ok=True)
    by = {}
    for r in rows:
        by.setdefault(r["strategy"], []).append(r)
    cells = {i["strategy"]: i for i in load_cells(o.out)}
    pss, rps, p99 = [], [], []
    for name in STRATEGY_ORDER:
        if name not in by:
            continue
        style = "with linespoints lw 2 pt 7 ps 0.5 lc rgb %s title %s" % (
            gp_str(COLORS[name]), gp_str(name))
        # PSS: every sampling round of the server, from the fork on
        # (negative times: before the load began)
        fn = os.path.join(pdir, "pss_%s.csv" % name.replace("+", "_"))
        t_load = num(cells[name].get("t_load_mono_s"))
        with open(fn, "w") as f:
            f.write("# t_s,total_pss_mib\n")
            for t in read_csv(os.path.join(cells[name]["dir"],
                                           "totals.csv")):
                if t_load is not None:
                    f.write("%.3f,%.3f\n" % (
                        num(t["t_mono_s"], 0) - t_load,
                        num(t["total_pss_kb"], 0) / 1024.0))
        pss.append("%s using 1:2 %s" % (gp_str(fn), style))
        fn = os.path.join(pdir, "load_%s.csv" % name.replace("+", "_"))
        with open(fn, "w") as f:
            f.write("# t_s,rps,p99_ms\n")
            for r in by[name]:
                f.write("%.3f,%.1f,%.3f\n" % (r["t_s"], r["rps"] or 0,
                                              r["p99_ms"] or 0))
        rps.append("%s using 1:2 %s" % (gp_str(fn), style))
        p99.append("%s using 1:3 %s" % (gp_str(fn), style))
    if not pss:
        return []
    i0 = load_cells(o.out)[0]
    tag = "%s workers, %s req/s, %s" % (i0.get("workers"),
                                        fmt(num(i0.get("rate")), 0),
                                        os.path.basename(
                                            str(i0.get("workload"))))
    png1 = os.path.join(o.out, "fleet_total_pss.png")
    png2 = os.path.join(o.out, "fleet_load.png")
    gp = ['set terminal pngcairo size 1000,620 enhanced font "DejaVu Sans,11"',
          "set grid", 'set datafile separator ","',
          "set output %s" % gp_str(png1),
          "set title %s" % gp_str("Total memory of the app over time (PSS "
                                  "of master + workers + molds; %s)" % tag),
          'set xlabel "time since the load began (s; before 0: the workers '
          'forked, idle)"', 'set ylabel "total PSS (MiB)"',
          "set key outside right top", "set yrange [0:*]",
          "plot " + ", \\\n     ".join(pss),
          "set terminal pngcairo size 1000,760 enhanced font "
          '"DejaVu Sans,11"',
          "set output %s" % gp_str(png2),
          "set multiplot layout 2,1 title %s" % gp_str(
              "Throughput and p99 latency per slice (%s)" % tag),
          'set title "throughput"', 'set ylabel "requests/s"',
          'set xlabel ""', "set xrange [0:*]",
          "plot " + ", \\\n     ".join(rps),
          'set title "p99 latency (log scale)"', "set logscale y",
          'set ylabel "p99 (ms)"', "set yrange [*:*]",
          'set xlabel "time under load (s)"',
          "plot " + ", \\\n     ".join(p99), "unset multiplot"]
    script = os.path.join(o.out, "plots.gp")
    with open(script, "w") as f:
        f.write("# generated by scripts/fleet.py: gnuplot %s\n" % script)
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        log("fleet: gnuplot failed:\n" + r.stderr)
        return []
    return [p for p in (png1, png2) if os.path.exists(p)]


def skip_line(name, why):
    """A strategy that cannot run here says so (and to tests/skips.sh)."""
    log("SKIP fleet_%s: %s" % (name.replace("+", "_"), why))
    if os.environ.get("COWLAB_SKIPS"):
        subprocess.run([os.path.join(ROOT, "tests", "skips.sh"), "add",
                        "fleet_" + name.replace("+", "_"), why],
                       stdout=subprocess.DEVNULL)


def main(argv):
    o = parse_args(argv)
    if o.merge:
        o.out = o.merge
        summary, text, made = merge(o, [])
        sys.stdout.write(text)
        return 0
    if not os.access(o.bin, os.X_OK):
        raise SystemExit("fleet: %s is missing: run make first" % o.bin)
    if shutil.which("wrk") is None:
        raise SystemExit("fleet: wrk is not installed (apt-get install wrk)")
    os.makedirs(os.path.join(o.out, "cells"), exist_ok=True)
    paths = workload_paths(o)
    todo = [s for s in STRATEGY_ORDER if s in o.strategy_list]
    skipped = []
    usable, why = ksm_usable()
    if not usable:
        for s in todo:
            if s in KSM_STRATEGIES:
                skip_line(s, why)
                skipped.append((s, why))
        todo = [s for s in todo if s not in KSM_STRATEGIES]
    t0 = time.monotonic()
    if not o.quiet:
        log("fleet: %s; %g req/s for %g s each in %g s slices, %d workers, "
            "workload %s, scale %g; results in %s" % (
                ", ".join(todo), o.rate, o.duration, o.slice, o.workers,
                os.path.basename(o.workload), o.scale, o.out))
    rss_limit = o.reload_on_rss
    failed = 0
    for i, name in enumerate(todo, 1):
        if name == "reload-on-rss" and not rss_limit:
            none_dir = os.path.join(o.out, "cells", "none")
            if "none" in todo and os.path.exists(os.path.join(
                    none_dir, "meta.json")):
                rss_limit, rss0, heap = rss_limit_from(o, none_dir)
            else:
                rss_limit, rss0, heap = probe_rss_limit(o)
            if not o.quiet:
                log("fleet: reload-on-rss %d MiB (a worker's RSS at start "
                    "%.0f MiB + %g%% of the %.0f MiB heap)" % (
                        rss_limit, rss0, o.reload_margin_pct, heap))
        info = run_strategy(o, name, i, len(todo), paths, rss_limit)
        if info["status"] != "ok":
            failed += 1
    probe = os.path.join(o.out, "cells", "_probe")
    if os.path.isdir(probe):
        shutil.rmtree(probe)
    summary, text, made = merge(o, skipped)
    sys.stdout.write("\n" + text)
    with open(os.path.join(o.out, "meta.json"), "w") as f:
        json.dump({"options": {k: (rel(v) if k == "bin" else v)
                               for k, v in vars(o).items()
                               if isinstance(v, (str, int, float, bool,
                                                 list, type(None)))},
                   "skipped": skipped, "kernel": os.uname().release,
                   "cores": os.cpu_count(),
                   "date": datetime.datetime.utcnow().strftime(
                       "%Y-%m-%dT%H:%M:%SZ")}, f, indent=2)
        f.write("\n")
    log("fleet: %d strategies in %.0f s, %d failed, %d skipped; results in "
        "%s%s" % (len(todo), time.monotonic() - t0, failed, len(skipped),
                  o.out, ("; plots: " + " ".join(os.path.basename(m)
                                                  for m in made))
                  if made else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        log("\nfleet: interrupted; the cells done so far are in their "
            "folders (--merge OUT rebuilds the summary)")
        sys.exit(130)
