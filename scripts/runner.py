#!/usr/bin/env python3
"""
runner.py -- run cowlab's policy matrix under wrk load, merge the results,
print and save a summary, draw the plots.  Standard library only.

Normally started by scripts/experiment (which installs what is missing and
builds bin/cowlab first); `runner.py --help` lists the options.

The matrix is policies x workers x scales x exit policies.  One cell is one
server run:

    start bin/cowlab (--port 0, the cell's flags, --out CELL_DIR)
    wait until every worker is serving (the master samples only serving
        workers, so: until samples.csv has a row for each of them)
    wrk: REQUESTS x workers responses over a fixed route mix, closed loop;
        the Lua script stops each wrk thread after its share, then we
        interrupt wrk (its main thread otherwise sleeps for all of -d)
    read the master's PSS (the heap it still maps), then SIGTERM the master:
        workers drain and apply the exit policy (finalize | skip), whose
        time and faults the master writes into runs.csv

The exit policy is a server flag, so measuring teardown both ways takes two
runs per policy: each gets the same load, so load figures (sharing,
faults, throughput, latency) have two replicates per policy and the summary
shows their mean, while teardown is reported per exit policy.

Output (OUT = results/<timestamp> unless --out):
    OUT/cells/<run_id>/   one folder per cell: the server's samples.csv,
                          runs.csv, meta.json, its log, wrk's output and
                          cell.json (the runner's figures for the cell)
    OUT/samples.csv       every cell's samples, concatenated
    OUT/routes.csv        every cell's routes.csv (copies by route)
    OUT/kinds.csv         with --write-kinds: every cell's kinds.csv
    OUT/runs.csv          one row per cell: the server's row with rps,
                          p50_ms and p99_ms taken from wrk, plus the
                          columns in EXTRA_RUN_COLUMNS below
    OUT/summary.txt, OUT/summary.csv, OUT/meta.json, OUT/*.png
Cells merge by run_id: a matrix spread over hosts (--print-matrix) is
merged by copying every host's OUT/cells/ into one OUT and running --merge.
"""

import argparse
import csv
import datetime
import json
import math
import os
import platform
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> server flags.  The five of the issue first, in the order the
# summary and the plots use; "immortal" alone is accepted too.
POLICIES = {
    "default": [],
    "gc-off": ["--gc", "off"],
    "freeze": ["--freeze"],
    "freeze+immortal": ["--freeze", "--immortal"],
    "lazy": ["--lazy"],
    "immortal": ["--immortal"],
    # The designs (README "Designs"): runtime modes under the default GC
    # policy; "default" above is their baseline, inline/inline.
    "gc-side": ["--gc-layout", "side"],
    "gc-bitmap": ["--gc-layout", "bitmap"],
    "rc-split": ["--refcount", "split"],
    "gc-side+rc-split": ["--gc-layout", "side", "--refcount", "split"],
    "gc-bitmap+rc-split": ["--gc-layout", "bitmap", "--refcount", "split"],
    "warmup": ["--warmup"],
}
DEFAULT_POLICIES = ["default", "gc-off", "freeze", "freeze+immortal", "lazy"]
EXITS = ["finalize", "skip"]

# --designs: one run per design, the same workload and load; immortal (the
# pre-fork heap made immortal: nothing mortal is shared) for contrast.
DESIGN_POLICIES = ["default", "gc-side", "gc-bitmap", "rc-split",
                   "gc-side+rc-split", "gc-bitmap+rc-split", "warmup",
                   "immortal"]
DESIGN_EXITS = ["skip"]         # one run each: teardown is not the question
DESIGN_REQUESTS = 20000         # per worker (issue 13's headline)
DESIGN_BASELINE = "default"     # inline/inline: the ratios' denominator

# What --quick changes (the tests use it): a small heap, few requests.
QUICK = {"scale": "0.05", "workers": "2", "requests": 500, "sample_ms": 20}
DEFAULT_REQUESTS = 2500         # per worker
DEFAULT_SAMPLE_MS = 100

# The columns the runner appends to the server's runs.csv columns.
EXTRA_RUN_COLUMNS = [
    "server_rps",           # the master's own requests / run time
    "p90_ms", "p999_ms", "latency_mean_ms", "latency_max_ms",  # wrk
    "wrk_requests", "wrk_errors", "wrk_span_s", "wrk_connections",
    "wrk_threads",
    "requests_per_worker",  # the target
    "worker_requests_min", "worker_requests_max",  # served, final sample
    "workers_loaded",       # workers that served >= --min-share x target
    "heap_shared_pct_loaded", "private_dirty_kb_loaded",  # mean over those
    "pss_kb",               # mean final PSS of a worker (loaded ones)
    "master_pss_kb",        # the master's PSS at the end of the load
    "total_pss_kb",         # master + every worker: the memory the app costs
    "rss_kb", "minflt",     # mean final, per (loaded) worker
    "faults_gc", "faults_request", "faults_other",      # the same
    "gc_collections_0", "gc_collections_1", "gc_collections_2",
    "gc_time_us",
    # the server's copy attribution (samples.csv), mean final per worker
    "copied_by_gc", "copied_by_request", "copied_unattributed",
    "load_s", "teardown_wall_ms",   # runner's wall clock
    "status",               # ok | failed: reason
]

COPIED_COLUMNS = ("copied_by_gc", "copied_by_request", "copied_unattributed")

SUMMARY_COLUMNS = [
    "policy", "workers", "scale", "runs", "requests_per_worker",
    "worker_requests_min", "worker_requests_max", "heap_objects", "heap_mb",
    "heap_shared_pct", "private_dirty_kb", "pss_kb", "total_pss_kb",
    "faults_gc", "faults_request", "faults_other",
    "gc_collections_0", "gc_collections_1", "gc_collections_2",
    "rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
    "teardown_ms_finalize", "faults_teardown_finalize",
    "teardown_ms_skip", "faults_teardown_skip",
    "copied_by_gc", "copied_by_request", "copied_unattributed",
    "copied_by_teardown_finalize", "copied_by_teardown_skip",
]


class CellError(Exception):
    pass


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---- options ----------------------------------------------------------------

def split_list(s, conv, what):
    out = []
    for part in str(s).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = conv(part)
        except ValueError:
            raise SystemExit("runner: --%s: not a valid value: %r" % (what, part))
        out.append(v)
    if not out:
        raise SystemExit("runner: --%s: empty list" % what)
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/experiment",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run cowlab's policy matrix under wrk load: every "
        "policy x workers x scale is run twice (exit finalize, exit skip), "
        "each run serving REQUESTS per worker; results, plots and a summary "
        "go to OUT.",
        epilog="Policies: %s.\nExamples:\n"
        "  scripts/experiment                      # the default matrix\n"
        "  scripts/experiment --quick              # seconds, small heap\n"
        "  scripts/experiment --designs            # the runtime designs, "
        "designs.csv\n"
        "  scripts/experiment --workers 1,2,4,8    # a workers sweep\n"
        "  scripts/experiment --print-matrix --scale 1,2,4 > cells.txt\n"
        "  parallel -j1 < cells.txt && scripts/experiment --merge OUT\n"
        "  scripts/experiment --validate            # the same with CPython "
        "(scripts/cpython_experiment.py --help)\n"
        % ", ".join(POLICIES))
    p.add_argument("--quick", action="store_true",
                   help="small heap (scale %s), %s workers, %d requests per "
                   "worker: seconds; what the tests use" %
                   (QUICK["scale"], QUICK["workers"], QUICK["requests"]))
    p.add_argument("--designs", action="store_true",
                   help="the runtime designs instead of the policies: %s "
                   "(exit %s, %d requests per worker; quick: %d), then "
                   "designs.csv and designs.png" %
                   (",".join(DESIGN_POLICIES), ",".join(DESIGN_EXITS),
                    DESIGN_REQUESTS, QUICK["requests"]))
    p.add_argument("--policies", default=None,
                   help="comma-separated policies [%s]" %
                   ",".join(DEFAULT_POLICIES))
    p.add_argument("--exits", default=None,
                   help="exit policies to measure [%s]" % ",".join(EXITS))
    p.add_argument("--workers", default=None,
                   help="workers, a comma-separated list to sweep [4]")
    p.add_argument("--scale", default=None,
                   help="heap scale, a comma-separated list to sweep [1]")
    p.add_argument("--requests", type=int, default=None,
                   help="requests per worker in each run [%d]" %
                   DEFAULT_REQUESTS)
    p.add_argument("--workload", default=None,
                   help="workload JSON file [the embedded webapp]")
    p.add_argument("--out", default=None,
                   help="results folder [results/<timestamp>]")
    p.add_argument("--print-matrix", action="store_true",
                   help="print one self-contained command per matrix cell "
                   "and exit (run them anywhere, then --merge OUT)")
    p.add_argument("--cell", action="store_true",
                   help="run the cells given into OUT/cells/ without merging "
                   "(what --print-matrix lines use)")
    p.add_argument("--merge", metavar="OUT", default=None,
                   help="merge OUT/cells/* into OUT: CSVs, summary, plots")
    p.add_argument("--connections", type=int, default=0,
                   help="wrk connections [4 per worker]")
    p.add_argument("--keepalive", choices=["on", "off"], default="on",
                   help="HTTP keep-alive between wrk and the workers; off = "
                   "one connection per request, as nginx talks to an "
                   "upstream by default [%(default)s]")
    p.add_argument("--threads", type=int, default=0,
                   help="wrk threads [1, 2 from 8 cores]")
    p.add_argument("--sample-ms", type=int, default=0,
                   help="server sample interval [%d; quick: %d]" %
                   (DEFAULT_SAMPLE_MS, QUICK["sample_ms"]))
    p.add_argument("--sample-budget", type=float, default=5.0,
                   help="share of a core (%%) the server's sampler may "
                   "use before it lengthens --sample-ms; 0 = no limit "
                   "[%(default)s]")
    p.add_argument("--write-sample-ms", type=int, default=1000,
                   help="the server samples one request's whole write set "
                   "every N ms (written_pages; 0 = none) [%(default)s]")
    p.add_argument("--write-kinds", action="store_true",
                   help="copies by kind of write (the server's diagnostic "
                   "mode, bin/cowlab-kinds: slower): kinds.csv and "
                   "kinds.png")
    p.add_argument("--min-share", type=float, default=0.5,
                   help="re-run a cell in which a worker served less than "
                   "this fraction of --requests [%(default)s]")
    p.add_argument("--attempts", type=int, default=3,
                   help="runs of a cell at most, while it fails or is "
                   "unbalanced (--min-share) [%(default)s]")
    p.add_argument("--load-timeout", type=float, default=600.0,
                   help="give up on a cell's load after S seconds "
                   "[%(default)s]")
    p.add_argument("--python", choices=["3.11", "3.12"], default=None,
                   help="CPython version the server's runtime mirrors "
                   "(bin/cowlab --python) [the server's: 3.12]")
    p.add_argument("--prefork-gc", choices=["import", "collected"],
                   default=None,
                   help="the collector's state at fork (bin/cowlab "
                   "--prefork-gc) [the server's: import]")
    p.add_argument("--bin", default=os.path.join(ROOT, "bin", "cowlab"),
                   help="the server binary [bin/cowlab]")
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines")
    o = p.parse_args(argv)
    o.workers_list = split_list(o.workers or (QUICK["workers"] if o.quick
                                               else "4"), int, "workers")
    o.scale_list = split_list(o.scale or (QUICK["scale"] if o.quick
                                           else "1"), float, "scale")
    o.policy_list = split_list(o.policies or ",".join(
        DESIGN_POLICIES if o.designs else DEFAULT_POLICIES), str, "policies")
    o.exit_list = split_list(o.exits or ",".join(
        DESIGN_EXITS if o.designs else EXITS), str, "exits")
    for pol in o.policy_list:
        if pol not in POLICIES:
            raise SystemExit("runner: --policies: unknown policy %r "
                             "(known: %s)" % (pol, ", ".join(POLICIES)))
    for e in o.exit_list:
        if e not in EXITS:
            raise SystemExit("runner: --exits: unknown exit policy %r "
                             "(known: finalize, skip)" % e)
    for w in o.workers_list:
        if not 1 <= w <= 256:
            raise SystemExit("runner: --workers: %d is not in 1..256" % w)
    for s in o.scale_list:
        if not 0 < s <= 1000:
            raise SystemExit("runner: --scale: %g is not in (0, 1000]" % s)
    if o.requests is None:
        o.requests = (QUICK["requests"] if o.quick else
                      DESIGN_REQUESTS if o.designs else DEFAULT_REQUESTS)
    if o.requests < 1:
        raise SystemExit("runner: --requests: must be at least 1")
    if not o.sample_ms:
        o.sample_ms = QUICK["sample_ms"] if o.quick else DEFAULT_SAMPLE_MS
    if o.workload:
        o.workload = os.path.abspath(o.workload)
        if not os.path.isfile(o.workload):
            raise SystemExit("runner: --workload: no such file: %s" %
                             o.workload)
    if o.out is None and o.merge is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        o.out = os.path.join("results", stamp + ("-designs" if o.designs
                                                 else "")
                             + ("-quick" if o.quick else ""))
    return o


# ---- the matrix ---------------------------------------------------------------

def fmt_scale(s):
    return ("%g" % s)


def run_id_of(policy, workers, scale, exit_policy):
    # the server takes [A-Za-z0-9._-] in a run id: "freeze+immortal" is
    # "freeze_immortal" there (the policy column keeps the '+')
    return "%s-w%d-s%s-%s" % (policy.replace("+", "_"), workers,
                              fmt_scale(scale), exit_policy)


def matrix(o):
    cells = []
    for s in o.scale_list:
        for w in o.workers_list:
            for pol in o.policy_list:
                for e in o.exit_list:
                    cells.append({"policy": pol, "workers": w, "scale": s,
                                  "exit": e, "requests": o.requests,
                                  "run_id": run_id_of(pol, w, s, e)})
    return cells


def cell_command(o, c):
    """One self-contained command line for a cell (run from the repo)."""
    args = ["scripts/experiment", "--cell", "--out", o.out,
            "--policies", c["policy"], "--exits", c["exit"],
            "--workers", str(c["workers"]), "--scale", fmt_scale(c["scale"]),
            "--requests", str(c["requests"]),
            "--sample-ms", str(o.sample_ms),
            "--sample-budget", "%g" % o.sample_budget,
            "--write-sample-ms", str(o.write_sample_ms)]
    if o.write_kinds:
        args += ["--write-kinds"]
    if o.workload:
        args += ["--workload", o.workload]
    if o.connections:
        args += ["--connections", str(o.connections)]
    if o.threads:
        args += ["--threads", str(o.threads)]
    if o.keepalive != "on":
        args += ["--keepalive", o.keepalive]
    if o.python:
        args += ["--python", o.python]
    if o.prefork_gc:
        args += ["--prefork-gc", o.prefork_gc]
    if os.path.abspath(o.bin) != os.path.join(ROOT, "bin", "cowlab"):
        args += ["--bin", o.bin]
    if o.quick:
        args += ["--quick"]
    return " ".join(shlex.quote(a) for a in args)


# ---- one cell -----------------------------------------------------------------

def read_smaps_rollup(pid):
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[-1] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def workload_paths(o):
    """The workload's route paths, as the server parses them."""
    cmd = [o.bin, "--check-config"]
    if o.workload:
        cmd += ["--workload", o.workload]
    try:
        j = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                      text=True, timeout=30).stdout)
        paths = [r["path"] for r in j["workload_spec"]["routes"]]
        if paths:
            return paths
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
        raise SystemExit("runner: cannot read the workload's routes with "
                         "%s --check-config: %s" % (o.bin, e))
    raise SystemExit("runner: the workload has no routes")


class SampleTail:
    """Follows a growing samples.csv: complete lines only, by header."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.header = None
        self.buf = ""
        self.last = {}          # worker -> last row (dict)

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except OSError:
            return
        self.buf += data
        *lines, self.buf = self.buf.split("\n")
        for line in lines:
            if not line:
                continue
            fields = line.split(",")
            if self.header is None:
                self.header = fields
                continue
            row = dict(zip(self.header, fields))
            self.last[row.get("worker")] = row

    def requests(self):
        n = 0
        for r in self.last.values():
            try:
                n += int(r.get("requests", 0))
            except ValueError:
                pass
        return n


class LineReader:
    """Lines from a pipe without stdio buffering (select() on a buffered
    file object misses lines already read into its buffer)."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""
        self.eof = False

    def lines(self, timeout):
        """Complete lines available within timeout (may be [])."""
        if not self.eof:
            r, _, _ = select.select([self.fd], [], [], timeout)
            if r:
                data = os.read(self.fd, 65536)
                if data:
                    self.buf += data
                else:
                    self.eof = True
        *lines, self.buf = self.buf.split(b"\n")
        if self.eof and self.buf:
            lines.append(self.buf)
            self.buf = b""
        return [x.decode("utf-8", "replace") + "\n" for x in lines]


class Progress:
    def __init__(self, o, n, t0):
        self.o = o
        self.n = n
        self.t0 = t0
        self.tty = sys.stderr.isatty()
        self.live = False

    def update(self, i, cell, what, final=False):
        if self.o.quiet:
            return
        line = "[%2d/%d] %-16s w=%-3d scale=%-5s exit=%-8s %s  (%.1f s)" % (
            i, self.n, cell["policy"], cell["workers"],
            fmt_scale(cell["scale"]), cell["exit"], what,
            time.monotonic() - self.t0)
        if self.tty:
            sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
            sys.stderr.flush()
        elif final:
            log(line)


def stop_process(proc, sig, timeout):
    """Send sig to a process we started; wait up to timeout, then KILL."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def wrk_threads(o):
    if o.threads:
        return o.threads
    return 2 if (os.cpu_count() or 1) >= 8 else 1


def run_cell(o, c, i, progress, paths):
    cdir = os.path.join(o.out, "cells", c["run_id"])
    if os.path.isdir(cdir):
        shutil.rmtree(cdir)             # a re-run replaces the cell
    os.makedirs(cdir)
    W = c["workers"]
    total = c["requests"] * W
    threads = wrk_threads(o)
    conns = max(o.connections or 4 * W, threads)
    srv_cmd = [o.bin, "--port", "0", "--workers", str(W),
               "--scale", fmt_scale(c["scale"]), "--exit", c["exit"],
               "--out", cdir, "--run-id", c["run_id"],
               "--policy-name", c["policy"], "--sample-ms", str(o.sample_ms),
               "--sample-budget", "%g" % o.sample_budget,
               # smaps_rollup at every sample: the plots' curves (the
               # sampling budget bounds its cost)
               "--smaps-ms", "0",
               "--write-sample-ms", str(o.write_sample_ms),
               # safety bounds only: the runner stops the server itself
               "--requests", str(2 * total + 10 * conns + 1000),
               "--duration", str(int(o.load_timeout + 300))]
    if o.keepalive == "off":
        srv_cmd += ["--keepalive-timeout-ms", "0"]
    if o.python:
        srv_cmd += ["--python", o.python]
    if o.prefork_gc:
        srv_cmd += ["--prefork-gc", o.prefork_gc]
    if o.write_kinds and "--lazy" not in POLICIES[c["policy"]]:
        # a lazy worker inherits no heap: no copies, no kinds (and the
        # server refuses --write-kinds with --lazy)
        srv_cmd += ["--write-kinds"]
    srv_cmd += POLICIES[c["policy"]]
    if o.workload:
        srv_cmd += ["--workload", o.workload]
    info = {"run_id": c["run_id"], "policy": c["policy"], "workers": W,
            "scale": c["scale"], "exit": c["exit"],
            "requests_per_worker": c["requests"], "server_cmd": srv_cmd,
            "wrk_threads": threads, "wrk_connections": conns,
            "min_share": o.min_share, "status": "running"}
    # The server gives each worker its own SO_REUSEPORT socket, so the
    # kernel spreads wrk's connections by hash.  Should the workers share
    # one socket (an older server), libuv would accept every pending
    # connection at once and a few workers would grab all of them: this
    # makes it take one at a time.
    env = dict(os.environ, UV_TCP_SINGLE_ACCEPT="1")
    srv_log = open(os.path.join(cdir, "server.log"), "w")
    srv = subprocess.Popen(srv_cmd, stdout=subprocess.PIPE, stderr=srv_log,
                           stdin=subprocess.DEVNULL, env=env)
    wrk = None
    t_start = time.monotonic()
    try:
        progress.update(i, c, "building the heap")
        # 1. the listening line (after the heap is built)
        port = None
        deadline = time.monotonic() + 120 + 60 * c["scale"]
        out = LineReader(srv.stdout)
        while port is None:
            for line in out.lines(0.5):
                if line.startswith("listening http://"):
                    port = int(line.strip().rsplit(":", 1)[1])
            if port is None and out.eof:
                raise CellError("server exited before listening "
                                "(status %s)" % srv.wait())
            if time.monotonic() > deadline:
                raise CellError("server did not listen in time")
        info["port"] = port
        # 2. every worker serving (lazy workers build their heap first)
        tail = SampleTail(os.path.join(cdir, "samples.csv"))
        deadline = time.monotonic() + 120 + 60 * c["scale"]
        while len(tail.last) < W:
            if srv.poll() is not None:
                raise CellError("server exited while starting (status %s)"
                                % srv.returncode)
            if time.monotonic() > deadline:
                raise CellError("workers not serving in time")
            time.sleep(o.sample_ms / 2000.0)
            tail.poll()
        info["ready_s"] = round(time.monotonic() - t_start, 3)
        # Let every worker get back to epoll_wait on the listening socket
        # before wrk's connections arrive in one burst (on 2 cores a worker
        # still being scheduled otherwise misses them all).
        time.sleep(0.25)
        # 3. the load
        wrk_cmd = ["wrk", "-t", str(threads), "-c", str(conns),
                   "-d", "%ds" % int(o.load_timeout),
                   "-s", os.path.join(HERE, "wrk_mix.lua"),
                   "http://127.0.0.1:%d" % port, "--",
                   str(total), ",".join(paths), str(threads)]
        info["wrk_cmd"] = wrk_cmd
        wrk_out = []
        t_load = time.monotonic()
        wrk = subprocess.Popen(wrk_cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
        done_threads = set()
        t_done = None
        interrupted = False
        last_ui = 0.0
        wout = LineReader(wrk.stdout)
        while not wout.eof:
            for line in wout.lines(0.2):
                wrk_out.append(line)
                if line.startswith("WRK_THREAD_DONE"):
                    done_threads.add(line.split()[1])
                    if len(done_threads) >= threads and not interrupted:
                        t_done = time.monotonic()
                        wrk.send_signal(signal.SIGINT)
                        interrupted = now_int = time.monotonic()
            now = time.monotonic()
            if not interrupted and srv.poll() is not None:
                wrk.send_signal(signal.SIGINT)
                interrupted = now_int = now
            if interrupted and now - now_int > 15:
                wrk.kill()              # wrk ignored SIGINT: no figures
                raise CellError("wrk did not stop on SIGINT")
            if now - last_ui > 0.5:
                tail.poll()
                progress.update(i, c, "load %d/%d requests" %
                                (min(tail.requests(), total), total))
                last_ui = now
        wrk.wait(timeout=30)
        with open(os.path.join(cdir, "wrk.txt"), "w") as f:
            f.write(" ".join(shlex.quote(a) for a in wrk_cmd) + "\n")
            f.writelines(wrk_out)
        res = None
        for line in wrk_out:
            if line.startswith("WRK_RESULT "):
                res = json.loads(line[len("WRK_RESULT "):])
        if res is None:
            raise CellError("wrk printed no result (see wrk.txt)")
        res["wrk_duration_s_runner"] = round(
            (t_done or time.monotonic()) - t_load, 4)
        info["wrk"] = res
        info["load_s"] = round((t_done or time.monotonic()) - t_load, 3)
        if srv.poll() is not None:
            raise CellError("server exited during the load (status %s)"
                            % srv.returncode)
        if len(done_threads) < threads:
            raise CellError("wrk stopped before its %d requests "
                            "(load timeout?)" % total)
        # 4. the master's own share of memory, then the graceful stop
        info["master_pss_kb"] = read_smaps_rollup(srv.pid).get("Pss", "")
        progress.update(i, c, "teardown (%s)" % c["exit"])
        t_term = time.monotonic()
        rc = stop_process(srv, signal.SIGTERM, 90)
        info["teardown_wall_ms"] = round((time.monotonic() - t_term) * 1e3,
                                         1)
        if rc != 0:
            raise CellError("server exited with status %s after SIGTERM" % rc)
        if not os.path.exists(os.path.join(cdir, "runs.csv")):
            raise CellError("server wrote no runs.csv")
        info["status"] = "ok"
        # The load is balanced by the kernel's accept(): check that every
        # worker served its share (the retry is in run_cell_balanced()).
        served = [num(r.get("requests"), 0) for r in final_rows(
            read_csv(os.path.join(cdir, "samples.csv")), c["run_id"])]
        info["worker_requests"] = served
        if len(served) < W or min(served) < o.min_share * c["requests"]:
            info["status"] = "unbalanced"
    except CellError as e:
        info["status"] = "failed: %s" % e
    except KeyboardInterrupt:
        info["status"] = "failed: interrupted"
        raise
    finally:
        if wrk is not None and wrk.poll() is None:
            stop_process(wrk, signal.SIGINT, 5)
        if srv.poll() is None:
            stop_process(srv, signal.SIGTERM, 60)
        srv_log.close()
        info["wall_s"] = round(time.monotonic() - t_start, 3)
        with open(os.path.join(cdir, "cell.json"), "w") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
    if info["status"] == "ok":
        what = "done: %d requests, %.0f req/s, teardown %s ms" % (
            info["wrk"]["requests"], info["wrk"]["rps"], cell_teardown(cdir))
    elif info["status"] == "unbalanced":
        what = "unbalanced: workers served %s requests" % " ".join(
            "%d" % x for x in info["worker_requests"])
    else:
        what = info["status"].upper()
    progress.update(i, c, what, final=True)
    return info


def run_cell_balanced(o, c, i, progress, paths):
    """run_cell(), again (up to --attempts in all) while it fails or some
    worker served less than --min-share of its requests; the last attempt
    stands (an unbalanced one with a warning in cell.json and runs.csv's
    status)."""
    for attempt in range(1, o.attempts + 1):
        info = run_cell(o, c, i, progress, paths)
        if info["status"] == "ok":
            break
    if info["status"] == "unbalanced":
        info["status"] = "ok"
        info["warning"] = ("unbalanced after %d attempts: workers served %s"
                           % (o.attempts, " ".join("%d" % x for x in
                                                   info["worker_requests"])))
    info["attempts"] = attempt
    with open(os.path.join(o.out, "cells", c["run_id"], "cell.json"),
              "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return info


def cell_teardown(cdir):
    rows = read_csv(os.path.join(cdir, "runs.csv"))
    return rows[-1].get("teardown_ms", "?") if rows else "?"


# ---- merging ------------------------------------------------------------------

def read_csv(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def read_header(path):
    try:
        with open(path, newline="") as f:
            return next(csv.reader(f), [])
    except OSError:
        return []


def num(x, default=None):
    try:
        v = float(x)
        return v if math.isfinite(v) else default
    except (TypeError, ValueError):
        return default


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def policy_rank(p):
    names = list(POLICIES)
    return names.index(p) if p in names else len(names)


def cell_sort_key(info):
    return (num(info.get("scale"), 0), num(info.get("workers"), 0),
            policy_rank(info.get("policy")),
            EXITS.index(info["exit"]) if info.get("exit") in EXITS else 9,
            info.get("run_id"))


def final_rows(samples, run_id):
    """The last sample of every worker of a run (the master takes one at
    the stop, after the load)."""
    last = {}
    for r in samples:
        if r.get("run_id") == run_id:
            last[r.get("pid")] = r
    return list(last.values())


def load_cells(out):
    cells_dir = os.path.join(out, "cells")
    infos = []
    if not os.path.isdir(cells_dir):
        return infos
    for name in sorted(os.listdir(cells_dir)):
        p = os.path.join(cells_dir, name, "cell.json")
        try:
            with open(p) as f:
                info = json.load(f)
        except (OSError, ValueError):
            continue
        info["dir"] = os.path.join(cells_dir, name)
        infos.append(info)
    infos.sort(key=cell_sort_key)
    return infos


def fmt(v, nd=3):
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e15 and nd <= 1:
            return "%d" % v
        return ("%." + str(nd) + "f") % v
    return str(v)


def merge_rows(out, infos, name):
    """OUT/name: the rows of every cell's name, by run_id; none: no file."""
    header, rows = [], []
    for info in infos:
        path = os.path.join(info["dir"], name)
        for col in read_header(path):
            if col not in header:
                header.append(col)
        rows += [r for r in read_csv(path)
                 if r.get("run_id") == info["run_id"]]
    target = os.path.join(out, name)
    if not header:
        if os.path.exists(target):
            os.remove(target)
        return
    with open(target, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore",
                           lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def merge(out, plots=True):
    infos = load_cells(out)
    if not infos:
        raise SystemExit("runner: no cells under %s/cells" % out)
    # samples.csv: all cells, header by name (union, server order first)
    s_header = []
    all_samples = {}
    for info in infos:
        path = os.path.join(info["dir"], "samples.csv")
        for col in read_header(path):
            if col not in s_header:
                s_header.append(col)
        all_samples[info["run_id"]] = read_csv(path)
    with open(os.path.join(out, "samples.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=s_header, extrasaction="ignore",
                           lineterminator="\n")
        w.writeheader()
        for info in infos:
            for r in all_samples[info["run_id"]]:
                w.writerow(r)
    # routes.csv and kinds.csv: every cell's rows (header by name)
    for name in ("routes.csv", "kinds.csv"):
        merge_rows(out, infos, name)
    # runs.csv: the server's row, wrk's figures, the runner's columns
    r_header = []
    rows = []
    for info in infos:
        path = os.path.join(info["dir"], "runs.csv")
        for col in read_header(path):
            if col not in r_header:
                r_header.append(col)
        srows = [r for r in read_csv(path) if r.get("run_id") == info["run_id"]]
        row = dict(srows[-1]) if srows else {
            "run_id": info["run_id"], "policy": info["policy"],
            "workers": info["workers"], "scale": fmt_scale(info["scale"]),
            "exit": info["exit"]}
        wr = info.get("wrk") or {}
        fin = final_rows(all_samples[info["run_id"]], info["run_id"])

        # Per-worker means are over the workers that served at least
        # --min-share of their requests (all of them when the load was
        # balanced): an idle worker's 100 % shared would hide the others.
        target = num(info.get("requests_per_worker"), 0)
        share = num(info.get("min_share"), 0.5)
        loaded = [r for r in fin
                  if num(r.get("requests"), 0) >= share * target] or fin

        def fmean(col):
            return mean([num(r.get(col)) for r in loaded])

        reqs = [num(r.get("requests"), 0) for r in fin]
        row["workers_loaded"] = len(loaded)
        row["heap_shared_pct_loaded"] = fmt(fmean("heap_shared_pct"))
        row["private_dirty_kb_loaded"] = fmt(fmean("private_dirty_kb"), 0)
        pss = [num(r.get("pss_kb")) for r in fin]
        mpss = num(info.get("master_pss_kb"))
        row["server_rps"] = row.get("rps", "")
        row["rps"] = fmt(wr.get("rps"), 1) if wr else ""
        row["p50_ms"] = fmt(wr.get("p50_ms")) if wr else ""
        row["p99_ms"] = fmt(wr.get("p99_ms")) if wr else ""
        row["p90_ms"] = fmt(wr.get("p90_ms")) if wr else ""
        row["p999_ms"] = fmt(wr.get("p999_ms")) if wr else ""
        row["latency_mean_ms"] = fmt(wr.get("latency_mean_ms")) if wr else ""
        row["latency_max_ms"] = fmt(wr.get("latency_max_ms")) if wr else ""
        row["wrk_requests"] = wr.get("requests", "")
        row["wrk_errors"] = (sum(int(wr.get(k, 0)) for k in
                                 ("errors_connect", "errors_read",
                                  "errors_write", "errors_status",
                                  "errors_timeout")) if wr else "")
        row["wrk_span_s"] = fmt(wr.get("span_s")) if wr else ""
        row["wrk_connections"] = info.get("wrk_connections", "")
        row["wrk_threads"] = info.get("wrk_threads", "")
        row["requests_per_worker"] = info.get("requests_per_worker", "")
        row["worker_requests_min"] = fmt(min(reqs), 0) if reqs else ""
        row["worker_requests_max"] = fmt(max(reqs), 0) if reqs else ""
        row["pss_kb"] = fmt(fmean("pss_kb"), 0)
        row["master_pss_kb"] = fmt(mpss, 0)
        row["total_pss_kb"] = (fmt(sum(p for p in pss if p) + mpss, 0)
                               if pss and mpss is not None else "")
        for col in ("rss_kb", "minflt", "faults_gc", "faults_request",
                    "faults_other", "gc_collections_0", "gc_collections_1",
                    "gc_collections_2", "gc_time_us") + COPIED_COLUMNS:
            row[col] = fmt(fmean(col), 1)
        row["load_s"] = info.get("load_s", "")
        row["teardown_wall_ms"] = info.get("teardown_wall_ms", "")
        row["status"] = info.get("status", "")
        if info.get("warning"):
            row["status"] += " (%s)" % info["warning"]
        rows.append(row)
    header = r_header + [c for c in EXTRA_RUN_COLUMNS if c not in r_header]
    with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore",
                           lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    summary = summarize(rows)
    write_summary(out, summary, rows, infos)
    designs = design_table(rows)
    write_designs(out, designs)
    write_meta(out, infos)
    made = []
    if plots:
        made = make_plots(out, infos, all_samples, rows, summary, designs)
    return summary, rows, made


def summarize(rows):
    groups = {}
    for r in rows:
        if not r.get("status", "").startswith("ok"):
            continue
        key = (r.get("policy"), int(num(r.get("workers"), 0)),
               num(r.get("scale"), 0))
        groups.setdefault(key, []).append(r)
    out = []
    for key in sorted(groups, key=lambda k: (k[2], k[1], policy_rank(k[0]))):
        rs = groups[key]

        def m(col):
            return mean([num(r.get(col)) for r in rs])

        s = {"policy": key[0], "workers": key[1], "scale": key[2],
             "runs": len(rs)}
        s["requests_per_worker"] = rs[0].get("requests_per_worker", "")
        s["worker_requests_min"] = min(num(r.get("worker_requests_min"), 0)
                                       for r in rs)
        s["worker_requests_max"] = max(num(r.get("worker_requests_max"), 0)
                                       for r in rs)
        s["heap_shared_pct"] = m("heap_shared_pct_loaded")
        s["private_dirty_kb"] = m("private_dirty_kb_loaded")
        for col in ("heap_objects", "heap_mb", "pss_kb", "total_pss_kb",
                    "faults_gc", "faults_request", "faults_other",
                    "gc_collections_0", "gc_collections_1",
                    "gc_collections_2", "rps", "p50_ms", "p90_ms", "p99_ms",
                    "p999_ms") + COPIED_COLUMNS:
            s[col] = m(col)
        for e in EXITS:
            er = [r for r in rs if r.get("exit") == e]
            s["teardown_ms_" + e] = mean([num(r.get("teardown_ms"))
                                          for r in er])
            s["faults_teardown_" + e] = mean([num(r.get("faults_teardown"))
                                              for r in er])
            s["copied_by_teardown_" + e] = mean(
                [num(r.get("copied_by_teardown")) for r in er])
        out.append(s)
    return out


def table_text(summary, rows, infos):
    L = []
    multi = len({(s["workers"], s["scale"]) for s in summary}) > 1
    hdr1 = ("%-16s %s%7s %9s %22s %8s %7s %7s  %-17s %-17s" % (
        "policy", "         " if multi else "", "heap", "private",
        "minor faults/worker", "wrk", "p50", "p99",
        "teardown finalize", "teardown skip"))
    hdr2 = ("%-16s %s%7s %9s %7s %7s %7s %8s %7s %7s  %8s %8s %8s %8s" % (
        "", "  w scale" if multi else "", "shared", "dirty/wkr", "gc",
        "request", "other", "req/s", "ms", "ms", "ms", "faults", "ms",
        "faults"))
    hdr3 = ("%-16s %s%7s %9s %7s %7s %7s %8s %7s %7s  %8s %8s %8s %8s" % (
        "", "         " if multi else "", "%", "MiB", "", "", "", "", "",
        "", "", "", "", ""))
    L += [hdr1, hdr2, hdr3, "-" * len(hdr2)]

    def f(v, spec):
        return (spec % v) if v is not None else "-"

    for s in summary:
        L.append("%-16s %s%7s %9s %7s %7s %7s %8s %7s %7s  %8s %8s %8s %8s" % (
            s["policy"],
            ("%3d %5s " % (s["workers"], fmt_scale(s["scale"]))) if multi
            else "",
            f(s["heap_shared_pct"], "%.1f"),
            f(None if s["private_dirty_kb"] is None
              else s["private_dirty_kb"] / 1024, "%.1f"),
            f(s["faults_gc"], "%.0f"), f(s["faults_request"], "%.0f"),
            f(s["faults_other"], "%.0f"), f(s["rps"], "%.0f"),
            f(s["p50_ms"], "%.2f"), f(s["p99_ms"], "%.2f"),
            f(s["teardown_ms_finalize"], "%.1f"),
            f(s["faults_teardown_finalize"], "%.0f"),
            f(s["teardown_ms_skip"], "%.3f"),
            f(s["faults_teardown_skip"], "%.0f")))
    L.append("")
    if summary:
        s0 = summary[0]
        L.append("heap: %s objects, %.1f MiB of pages at fork; "
                 "%s requests per worker per run (served: %d to %d)." % (
                     fmt(s0["heap_objects"], 0), s0["heap_mb"] or 0,
                     s0["requests_per_worker"],
                     min(s["worker_requests_min"] for s in summary),
                     max(s["worker_requests_max"] for s in summary)))
    L.append("Per worker (workers that served at least half their "
             "requests), at the end of the load;")
    L.append("load figures are the mean over a policy's runs (one per exit "
             "policy); teardown is per exit policy.")
    L.append("wrk is closed-loop (a fixed number of connections, each "
             "waiting for its response):")
    L.append("its latencies do not correct for coordinated omission.")
    for r in rows:
        if r.get("status", "").startswith("ok ("):
            L.append("WARNING %s: %s" % (r.get("run_id"), r["status"][4:-1]))
    bad = [r for r in rows if not r.get("status", "").startswith("ok")]
    for r in bad:
        L.append("FAILED %s: %s (see cells/%s/)" % (r.get("run_id"),
                                                    r.get("status"),
                                                    r.get("run_id")))
    return "\n".join(L) + "\n"


def write_summary(out, summary, rows, infos):
    text = table_text(summary, rows, infos)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(SUMMARY_COLUMNS)
        for s in summary:
            w.writerow([csv_num(s.get(c)) for c in SUMMARY_COLUMNS])


# ---- designs ------------------------------------------------------------------

# designs.csv: one row per design (policy) and workers x scale, the mean
# over its runs (one per exit policy).  Memory overhead is per GC-able
# object of the master's heap: the collector's state (in the objects and
# beside them) and one worker's split refcount table.
DESIGN_COLUMNS = [
    "design", "gc_layout", "refcount", "warmup", "workers", "scale", "runs",
    "requests_per_worker", "heap_shared_pct", "side_pages",
    "side_copied_pages", "side_shared_pct", "gc_objects", "gc_inline_bytes",
    "gc_side_bytes", "gc_side_pages", "gc_bytes_per_object",
    "rc_table_entries",
    "rc_table_bytes", "rc_bytes_per_gc_object", "overhead_bytes_per_object",
    "rps", "rps_ratio_vs_inline", "p99_ms", "gc_time_us", "warmup_ms",
]


def design_rank(p):
    return (DESIGN_POLICIES.index(p) if p in DESIGN_POLICIES
            else len(DESIGN_POLICIES) + policy_rank(p))


def is_design_run(r):
    """A run in a mode other than inline/inline without warm-up."""
    return (r.get("gc_layout") not in (None, "", "inline")
            or r.get("refcount") not in (None, "", "inline")
            or r.get("warmup") not in (None, "", "0"))


def design_table(rows):
    """designs.csv's rows from the merged runs.csv rows; [] unless the
    runs include at least one design (a policy matrix gets no table)."""
    ok = [r for r in rows if r.get("status", "").startswith("ok")]
    if not any(is_design_run(r) for r in ok):
        return []
    groups = {}
    for r in ok:
        key = (r.get("policy"), int(num(r.get("workers"), 0)),
               num(r.get("scale"), 0))
        groups.setdefault(key, []).append(r)
    out = []
    for key in sorted(groups, key=lambda k: (k[2], k[1], design_rank(k[0]))):
        rs = groups[key]

        def m(col):
            return mean([num(r.get(col)) for r in rs])

        d = {"design": key[0], "workers": key[1], "scale": key[2],
             "runs": len(rs),
             "gc_layout": rs[0].get("gc_layout", ""),
             "refcount": rs[0].get("refcount", ""),
             "warmup": rs[0].get("warmup", ""),
             "requests_per_worker": rs[0].get("requests_per_worker", ""),
             "heap_shared_pct": m("heap_shared_pct_loaded")}
        for col in ("side_pages", "side_copied_pages", "gc_objects",
                    "gc_inline_bytes", "gc_side_bytes", "gc_side_pages",
                    "rc_table_entries",
                    "rc_table_bytes", "rps", "p99_ms", "gc_time_us",
                    "warmup_ms"):
            d[col] = m(col)
        sp, sc = d["side_pages"], d["side_copied_pages"]
        d["side_shared_pct"] = (100.0 * (1 - sc / sp)
                                if sp and sc is not None else None)
        objs = d["gc_objects"]
        # The side memory as it costs: its resident pages, not the
        # mappings it grows in (a side chunk is mapped 1 MiB at a time).
        gc_bytes = ((d["gc_inline_bytes"] or 0)
                    + (d["gc_side_pages"] or 0) * os.sysconf("SC_PAGE_SIZE")
                    if d["gc_inline_bytes"] is not None else None)
        d["gc_bytes_per_object"] = (gc_bytes / objs if objs and
                                    gc_bytes is not None else None)
        d["rc_bytes_per_gc_object"] = ((d["rc_table_bytes"] or 0) / objs
                                       if objs else None)
        d["overhead_bytes_per_object"] = (
            d["gc_bytes_per_object"] + d["rc_bytes_per_gc_object"]
            if d["gc_bytes_per_object"] is not None
            and d["rc_bytes_per_gc_object"] is not None else None)
        out.append(d)
    for d in out:
        base = [b for b in out if b["design"] == DESIGN_BASELINE
                and b["workers"] == d["workers"] and b["scale"] == d["scale"]]
        brps = base[0]["rps"] if base else None
        d["rps_ratio_vs_inline"] = (d["rps"] / brps if brps and
                                    d["rps"] is not None else None)
    return out


def designs_text(designs):
    if not designs:
        return ""

    def f(v, spec):
        return (spec % v) if v is not None else "-"

    L = ["", "Designs (README \"Designs\"): per worker at the end of the "
         "load; overhead per GC-able object of the master's heap",
         "%-19s %-6s %-6s %4s %7s %11s %8s %8s %8s %8s %6s" % (
             "design", "gc", "rc", "warm", "heap", "side pages", "gc B/",
             "rc B/", "total B/", "wrk", "ratio"),
         "%-19s %-6s %-6s %4s %7s %11s %8s %8s %8s %8s %6s" % (
             "", "", "", "", "shared%", "copied/all", "object", "object",
             "object", "req/s", "vs inl")]
    L.append("-" * len(L[-1]))
    for d in designs:
        L.append("%-19s %-6s %-6s %4s %7s %11s %8s %8s %8s %8s %6s" % (
            d["design"], d["gc_layout"] or "-", d["refcount"] or "-",
            d["warmup"] or "-", f(d["heap_shared_pct"], "%.1f"),
            "%s/%s" % (f(d["side_copied_pages"], "%.0f"),
                       f(d["side_pages"], "%.0f")),
            f(d["gc_bytes_per_object"], "%.2f"),
            f(d["rc_bytes_per_gc_object"], "%.2f"),
            f(d["overhead_bytes_per_object"], "%.2f"),
            f(d["rps"], "%.0f"), f(d["rps_ratio_vs_inline"], "%.3f")))
    return "\n".join(L) + "\n"


def write_designs(out, designs):
    """OUT/designs.csv (none, and any old one removed, without designs);
    its text goes at the end of summary.txt."""
    path = os.path.join(out, "designs.csv")
    if not designs:
        if os.path.exists(path):
            os.remove(path)
        return
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(DESIGN_COLUMNS)
        for d in designs:
            w.writerow([csv_num(d.get(c)) for c in DESIGN_COLUMNS])
    with open(os.path.join(out, "summary.txt"), "a") as f:
        f.write(designs_text(designs))


def designs_plot(out, pdir, designs, gp):
    """designs.png: one point per design, x its memory overhead per GC-able
    object, y the heap it keeps shared, labelled with its throughput
    against inline/inline (the point's size grows with it).  Appends its
    gnuplot lines to gp; returns the PNG's path, or None without data."""
    pts = [d for d in designs if d["heap_shared_pct"] is not None
           and d["overhead_bytes_per_object"] is not None]
    if not pts:
        return None
    w0 = pts[0]["workers"]
    s0 = pts[0]["scale"]
    pts = [d for d in pts if d["workers"] == w0 and d["scale"] == s0]
    xmax = max(d["overhead_bytes_per_object"] for d in pts)
    xspan = xmax * 1.45 + 2
    # Labels beside their points; designs that land on the same spot
    # (within 3% of the axes) get theirs stacked, not overprinted.
    placed = []
    fn = os.path.join(pdir, "designs.csv")
    with open(fn, "w") as f:
        f.write("# design,overhead_bytes_per_object,heap_shared_pct,"
                "rps_ratio,label,label_x,label_y,color\n")
        for k, d in enumerate(pts):
            x, y = d["overhead_bytes_per_object"], d["heap_shared_pct"]
            ratio = d["rps_ratio_vs_inline"]
            near = sum(1 for px, py in placed
                       if abs(px - x) < 0.03 * xspan and abs(py - y) < 3)
            placed.append((x, y))
            ly = y + 3 + 5 * near if y < 60 else y - 3 - 5 * near
            f.write("%s,%.4f,%.4f,%.4f,%s,%.4f,%.4f,%d\n" % (
                d["design"], x, y, ratio if ratio is not None else 1.0,
                "%s %s" % (d["design"], "%.2fx" % ratio
                           if ratio is not None else ""),
                x + 0.015 * xspan, ly, k + 1))
    png = os.path.join(out, "designs.png")
    title = (gp_str("Runtime designs: heap kept shared vs memory overhead; "
                    "label: throughput vs inline/inline")[:-1] + "\\n"
             + gp_str("(%d workers, scale %s, %s requests per worker)" % (
                 w0, fmt_scale(s0), pts[0]["requests_per_worker"]))[1:])
    gp += ["reset", 'set datafile separator ","',
           "set output %s" % gp_str(png),
           "set title %s" % title,
           'set xlabel "memory overhead per GC-able object (bytes: '
           'collector state + one worker\'s refcount table)"',
           'set ylabel "heap shared (% of pre-fork heap pages)"',
           "set xrange [-1:%g]" % xspan,
           "set yrange [-2:105]", "set grid", "unset key",
           "plot %s using 2:3:(0.8 + ($4 > 2 ? 2 : $4)):8 with points pt 7 "
           "ps variable lc variable, \\\n     '' using 6:7:5 with labels "
           "left font ',9' tc rgb '#333333'" % gp_str(fn)]
    return png


def csv_num(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "%d" % v if v.is_integer() else "%.3f" % v
    return v


def first_line(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return ""


def write_meta(out, infos):
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return ""
    meta = {
        "tool": "cowlab scripts/runner.py",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "kernel": platform.release(),
        "transparent_hugepage": read(
            "/sys/kernel/mm/transparent_hugepage/enabled"),
        "cores": os.cpu_count(),
        "git_commit": first_line(["git", "-C", ROOT, "rev-parse", "--short",
                                  "HEAD"]),
        "wrk": first_line(["wrk", "--version"]),
        "gnuplot": first_line(["gnuplot", "--version"]),
        "python": sys.version.split()[0],
        "cells": [{k: v for k, v in i.items() if k != "dir"} for i in infos],
        "note": "wrk is closed-loop and does not correct coordinated "
                "omission; each cell's server meta.json is in cells/<run_id>/",
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


# ---- plots --------------------------------------------------------------------

COLORS = {"default": "#d62728", "gc-off": "#ff7f0e", "freeze": "#1f77b4",
          "freeze+immortal": "#2ca02c", "lazy": "#7f7f7f",
          "immortal": "#9467bd"}
# point type and dash type per policy: lines that coincide stay legible
STYLES = {"default": (7, 1), "gc-off": (5, 2), "freeze": (9, 3),
          "freeze+immortal": (13, 1), "lazy": (11, 4), "immortal": (3, 5)}


def color(p):
    return COLORS.get(p, "#17becf")


def line_style(p):
    pt, dt = STYLES.get(p, (1, 1))
    return "pt %d ps 0.8 dt %d lw 2 lc rgb %s" % (pt, dt, gp_str(color(p)))


def gp_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def series_by_tick(samples, run_id, workers, info):
    """Per sample tick with every worker present: mean over the workers
    that served their share (as in runs.csv's *_loaded columns)."""
    fin = final_rows(samples, run_id)
    target = num(info.get("requests_per_worker"), 0)
    share = num(info.get("min_share"), 0.5)
    pids = {r.get("pid") for r in fin
            if num(r.get("requests"), 0) >= share * target}
    if not pids:
        pids = {r.get("pid") for r in fin}
    workers = min(workers, len(pids))
    ticks = {}
    for r in samples:
        if r.get("run_id") != run_id or r.get("pid") not in pids:
            continue
        ticks.setdefault(r.get("t_ms"), []).append(r)
    out = []
    for t, rs in ticks.items():
        if len(rs) < workers:
            continue
        out.append((num(t, 0),
                    mean([num(r.get("requests"), 0) for r in rs]),
                    mean([num(r.get("heap_shared_pct"), 0) for r in rs]),
                    mean([num(r.get("private_dirty_kb"), 0) for r in rs])))
    out.sort()
    return out


KINDS = ["refcount", "gc", "payload", "new", "allocator", "other"]
KIND_COLORS = {"refcount": "#1f77b4", "gc": "#d62728", "payload": "#ff7f0e",
               "new": "#2ca02c", "allocator": "#9467bd", "other": "#7f7f7f"}


def kinds_plot(out, pdir, ok, w0, s0, tag, gp):
    """kinds.png (--write-kinds): per policy, the heap pages a worker copied
    by the kind of the write that copied them: while serving (requests and
    collections, both exit runs) and in the finalize teardown.  Appends its
    gnuplot lines to gp; returns the PNG's path, or None without data."""
    rows = read_csv(os.path.join(out, "kinds.csv"))
    if not rows:
        return None
    cells = {i["run_id"]: i for i in ok
             if i["workers"] == w0 and i["scale"] == s0}
    serve, down = {}, {}        # policy -> kind -> [per-worker values]
    for r in rows:
        i = cells.get(r.get("run_id"))
        if i is None or r.get("kind") not in KINDS:
            continue
        p, k = i["policy"], r["kind"]
        v = (num(r.get("copied_by_request"), 0)
             + num(r.get("copied_by_gc"), 0))
        serve.setdefault(p, {}).setdefault(k, []).append(v)
        if i["exit"] == "finalize":
            down.setdefault(p, {}).setdefault(k, []).append(
                num(r.get("copied_by_teardown"), 0))
    policies = sorted(serve, key=policy_rank)
    if not policies:
        return None
    fn = os.path.join(pdir, "kinds.csv")
    with open(fn, "w") as f:
        f.write("# policy," + ",".join("serve_" + k for k in KINDS) + ","
                + ",".join("teardown_" + k for k in KINDS) + "\n")
        for p in policies:
            vals = [(mean(serve[p].get(k, [])) or 0) / 1e3 for k in KINDS]
            vals += [(mean(down.get(p, {}).get(k, [])) or 0) / 1e3
                     for k in KINDS]
            f.write("%s,%s\n" % (p, ",".join("%.4f" % v for v in vals)))

    def stack(first):
        cols = ["%s using %d%s lc rgb %s title %s" % (
            gp_str(fn) if j == 0 else "''", first + j,
            ":xtic(1)" if j == 0 else "", gp_str(KIND_COLORS[k]),
            gp_str(k)) for j, k in enumerate(KINDS)]
        return "plot " + ", \\\n     ".join(cols)
    png = os.path.join(out, "kinds.png")
    gp += ["set output %s" % gp_str(png),
           "set terminal pngcairo size 1000,760 enhanced font "
           '"DejaVu Sans,11"',
           "set multiplot layout 2,1 title %s" % gp_str(
               "Heap pages a worker copied, by the kind of write that "
               "copied them (mean per worker, %s)" % tag),
           "set style data histograms", "set style histogram rowstacked",
           "set style fill solid 0.85 border -1", "set boxwidth 0.6",
           "set xrange [-0.6:%g]" % (len(policies) - 0.4),
           "set yrange [0:*]", "set grid ytics", "set xtics nomirror",
           "set key outside right top noopaque nobox",
           "set title 'while serving: requests and collections'",
           'set ylabel "pages (thousands)"', 'set xlabel ""',
           stack(2),
           "set title 'in the finalize teardown (exit finalize)'",
           'set xlabel "policy"',
           stack(2 + len(KINDS)),
           "unset multiplot",
           'set terminal pngcairo size 1000,620 enhanced font '
           '"DejaVu Sans,11"']
    return png


def make_plots(out, infos, samples, rows, summary, designs=()):
    if shutil.which("gnuplot") is None:
        log("runner: gnuplot not found: no plots (install gnuplot-nox)")
        with open(os.path.join(out, "PLOTS-SKIPPED.txt"), "w") as f:
            f.write("gnuplot was not installed: no PNG plots were made.\n")
        return []
    pdir = os.path.join(out, "plotdata")
    os.makedirs(pdir, exist_ok=True)
    ok = [i for i in infos if i.get("status") == "ok"]
    if not ok:
        return []
    # Time series: the first workers/scale of the matrix, one run per
    # policy (the finalize one when there is one: both had the same load).
    ws = sorted({i["workers"] for i in ok})
    ss = sorted({i["scale"] for i in ok})
    w0 = 4 if 4 in ws else ws[-1]       # the defaults when in the sweep
    s0 = 1.0 if 1.0 in ss else ss[0]
    pick = {}
    for i in ok:
        if i["workers"] != w0 or i["scale"] != s0:
            continue
        if i["policy"] not in pick or i["exit"] == "finalize":
            pick[i["policy"]] = i
    policies = sorted(pick, key=policy_rank)
    tag = "%d workers, scale %s" % (w0, fmt_scale(s0))
    # The server lengthens its sampling interval to keep the sampler's cost
    # at 1% of a core (column sample_ms): say so, since lines between
    # samples far apart are interpolation.
    intervals = [num(r.get("sample_ms")) for p in policies
                 for r in samples.get(pick[p]["run_id"], [])]
    intervals = [x for x in intervals if x]
    ts_tag = tag
    if intervals:
        ts_tag += "; sampled every %s" % (
            "%.0f ms" % max(intervals) if max(intervals) < 2000
            else "%.1f s" % (max(intervals) / 1000))
    gp = ['set terminal pngcairo size 1000,620 enhanced font "DejaVu Sans,11"',
          'set grid', 'set key outside right top', 'set datafile separator ","']
    made = []
    # 1 + 2: sharing over requests, private dirty over time
    lines_a, lines_b = [], []
    for p in policies:
        ser = series_by_tick(samples.get(pick[p]["run_id"], []),
                             pick[p]["run_id"], w0, pick[p])
        fn = os.path.join(pdir, "series_%s.csv" % p.replace("+", "_"))
        with open(fn, "w") as f:
            f.write("# t_s,requests_per_worker,heap_shared_pct,"
                    "private_dirty_mib\n")
            for t, rq, sh, pd in ser:
                f.write("%.3f,%.1f,%.3f,%.3f\n" % (t / 1e3, rq, sh, pd / 1024))
        # log x: the copying happens in the first requests; samples taken
        # before the first request (x = 0) are drawn at x = 1
        lines_a.append("%s using ($2 > 1 ? $2 : 1):3 with linespoints %s "
                       "title %s" % (gp_str(fn), line_style(p), gp_str(p)))
        lines_b.append("%s using 1:4 with linespoints %s title %s" % (
            gp_str(fn), line_style(p), gp_str(p)))
    png = os.path.join(out, "heap_shared_vs_requests.png")
    gp += ["set output %s" % gp_str(png),
           "set title %s" % gp_str("Pre-fork heap pages still shared, "
                                   "per worker (%s)" % ts_tag),
           'set xlabel "requests served per worker (mean over workers; '
           'log scale, 0 drawn at 1)"',
           'set ylabel "heap shared (% of pre-fork heap pages)"',
           "set key inside right center box opaque",
           "set logscale x", "set yrange [-2:105]", "set xrange [1:*]",
           "plot " + ", \\\n     ".join(lines_a),
           "unset logscale x"]
    made.append(png)
    png = os.path.join(out, "private_dirty_over_time.png")
    gp += ["set output %s" % gp_str(png),
           "set title %s" % gp_str("Private dirty memory per worker (%s)"
                                   % ts_tag),
           'set xlabel "time since fork (s)"',
           'set ylabel "private dirty per worker (MiB)"',
           "set key inside right center box opaque",
           "set yrange [0:*]", "set xrange [0:*]",
           "plot " + ", \\\n     ".join(lines_b)]
    made.append(png)
    # 3: faults by cause, stacked, per policy
    srow = [s for s in summary if s["workers"] == w0 and s["scale"] == s0]
    srow.sort(key=lambda s: policy_rank(s["policy"]))
    fn = os.path.join(pdir, "faults.csv")
    with open(fn, "w") as f:
        f.write("# policy,gc,request,teardown,other\n")
        for s in srow:
            f.write("%s,%.3f,%.3f,%.3f,%.3f\n" % (
                s["policy"], (s["faults_gc"] or 0) / 1e3,
                (s["faults_request"] or 0) / 1e3,
                (s["faults_teardown_finalize"] or 0) / 1e3,
                (s["faults_other"] or 0) / 1e3))
    png = os.path.join(out, "faults_by_cause.png")
    gp += ["set output %s" % gp_str(png),
           "set title %s" % gp_str("Minor page faults per worker by cause "
                                   "(%s; teardown: exit finalize)" % tag),
           'set xlabel "policy"',
           'set ylabel "minor faults per worker (thousands)"',
           "set style data histograms", "set style histogram rowstacked",
           "set style fill solid 0.85 border -1", "set boxwidth 0.6",
           "set xrange [-0.6:%g]" % (len(srow) - 0.4), "set yrange [0:*]",
           "set key outside right top noopaque nobox",
           "set grid ytics", "set xtics nomirror",
           "plot %s using 2:xtic(1) lc rgb '#d62728' title 'gc', "
           "'' using 3 lc rgb '#1f77b4' title 'request', "
           "'' using 4 lc rgb '#9467bd' title 'teardown', "
           "'' using 5 lc rgb '#7f7f7f' title 'other'" % gp_str(fn)]
    made.append(png)
    # 4: teardown, finalize vs skip: time (log) and faults
    fn = os.path.join(pdir, "teardown.csv")
    with open(fn, "w") as f:
        f.write("# policy,ms_finalize,ms_skip,faults_finalize,faults_skip,"
                "label_finalize,label_skip\n")
        for s in srow:
            # a log axis cannot show 0: values under 1 us are drawn at 1 us
            # (the server writes milliseconds with 3 decimals)
            def label(v):
                return "<1 us" if (v or 0) < 0.001 else "%.3g ms" % v
            f.write("%s,%.4f,%.4f,%.0f,%.0f,%s,%s\n" % (
                s["policy"], max(s["teardown_ms_finalize"] or 0, 0.001),
                max(s["teardown_ms_skip"] or 0, 0.001),
                s["faults_teardown_finalize"] or 0,
                s["faults_teardown_skip"] or 0,
                label(s["teardown_ms_finalize"]),
                label(s["teardown_ms_skip"])))
    png = os.path.join(out, "teardown.png")
    gp += ["set output %s" % gp_str(png),
           "set terminal pngcairo size 1000,760 enhanced font "
           '"DejaVu Sans,11"',
           "set multiplot layout 2,1 title %s" % gp_str(
               "Worker teardown, exit finalize vs skip (mean per worker, %s)"
               % tag),
           "set style histogram clustered gap 1", "set boxwidth 0.9",
           "set style fill solid 0.85 border -1",
           "set xrange [-0.6:%g]" % (len(srow) - 0.4),
           "set title 'teardown time (log scale; values under 1 us drawn "
           "at 1 us)'",
           "set logscale y", "set yrange [0.0005:*]", "set format y '%g'",
           'set ylabel "time (ms)"', 'set xlabel ""',
           "plot %s using 2:xtic(1) lc rgb '#d62728' title 'finalize', "
           "'' using 3 lc rgb '#2ca02c' title 'skip', "
           "'' using ($0-0.17):2:6 with labels offset 0,0.7 notitle, "
           "'' using ($0+0.17):3:7 with labels offset 0,0.7 notitle"
           % gp_str(fn),
           "unset logscale y", "set yrange [0:*]", "set format y '%g'",
           "set title 'minor faults during teardown'",
           'set ylabel "minor faults per worker"', 'set xlabel "policy"',
           "plot %s using 4:xtic(1) lc rgb '#d62728' title 'finalize', "
           "'' using 5 lc rgb '#2ca02c' title 'skip'" % gp_str(fn),
           "unset multiplot",
           'set terminal pngcairo size 1000,620 enhanced font '
           '"DejaVu Sans,11"']
    made.append(png)
    # 5: throughput and latency
    fn = os.path.join(pdir, "load.csv")
    with open(fn, "w") as f:
        f.write("# policy,rps,p50_ms,p99_ms\n")
        for s in srow:
            f.write("%s,%.1f,%.3f,%.3f\n" % (s["policy"], s["rps"] or 0,
                                             s["p50_ms"] or 0,
                                             s["p99_ms"] or 0))
    png = os.path.join(out, "throughput_latency.png")
    gp += ["set output %s" % gp_str(png),
           "set terminal pngcairo size 1000,760 enhanced font "
           '"DejaVu Sans,11"',
           "set multiplot layout 2,1 title %s" % gp_str(
               "Throughput and latency under wrk (closed loop, %s)" % tag),
           "set style histogram clustered gap 1", "set boxwidth 0.9",
           "set xrange [-0.6:%g]" % (len(srow) - 0.4),
           "set title 'throughput'", 'set ylabel "requests/s"',
           'set xlabel ""', "set yrange [0:*]",
           "plot %s using 2:xtic(1) lc rgb '#1f77b4' title 'req/s', "
           "'' using ($0):2:(sprintf('%%.0f',$2)) with labels offset 0,0.6 "
           "notitle" % gp_str(fn),
           "set title 'latency'", 'set ylabel "latency (ms)"',
           'set xlabel "policy"',
           "plot %s using 3:xtic(1) lc rgb '#2ca02c' title 'p50', "
           "'' using 4 lc rgb '#d62728' title 'p99'" % gp_str(fn),
           "unset multiplot",
           'set terminal pngcairo size 1000,620 enhanced font '
           '"DejaVu Sans,11"']
    made.append(png)
    # 6: --write-kinds: copies by kind of write, stacked per policy
    kinds_png = kinds_plot(out, pdir, ok, w0, s0, tag, gp)
    if kinds_png:
        made.append(kinds_png)
    # 7: sweeps: total memory (sum of PSS) against workers or scale
    for axis, values, other, label in (
            ("workers", sorted({s["workers"] for s in summary}), "scale",
             "workers"),
            ("scale", sorted({s["scale"] for s in summary}), "workers",
             "heap scale (x the workload's heap)")):
        if len(values) < 2:
            continue
        fixed = sorted({s[other] for s in summary})
        fixed = fixed[-1] if axis == "scale" else fixed[0]
        lines = []
        for p in sorted({s["policy"] for s in summary}, key=policy_rank):
            pts = sorted((s[axis], (s["total_pss_kb"] or 0) / 1024)
                         for s in summary
                         if s["policy"] == p and s[other] == fixed
                         and s["total_pss_kb"] is not None)
            if not pts:
                continue
            fn = os.path.join(pdir, "sweep_%s_%s.csv" %
                              (axis, p.replace("+", "_")))
            with open(fn, "w") as f:
                f.write("# %s,total_pss_mib\n" % axis)
                for x, y in pts:
                    f.write("%g,%.2f\n" % (x, y))
            lines.append("%s using 1:2 with linespoints pt 7 ps 1 lw 2 lc "
                         "rgb %s title %s" % (gp_str(fn), gp_str(color(p)),
                                              gp_str(p)))
        if not lines:
            continue
        png = os.path.join(out, "sweep_total_pss_vs_%s.png" % axis)
        gp += ["set output %s" % gp_str(png),
               "set style data linespoints",
               "set title %s" % gp_str(
                   "Total memory of the app (PSS of master + workers, end of "
                   "load; %s %s)" % (other, fmt_scale(fixed))),
               "set xlabel %s" % gp_str(label),
               'set ylabel "total PSS (MiB)"',
               "set xrange [0:%g]" % (max(values) * 1.08),
               "set yrange [0:*]",
               "set xtics (%s)" % ", ".join("%g" % v for v in values),
               "set grid", "set key inside left top box opaque",
               "plot " + ", \\\n     ".join(lines)]
        made.append(png)
    # 8: --designs: heap shared vs memory overhead vs throughput (last: it
    # resets gnuplot's settings)
    designs_png = designs_plot(out, pdir, designs, gp)
    if designs_png:
        made.append(designs_png)
    script = os.path.join(out, "plots.gp")
    with open(script, "w") as f:
        f.write("# generated by scripts/runner.py: gnuplot %s\n" % script)
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        log("runner: gnuplot failed:\n" + r.stderr)
        return []
    return [m for m in made if os.path.exists(m)]


# ---- main ---------------------------------------------------------------------

def main(argv):
    o = parse_args(argv)
    if o.merge:
        o.out = o.merge
        summary, rows, made = merge(o.out, plots=not o.no_plots)
        sys.stdout.write(table_text(summary, rows, None)
                         + designs_text(design_table(rows)))
        return 0 if all(r.get("status", "").startswith("ok")
                        for r in rows) else 1
    cells = matrix(o)
    if o.print_matrix:
        for c in cells:
            print(cell_command(o, c))
        return 0
    if not os.access(o.bin, os.X_OK):
        raise SystemExit("runner: %s is missing: run make first" % o.bin)
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            raise SystemExit("runner: %s is not installed (apt-get install "
                             "%s)" % (tool, tool))
    os.makedirs(os.path.join(o.out, "cells"), exist_ok=True)
    paths = workload_paths(o)
    t0 = time.monotonic()
    if not o.quiet:
        log("runner: %d runs (%s) x workers %s x scale %s x exit %s; "
            "%d requests per worker; routes %s; results in %s" % (
                len(cells), ",".join(o.policy_list),
                ",".join(map(str, o.workers_list)),
                ",".join(fmt_scale(s) for s in o.scale_list),
                ",".join(o.exit_list), o.requests, " ".join(paths), o.out))
    progress = Progress(o, len(cells), t0)
    failed = 0
    for i, c in enumerate(cells, 1):
        info = run_cell_balanced(o, c, i, progress, paths)
        if info["status"] != "ok":
            failed += 1
    if o.cell:
        return 1 if failed else 0
    summary, rows, made = merge(o.out, plots=not o.no_plots)
    sys.stdout.write("\n" + table_text(summary, rows, None)
                     + designs_text(design_table(rows)))
    log("runner: %d runs in %.1f s, %d failed; results in %s%s" % (
        len(cells), time.monotonic() - t0, failed, o.out,
        ("; plots: " + " ".join(os.path.basename(m) for m in made))
        if made else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        log("\nrunner: interrupted; the cells done so far are in their "
            "folders (merge them with --merge OUT)")
        sys.exit(130)
