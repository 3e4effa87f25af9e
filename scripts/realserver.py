#!/usr/bin/env python3
"""
realserver.py -- `scripts/experiment --server gunicorn|uwsgi`: the policy
matrix on a real prefork server, measured from outside by `cowlab attach`.
Standard library only; reuses runner.py's merge (CSV files, summary).

A small Django app of our own (scripts/apps/cowapp: ORM models on an
in-memory SQLite database, a template, about 160 MiB of data built at
import) runs under Debian's gunicorn or uWSGI with Debian's python3
(/usr/bin/python3: its dist-packages hold Django and gunicorn), under wrk,
for the policies a Python user can set:

    gunicorn: default (--preload), no-preload, gc-disable, gc-freeze
    uwsgi:    default (app loaded in the master), lazy-apps, gc-disable,
              gc-freeze
    exits:    finalize (the worker's interpreter is torn down as the server
              does it) and skip (os._exit(0) when the worker exits)

One cell (policy x exit x workers x scale), like runner.py's:
    start the server; its master loads the app (or not), then stops
    before its first fork (gunicorn's when_ready hook, uWSGI's end of
    import or an asap hook) and writes its pid;
    start `cowlab attach --pid MASTER --out CELL` and wait for its
    snapshot, then let the master fork;
    wait until every worker answers (concurrent /healthz?ms=300);
    wrk: REQUESTS x workers responses over the four routes;
    read the master's PSS; stop attach (its last round is the end of the
    load); SIGTERM the server and time its stop (stop_ms: the whole
    graceful stop, measured from outside).
The app logs every worker's request count (COWLAB_COUNT_FILE), from which
the runner fills samples.csv's `requests` column; attach leaves it empty.

Output as runner.py's (OUT/cells/<run_id>/, samples.csv, runs.csv,
summary.txt, summary.csv, meta.json, PNGs), with this runner's columns
appended to runs.csv and summary.csv (EXTRA_COLUMNS below).
"""

import argparse
import csv
import datetime
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APPS = os.path.join(HERE, "apps")
sys.path.insert(0, HERE)
import runner  # noqa: E402

SERVERS = {
    "gunicorn": ["default", "no-preload", "gc-disable", "gc-freeze"],
    "uwsgi": ["default", "lazy-apps", "gc-disable", "gc-freeze"],
}
# What each policy is, for the summary and the README.
POLICY_TEXT = {
    "default": "the app loaded in the master (gunicorn --preload; uWSGI "
               "without lazy-apps)",
    "no-preload": "each worker imports the app after its fork",
    "lazy-apps": "uWSGI lazy-apps: each worker loads the app after its fork",
    "gc-disable": "gc.disable() before the app's import",
    "gc-freeze": "gc.freeze() just before the fork",
}
EXITS = ["finalize", "skip"]
PATHS = ["/", "/api/items", "/api/user", "/static"]
QUICK = {"scale": "0.05", "workers": "2", "requests": 200, "sample_ms": 50}
DEFAULT_REQUESTS = 2500
DEFAULT_SAMPLE_MS = 100
PACKAGES = {"gunicorn": "gunicorn python3-django",
            "uwsgi": "uwsgi uwsgi-plugin-python3 python3-django"}

# The runner's columns appended to runs.csv (after runner.py's).
EXTRA_COLUMNS = ["server", "stop_ms", "copied_by_master_loaded",
                 "heap_new_pages", "heap_shared_pages",
                 "attach_method", "attached_after_fork"]
SUMMARY_EXTRA = ["copied_by_master", "heap_new_pages", "stop_ms_finalize",
                 "stop_ms_skip", "master_pss_kb"]

COLORS = {"default": "#d62728", "no-preload": "#7f7f7f",
          "lazy-apps": "#7f7f7f", "gc-disable": "#ff7f0e",
          "gc-freeze": "#1f77b4"}
STYLES = {"default": (7, 1), "no-preload": (11, 4), "lazy-apps": (11, 4),
          "gc-disable": (5, 2), "gc-freeze": (9, 3)}


class CellError(Exception):
    pass


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---- options ----------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/experiment",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The policy matrix on a real prefork server (Debian's "
        "gunicorn or uWSGI) serving a Django app, measured by `cowlab "
        "attach`: every policy x exit (x workers x scale) serves REQUESTS "
        "per worker under wrk; results, plots and a summary go to OUT.",
        epilog="Policies: gunicorn %s; uwsgi %s.\nExamples:\n"
        "  scripts/experiment --server gunicorn          # minutes\n"
        "  scripts/experiment --server uwsgi --quick     # seconds\n"
        "  scripts/experiment --server gunicorn --merge OUT\n"
        % (", ".join(SERVERS["gunicorn"]), ", ".join(SERVERS["uwsgi"])))
    p.add_argument("--server", required=True, choices=sorted(SERVERS),
                   help="the prefork server")
    p.add_argument("--quick", action="store_true",
                   help="small heap (scale %s), %s workers, %d requests per "
                   "worker: seconds a cell" % (QUICK["scale"],
                                              QUICK["workers"],
                                              QUICK["requests"]))
    p.add_argument("--policies", default=None,
                   help="comma-separated policies [all of the server's]")
    p.add_argument("--exits", default=",".join(EXITS),
                   help="exit policies [%(default)s]")
    p.add_argument("--workers", default=None,
                   help="workers, a comma-separated list to sweep [4]")
    p.add_argument("--scale", default=None,
                   help="the app's heap scale, a list to sweep [1]")
    p.add_argument("--requests", type=int, default=None,
                   help="requests per worker [%d]" % DEFAULT_REQUESTS)
    p.add_argument("--out", default=None,
                   help="results folder [results/<timestamp>-<server>]")
    p.add_argument("--merge", metavar="OUT", default=None,
                   help="merge OUT/cells/* into OUT: CSVs, summary, plots")
    p.add_argument("--connections", type=int, default=0,
                   help="wrk connections [4 per worker]")
    p.add_argument("--threads", type=int, default=0,
                   help="wrk threads [1, 2 from 8 cores]")
    p.add_argument("--sample-ms", type=int, default=0,
                   help="cowlab attach's interval [%d; quick: %d]" %
                   (DEFAULT_SAMPLE_MS, QUICK["sample_ms"]))
    p.add_argument("--sample-budget", type=float, default=5.0,
                   help="share of a core (%%) attach may use before it "
                   "lengthens its interval [%(default)s]")
    p.add_argument("--min-share", type=float, default=0.5,
                   help="re-run a cell in which a worker served less than "
                   "this fraction of --requests [%(default)s]")
    p.add_argument("--attempts", type=int, default=2,
                   help="runs of a cell at most, while it fails or is "
                   "unbalanced [%(default)s]")
    p.add_argument("--load-timeout", type=float, default=600.0,
                   help="give up on a cell's load after S seconds "
                   "[%(default)s]")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="the interpreter gunicorn runs on (Debian's, whose "
                   "dist-packages hold Django and gunicorn) [%(default)s]")
    p.add_argument("--bin", default=os.path.join(ROOT, "bin", "cowlab"),
                   help="cowlab (for `cowlab attach`) [bin/cowlab]")
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    o = p.parse_args(argv)
    known = SERVERS[o.server]
    o.policy_list = runner.split_list(o.policies or ",".join(known), str,
                                      "policies")
    for pol in o.policy_list:
        if pol not in known:
            raise SystemExit("realserver: --policies: %r is not a %s policy "
                             "(known: %s)" % (pol, o.server, ", ".join(known)))
    o.exit_list = runner.split_list(o.exits, str, "exits")
    for e in o.exit_list:
        if e not in EXITS:
            raise SystemExit("realserver: --exits: unknown exit policy %r "
                             "(known: finalize, skip)" % e)
    o.workers_list = runner.split_list(
        o.workers or (QUICK["workers"] if o.quick else "4"), int, "workers")
    o.scale_list = runner.split_list(
        o.scale or (QUICK["scale"] if o.quick else "1"), float, "scale")
    for w in o.workers_list:
        if not 1 <= w <= 64:
            raise SystemExit("realserver: --workers: %d is not in 1..64" % w)
    for s in o.scale_list:
        if not 0 < s <= 20:
            raise SystemExit("realserver: --scale: %g is not in (0, 20]" % s)
    if o.requests is None:
        o.requests = QUICK["requests"] if o.quick else DEFAULT_REQUESTS
    if o.requests < 1:
        raise SystemExit("realserver: --requests: must be at least 1")
    if o.attempts < 1:
        raise SystemExit("realserver: --attempts: must be at least 1")
    if not o.sample_ms:
        o.sample_ms = QUICK["sample_ms"] if o.quick else DEFAULT_SAMPLE_MS
    if o.out is None and o.merge is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        o.out = os.path.join("results", "%s-%s%s" % (
            stamp, o.server, "-quick" if o.quick else ""))
    return o


def use_policies(server):
    """runner.py orders, colours and draws policies by its tables: give it
    this server's."""
    runner.POLICIES = {p: [] for p in SERVERS[server]}
    runner.COLORS.update(COLORS)
    runner.STYLES.update(STYLES)


# ---- the server -------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def server_command(o, c, cdir, port):
    """The command line and environment of one cell's server."""
    cdir = os.path.abspath(cdir)        # the server runs in scripts/apps
    env = dict(os.environ,
               COWLAB_SERVER=o.server, COWLAB_POLICY=c["policy"],
               COWLAB_EXIT=c["exit"], COWLAB_APP_SCALE=runner.fmt_scale(
                   c["scale"]),
               COWLAB_COUNT_FILE=os.path.join(cdir, "requests.log"),
               COWLAB_READY_FILE=os.path.join(cdir, "ready"),
               COWLAB_GO_FILE=os.path.join(cdir, "go"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    W = str(c["workers"])
    # Both run in scripts/apps (cwd), named relative to it: the command
    # line attach records holds no path of this machine.
    if o.server == "gunicorn":
        cmd = [o.python, "-m", "gunicorn", "-c", "gunicorn_conf.py",
               "-w", W, "-b", "127.0.0.1:0", "cowapp.wsgi:application"]
        return cmd, env
    cmd = ["uwsgi", "--plugin", "python3", "--master", "--processes", W,
           "--http-socket", "127.0.0.1:%d" % port,
           "--module", "cowapp.wsgi:application", "--need-app",
           "--disable-logging", "--die-on-term", "--listen", "128",
           # SIGTERM: a graceful stop (workers finish their requests)
           "--hook-master-start", "unix_signal:15 gracefully_kill_them_all"]
    if c["policy"] == "lazy-apps":
        # No app in the master: it pauses before its fork in a module it
        # imports first (cowapp/prefork.py)
        cmd += ["--lazy-apps", "--shared-import", "cowapp.prefork"]
    return cmd, env


def rel(args):
    """A command as recorded (cell.json, wrk.txt): this checkout's paths
    relative to its root, where the runner runs."""
    out = []
    for a in args:
        a = str(a)
        if a == ROOT or a.startswith(ROOT + os.sep):
            a = os.path.relpath(a, ROOT)
        out.append(a)
    return out


def versions(o):
    out = {"python": runner.first_line([o.python, "--version"])}
    if o.server == "gunicorn":
        out["gunicorn"] = runner.first_line(
            [o.python, "-c", "import gunicorn; print(gunicorn.__version__)"])
    else:
        out["uwsgi"] = runner.first_line(["uwsgi", "--version"])
    out["django"] = runner.first_line(
        [o.python, "-c", "import django; print(django.get_version())"])
    return out


def probe(port, workers, deadline):
    """Until every worker answers: `workers` concurrent /healthz?ms=300,
    again and again, until that many distinct pids have answered."""
    seen = set()
    while time.monotonic() < deadline:
        got = []

        def one():
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/healthz?ms=300" % port,
                        timeout=10) as r:
                    got.append(json.loads(r.read().decode())["pid"])
            except (OSError, ValueError, KeyError):
                pass
        ts = [threading.Thread(target=one) for _ in range(workers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        seen.update(got)
        if len(seen) >= workers:
            return seen
        time.sleep(0.2)
    raise CellError("only %d of %d workers answered in time" %
                    (len(seen), workers))


def wait_file(path, proc, deadline, what):
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise CellError("the server exited before %s (status %s; see "
                            "server.log)" % (what, proc.returncode))
        if time.monotonic() > deadline:
            raise CellError("no %s in time" % what)
        time.sleep(0.02)


def gunicorn_port(logpath):
    try:
        with open(logpath, errors="replace") as f:
            for line in f:
                i = line.find("Listening at: http://127.0.0.1:")
                if i >= 0:
                    return int(line[i + 31:].split()[0])
    except (OSError, ValueError):
        pass
    return None


# ---- requests per worker from the app's log ---------------------------------

def read_counts(path):
    """pid -> [(monotonic_ns, requests)], in time order."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 3:
                    continue
                try:
                    pid, n, t = int(parts[0]), int(parts[1]), int(parts[2])
                except ValueError:
                    continue
                out.setdefault(pid, []).append((t, n))
    except OSError:
        pass
    for v in out.values():
        v.sort()
    return out


def fill_requests(cdir, counts):
    """samples.csv's `requests`: the worker's count logged last before the
    sample (logged every 10 requests, so up to 9 behind)."""
    path = os.path.join(cdir, "samples.csv")
    meta = os.path.join(cdir, "meta.json")
    try:
        with open(meta) as f:
            t0 = int(json.load(f)["t0_monotonic_ns"])
        with open(path, newline="") as f:
            rd = csv.DictReader(f)
            header, rows = rd.fieldnames, list(rd)
    except (OSError, ValueError, KeyError, TypeError):
        return
    for r in rows:
        series = counts.get(int(r["pid"]), [])
        t = t0 + int(float(r["t_ms"]) * 1e6)
        n = 0
        for ts, k in series:
            if ts > t:
                break
            n = k
        r["requests"] = n
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def fill_runs(cdir, c, served):
    """runs.csv's columns attach cannot know and this runner does: the
    policy's knobs, the exit, scale, app, requests."""
    path = os.path.join(cdir, "runs.csv")
    try:
        with open(path, newline="") as f:
            rd = csv.DictReader(f)
            header, rows = rd.fieldnames, list(rd)
    except OSError:
        return
    pol = c["policy"]
    for r in rows:
        r["exit"] = c["exit"]
        r["scale"] = runner.fmt_scale(c["scale"])
        r["workload"] = "cowapp (Django)"
        r["gc"] = "off" if pol == "gc-disable" else "on"
        r["gc_threshold"] = "700-10-10"
        r["freeze"] = 1 if pol == "gc-freeze" else 0
        r["immortal"] = 0
        r["lazy"] = 1 if pol in ("no-preload", "lazy-apps") else 0
        r["requests"] = sum(served.values())
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


# ---- one cell ---------------------------------------------------------------

def stop(proc, sig, timeout):
    return runner.stop_process(proc, sig, timeout)


def run_cell(o, c, i, progress):
    cdir = os.path.join(o.out, "cells", c["run_id"])
    if os.path.isdir(cdir):
        shutil.rmtree(cdir)
    os.makedirs(cdir)
    W = c["workers"]
    total = c["requests"] * W
    threads = runner.wrk_threads(o)
    conns = max(o.connections or 4 * W, threads)
    port = free_port() if o.server == "uwsgi" else None
    srv_cmd, env = server_command(o, c, cdir, port)
    info = {"run_id": c["run_id"], "policy": c["policy"], "workers": W,
            "scale": c["scale"], "exit": c["exit"], "server": o.server,
            "requests_per_worker": c["requests"], "server_cmd": rel(srv_cmd),
            "wrk_threads": threads, "wrk_connections": conns,
            "min_share": o.min_share, "status": "running"}
    srv_log = open(os.path.join(cdir, "server.log"), "w")
    att_log = open(os.path.join(cdir, "attach.log"), "w")
    srv = subprocess.Popen(srv_cmd, stdout=srv_log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, env=env, cwd=APPS,
                           start_new_session=True)
    att = wrk = None
    t_start = time.monotonic()
    try:
        progress.update(i, c, "loading the app")
        # 1. the master, paused before its first fork
        deadline = time.monotonic() + 120 + 60 * c["scale"]
        wait_file(env["COWLAB_READY_FILE"], srv, deadline,
                  "master's pause before its fork")
        with open(env["COWLAB_READY_FILE"]) as f:
            master = int(f.read().split()[0])
        info["master_pid"] = master
        if o.server == "gunicorn":
            port = gunicorn_port(os.path.join(cdir, "server.log"))
            if port is None:
                raise CellError("gunicorn did not say its port")
        info["port"] = port
        # 2. attach: the snapshot, then the fork
        att_cmd = [o.bin, "attach", "--pid", str(master), "--out", cdir,
                   "--run-id", c["run_id"], "--policy-name", c["policy"],
                   "--sample-ms", str(o.sample_ms),
                   "--sample-budget", "%g" % o.sample_budget]
        info["attach_cmd"] = rel(att_cmd)
        att = subprocess.Popen(att_cmd, stdout=subprocess.PIPE,
                               stderr=att_log, stdin=subprocess.DEVNULL)
        out = runner.LineReader(att.stdout)
        attached = False
        deadline = time.monotonic() + 60
        while not attached:
            for line in out.lines(0.5):
                attached = attached or line.startswith("attached to pid ")
            if not attached and (out.eof or time.monotonic() > deadline):
                raise CellError("cowlab attach did not start (see "
                                "attach.log)")
        with open(env["COWLAB_GO_FILE"], "w"):
            pass
        # 3. every worker serving
        progress.update(i, c, "workers starting")
        deadline = time.monotonic() + 120 + 60 * c["scale"]
        pids = probe(port, W, deadline)
        info["ready_s"] = round(time.monotonic() - t_start, 3)
        time.sleep(0.25)
        # 4. the load
        wrk_cmd = ["wrk", "-t", str(threads), "-c", str(conns),
                   "-d", "%ds" % int(o.load_timeout),
                   "-s", os.path.join(HERE, "wrk_mix.lua"),
                   "http://127.0.0.1:%d" % port, "--",
                   str(total), ",".join(PATHS), str(threads)]
        info["wrk_cmd"] = rel(wrk_cmd)
        wrk_out = []
        t_load = time.monotonic()
        wrk = subprocess.Popen(wrk_cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
        done_threads = set()
        t_done = None
        interrupted = None
        last_ui = 0.0
        wout = runner.LineReader(wrk.stdout)
        count_path = env["COWLAB_COUNT_FILE"]
        while not wout.eof:
            for line in wout.lines(0.2):
                wrk_out.append(line)
                if line.startswith("WRK_THREAD_DONE"):
                    done_threads.add(line.split()[1])
                    if len(done_threads) >= threads and interrupted is None:
                        t_done = time.monotonic()
                        wrk.send_signal(signal.SIGINT)
                        interrupted = time.monotonic()
            now = time.monotonic()
            if interrupted is None and srv.poll() is not None:
                wrk.send_signal(signal.SIGINT)
                interrupted = now
            if interrupted is not None and now - interrupted > 15:
                wrk.kill()
                raise CellError("wrk did not stop on SIGINT")
            if now - last_ui > 0.5:
                served = sum(v[-1][1] for v in read_counts(count_path)
                             .values() if v)
                progress.update(i, c, "load %d/%d requests" %
                                (min(served, total), total))
                last_ui = now
        wrk.wait(timeout=30)
        with open(os.path.join(cdir, "wrk.txt"), "w") as f:
            f.write(" ".join(shlex.quote(a) for a in rel(wrk_cmd)) + "\n")
            f.writelines(wrk_out)
        res = None
        for line in wrk_out:
            if line.startswith("WRK_RESULT "):
                res = json.loads(line[len("WRK_RESULT "):])
        if res is None:
            raise CellError("wrk printed no result (see wrk.txt)")
        info["wrk"] = res
        info["load_s"] = round((t_done or time.monotonic()) - t_load, 3)
        if srv.poll() is not None:
            raise CellError("the server exited during the load (status %s)"
                            % srv.returncode)
        if len(done_threads) < threads:
            raise CellError("wrk stopped before its %d requests" % total)
        # 5. the end of the load: the master's PSS, attach's last round
        info["master_pss_kb"] = runner.read_smaps_rollup(master).get(
            "Pss", "")
        rc = stop(att, signal.SIGTERM, 60)
        if rc != 0:
            raise CellError("cowlab attach exited with status %s (see "
                            "attach.log)" % rc)
        # 6. the server's graceful stop, timed from outside
        progress.update(i, c, "stop (%s)" % c["exit"])
        t_term = time.monotonic()
        rc = stop(srv, signal.SIGTERM, 90)
        info["stop_ms"] = round((time.monotonic() - t_term) * 1e3, 1)
        info["teardown_wall_ms"] = info["stop_ms"]
        info["server_status"] = rc
        counts = read_counts(count_path)
        served = {pid: v[-1][1] for pid, v in counts.items()
                  if pid in pids and v}
        info["worker_requests"] = sorted(served.values())
        for name in ("ready", "go"):        # the pause's, done with
            os.unlink(env["COWLAB_%s_FILE" % name.upper()])
        fill_requests(cdir, counts)
        fill_runs(cdir, c, served)
        if not os.path.exists(os.path.join(cdir, "runs.csv")):
            raise CellError("cowlab attach wrote no runs.csv")
        info["status"] = "ok"
        if (len(served) < W
                or min(served.values()) < o.min_share * c["requests"]):
            info["status"] = "unbalanced"
    except CellError as e:
        info["status"] = "failed: %s" % e
    except KeyboardInterrupt:
        info["status"] = "failed: interrupted"
        raise
    finally:
        if wrk is not None and wrk.poll() is None:
            stop(wrk, signal.SIGINT, 5)
        if att is not None and att.poll() is None:
            stop(att, signal.SIGTERM, 30)
        if srv.poll() is None:
            stop(srv, signal.SIGTERM, 60)
        try:
            os.killpg(srv.pid, signal.SIGKILL)      # stragglers, if any
        except OSError:
            pass
        srv_log.close()
        att_log.close()
        info["wall_s"] = round(time.monotonic() - t_start, 3)
        with open(os.path.join(cdir, "cell.json"), "w") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
    if info["status"] == "ok":
        what = "done: %d requests, %.0f req/s, stop %s ms" % (
            info["wrk"]["requests"], info["wrk"]["rps"], info["stop_ms"])
    elif info["status"] == "unbalanced":
        what = "unbalanced: workers served %s requests" % " ".join(
            "%d" % x for x in info.get("worker_requests", []))
    else:
        what = info["status"].upper()
    progress.update(i, c, what, final=True)
    return info


def run_cell_balanced(o, c, i, progress):
    for attempt in range(1, o.attempts + 1):
        info = run_cell(o, c, i, progress)
        if info["status"] == "ok":
            break
    if info["status"] == "unbalanced":
        info["status"] = "ok"
        info["warning"] = ("unbalanced after %d attempts: workers served %s"
                           % (o.attempts, " ".join(
                               "%d" % x for x in info["worker_requests"])))
    info["attempts"] = attempt
    with open(os.path.join(o.out, "cells", c["run_id"], "cell.json"),
              "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return info


# ---- merge, summary, plots --------------------------------------------------

def merge(o, plots=True):
    use_policies(o.server)
    summary, rows, _ = runner.merge(o.out, plots=False)
    infos = {i["run_id"]: i for i in runner.load_cells(o.out)}
    samples = {}
    for rid in infos:
        samples[rid] = runner.read_csv(os.path.join(infos[rid]["dir"],
                                                    "samples.csv"))
    # runs.csv: this runner's columns, appended
    for r in rows:
        info = infos.get(r["run_id"], {})
        fin = runner.final_rows(samples.get(r["run_id"], []), r["run_id"])
        target = runner.num(info.get("requests_per_worker"), 0)
        share = runner.num(info.get("min_share"), 0.5)
        loaded = [x for x in fin
                  if runner.num(x.get("requests"), 0) >= share * target] or fin

        def fmean(col):
            return runner.mean([runner.num(x.get(col)) for x in loaded])
        meta = {}
        try:
            with open(os.path.join(info.get("dir", ""), "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            pass
        r["server"] = info.get("server", o.server)
        r["stop_ms"] = info.get("stop_ms", "")
        r["copied_by_master_loaded"] = runner.fmt(fmean("copied_by_master"),
                                                  1)
        r["heap_new_pages"] = runner.fmt(fmean("heap_new_pages"), 1)
        r["heap_shared_pages"] = runner.fmt(fmean("heap_shared_pages"), 1)
        r["attach_method"] = meta.get("method", "")
        r["attached_after_fork"] = meta.get("attached_after_fork", "")
    header = runner.read_header(os.path.join(o.out, "runs.csv"))
    header += [c for c in EXTRA_COLUMNS if c not in header]
    with open(os.path.join(o.out, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore",
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    # summary: runner.py's figures plus what attach adds
    for s in summary:
        rs = [r for r in rows if r.get("policy") == s["policy"]
              and int(runner.num(r.get("workers"), 0)) == s["workers"]
              and runner.num(r.get("scale"), 0) == s["scale"]
              and r.get("status", "").startswith("ok")]

        def m(col, rs=rs):
            return runner.mean([runner.num(r.get(col)) for r in rs])
        s["copied_by_master"] = m("copied_by_master_loaded")
        s["heap_new_pages"] = m("heap_new_pages")
        s["master_pss_kb"] = m("master_pss_kb")
        for e in EXITS:
            s["stop_ms_" + e] = runner.mean(
                [runner.num(r.get("stop_ms")) for r in rs
                 if r.get("exit") == e])
    text = table_text(o, summary, rows, infos)
    with open(os.path.join(o.out, "summary.txt"), "w") as f:
        f.write(text)
    cols = runner.SUMMARY_COLUMNS + SUMMARY_EXTRA
    with open(os.path.join(o.out, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for s in summary:
            w.writerow([runner.csv_num(s.get(c)) for c in cols])
    # meta.json: the runner's, with the server's versions
    mpath = os.path.join(o.out, "meta.json")
    try:
        with open(mpath) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        meta = {}
    meta["tool"] = "cowlab scripts/realserver.py"
    meta["server"] = o.server
    meta["versions"] = versions(o)
    meta["app"] = "scripts/apps/cowapp (Django, in-memory SQLite)"
    meta["policies"] = {p: POLICY_TEXT[p] for p in SERVERS[o.server]}
    meta["note"] = ("measured by cowlab attach (page frames when run as "
                    "root); requests per worker from the app's own count; "
                    "stop_ms: SIGTERM to the server's exit, from outside; "
                    "wrk is closed-loop")
    with open(mpath, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    made = make_plots(o, list(infos.values()), samples, summary) \
        if plots else []
    return summary, rows, made, text


def table_text(o, summary, rows, infos):
    f = runner.fmt
    L = []
    multi = len({(s["workers"], s["scale"]) for s in summary}) > 1
    hdr = ("%-11s %s%6s %7s %9s %9s %9s %9s %8s %7s %7s %9s %9s" % (
        "policy", "  w scale " if multi else "", "heap", "shared",
        "dirty/wkr", "by master", "total PSS", "minflt", "req/s", "p50",
        "p99", "stop fin.", "stop skip"))
    units = ("%-11s %s%6s %7s %9s %9s %9s %9s %8s %7s %7s %9s %9s" % (
        "", "          " if multi else "", "MiB", "%", "MiB", "pages", "MiB",
        "/worker", "", "ms", "ms", "ms", "ms"))
    L += [hdr, units, "-" * len(hdr)]

    def g(v, spec):
        return (spec % v) if v is not None else "-"
    for s in summary:
        L.append("%-11s %s%6s %7s %9s %9s %9s %9s %8s %7s %7s %9s %9s" % (
            s["policy"],
            ("%3d %5s  " % (s["workers"], runner.fmt_scale(s["scale"])))
            if multi else "",
            g(s["heap_mb"], "%.0f"), g(s["heap_shared_pct"], "%.1f"),
            g(None if s["private_dirty_kb"] is None
              else s["private_dirty_kb"] / 1024, "%.1f"),
            g(s.get("copied_by_master"), "%.0f"),
            g(None if s["total_pss_kb"] is None
              else s["total_pss_kb"] / 1024, "%.0f"),
            g(mean_col(rows, s, "minflt"), "%.0f"),
            g(s["rps"], "%.0f"), g(s["p50_ms"], "%.2f"),
            g(s["p99_ms"], "%.2f"), g(s.get("stop_ms_finalize"), "%.0f"),
            g(s.get("stop_ms_skip"), "%.0f")))
    L.append("")
    if summary:
        s0 = summary[0]
        L.append("%s, %d workers; heap: the master's private anonymous "
                 "pages at the snapshot; %s requests per worker per run "
                 "(served: %d to %d)." % (
                     o.server, s0["workers"], s0["requests_per_worker"],
                     min(s["worker_requests_min"] for s in summary),
                     max(s["worker_requests_max"] for s in summary)))
    L.append("Per worker (workers that served at least half their "
             "requests), at the end of the load, mean")
    L.append("over a policy's runs (one per exit); stop: SIGTERM to the "
             "server's exit, per exit policy.")
    L.append("shared: heap pages the worker did not copy (copies by the "
             "master apart, in `by master`).")
    for p in sorted({s["policy"] for s in summary}, key=runner.policy_rank):
        L.append("  %-11s %s" % (p, POLICY_TEXT.get(p, "")))
    for r in rows:
        if r.get("status", "").startswith("ok ("):
            L.append("WARNING %s: %s" % (r.get("run_id"), r["status"][4:-1]))
        if r.get("attach_method") not in ("", "pfn", None):
            L.append("NOTE %s: measured by the exclusive bit (not root): "
                     "copies are an upper bound" % r.get("run_id"))
    for r in rows:
        if not r.get("status", "").startswith("ok"):
            L.append("FAILED %s: %s (see cells/%s/)" % (
                r.get("run_id"), r.get("status"), r.get("run_id")))
    return "\n".join(L) + "\n"


def mean_col(rows, s, col):
    """Mean of a runs.csv column over the ok runs of a summary line."""
    return runner.mean([runner.num(r.get(col)) for r in rows
                        if r.get("policy") == s["policy"]
                        and int(runner.num(r.get("workers"), 0))
                        == s["workers"]
                        and runner.num(r.get("scale"), 0) == s["scale"]
                        and r.get("status", "").startswith("ok")])


def make_plots(o, infos, samples, summary):
    if shutil.which("gnuplot") is None:
        log("realserver: gnuplot not found: no plots (install gnuplot-nox)")
        with open(os.path.join(o.out, "PLOTS-SKIPPED.txt"), "w") as f:
            f.write("gnuplot was not installed: no PNG plots were made.\n")
        return []
    ok = [i for i in infos if i.get("status") == "ok"]
    if not ok:
        return []
    pdir = os.path.join(o.out, "plotdata")
    os.makedirs(pdir, exist_ok=True)
    ws = sorted({i["workers"] for i in ok})
    ss = sorted({i["scale"] for i in ok})
    w0 = 4 if 4 in ws else ws[-1]
    s0 = 1.0 if 1.0 in ss else ss[0]
    pick = {}
    for i in ok:
        if i["workers"] == w0 and i["scale"] == s0 and (
                i["policy"] not in pick or i["exit"] == "finalize"):
            pick[i["policy"]] = i
    policies = sorted(pick, key=runner.policy_rank)
    tag = "%s, %d workers, scale %s" % (o.server, w0, runner.fmt_scale(s0))
    gp = ['set terminal pngcairo size 1000,620 enhanced font "DejaVu Sans,11"',
          'set grid', 'set datafile separator ","']
    made = []
    lines_a, lines_b = [], []
    for p in policies:
        rid = pick[p]["run_id"]
        ser = runner.series_by_tick(samples.get(rid, []), rid, w0, pick[p])
        fn = os.path.join(pdir, "series_%s.csv" % p)
        with open(fn, "w") as f:
            f.write("# t_s,requests_per_worker,heap_shared_pct,"
                    "private_dirty_mib\n")
            for t, rq, sh, pd in ser:
                f.write("%.3f,%.1f,%.3f,%.3f\n" % (t / 1e3, rq, sh, pd / 1024))
        lines_a.append("%s using ($2 > 1 ? $2 : 1):3 with linespoints %s "
                       "title %s" % (runner.gp_str(fn), runner.line_style(p),
                                     runner.gp_str(p)))
        lines_b.append("%s using 1:4 with linespoints %s title %s" % (
            runner.gp_str(fn), runner.line_style(p), runner.gp_str(p)))
    png = os.path.join(o.out, "heap_shared_vs_requests.png")
    gp += ["set output %s" % runner.gp_str(png),
           "set title %s" % runner.gp_str(
               "Master's heap pages not copied by the worker (%s)" % tag),
           'set xlabel "requests served per worker (mean over workers; log '
           'scale, 0 drawn at 1)"',
           'set ylabel "heap shared (% of the master'"'"'s private pages)"',
           "set key inside right center box opaque", "set logscale x",
           "set yrange [-2:105]", "set xrange [1:*]",
           "plot " + ", \\\n     ".join(lines_a), "unset logscale x"]
    made.append(png)
    png = os.path.join(o.out, "private_dirty_over_time.png")
    gp += ["set output %s" % runner.gp_str(png),
           "set title %s" % runner.gp_str(
               "Private dirty memory per worker (%s)" % tag),
           'set xlabel "time since the attach (s)"',
           'set ylabel "private dirty per worker (MiB)"',
           "set key inside right center box opaque",
           "set yrange [0:*]", "set xrange [0:*]",
           "plot " + ", \\\n     ".join(lines_b)]
    made.append(png)
    srow = [s for s in summary if s["workers"] == w0 and s["scale"] == s0]
    srow.sort(key=lambda s: runner.policy_rank(s["policy"]))
    # memory: what the app costs (PSS of master + workers), split
    fn = os.path.join(pdir, "memory.csv")
    with open(fn, "w") as f:
        f.write("# policy,master_pss_mib,workers_pss_mib\n")
        for s in srow:
            tot = (s["total_pss_kb"] or 0) / 1024
            mst = (s.get("master_pss_kb") or 0) / 1024
            f.write("%s,%.1f,%.1f\n" % (s["policy"], mst, max(tot - mst, 0)))
    png = os.path.join(o.out, "total_pss.png")
    gp += ["set output %s" % runner.gp_str(png),
           "set title %s" % runner.gp_str(
               "What the app costs: PSS of the master and its workers at "
               "the end of the load (%s)" % tag),
           'set xlabel "policy"', 'set ylabel "PSS (MiB)"',
           "set style data histograms", "set style histogram rowstacked",
           "set style fill solid 0.85 border -1", "set boxwidth 0.6",
           "set xrange [-0.6:%g]" % (len(srow) - 0.4), "set yrange [0:*]",
           "set key outside right top noopaque nobox",
           "plot %s using 2:xtic(1) lc rgb '#7f7f7f' title 'master', "
           "'' using 3 lc rgb '#1f77b4' title 'workers'" % runner.gp_str(fn)]
    made.append(png)
    # the stop, finalize vs skip
    fn = os.path.join(pdir, "stop.csv")
    with open(fn, "w") as f:
        f.write("# policy,stop_ms_finalize,stop_ms_skip\n")
        for s in srow:
            f.write("%s,%.1f,%.1f\n" % (s["policy"],
                                        s.get("stop_ms_finalize") or 0,
                                        s.get("stop_ms_skip") or 0))
    png = os.path.join(o.out, "stop_time.png")
    gp += ["set output %s" % runner.gp_str(png),
           "set title %s" % runner.gp_str(
               "Graceful stop of the server, SIGTERM to exit: workers "
               "finalize vs os.\\_exit (%s)" % tag),
           'set xlabel "policy"', 'set ylabel "stop (ms)"',
           "set style histogram clustered gap 1", "set boxwidth 0.9",
           "plot %s using 2:xtic(1) lc rgb '#d62728' title 'finalize', "
           "'' using 3 lc rgb '#2ca02c' title 'skip (os.\\_exit)'"
           % runner.gp_str(fn)]
    made.append(png)
    # throughput and latency
    fn = os.path.join(pdir, "load.csv")
    with open(fn, "w") as f:
        f.write("# policy,rps,p50_ms,p99_ms\n")
        for s in srow:
            f.write("%s,%.1f,%.3f,%.3f\n" % (s["policy"], s["rps"] or 0,
                                             s["p50_ms"] or 0,
                                             s["p99_ms"] or 0))
    png = os.path.join(o.out, "throughput_latency.png")
    gp += ["set output %s" % runner.gp_str(png),
           "set terminal pngcairo size 1000,760 enhanced font "
           '"DejaVu Sans,11"',
           "set multiplot layout 2,1 title %s" % runner.gp_str(
               "Throughput and latency under wrk (closed loop, %s)" % tag),
           "set title 'throughput'", 'set ylabel "requests/s"',
           'set xlabel ""', "set yrange [0:*]",
           "plot %s using 2:xtic(1) lc rgb '#1f77b4' title 'req/s'"
           % runner.gp_str(fn),
           "set title 'latency'", 'set ylabel "latency (ms)"',
           'set xlabel "policy"',
           "plot %s using 3:xtic(1) lc rgb '#2ca02c' title 'p50', "
           "'' using 4 lc rgb '#d62728' title 'p99'" % runner.gp_str(fn),
           "unset multiplot"]
    made.append(png)
    script = os.path.join(o.out, "plots.gp")
    with open(script, "w") as f:
        f.write("# generated by scripts/realserver.py: gnuplot %s\n" % script)
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        log("realserver: gnuplot failed:\n" + r.stderr)
        return []
    return [m for m in made if os.path.exists(m)]


# ---- main -------------------------------------------------------------------

def check_tools(o):
    if not os.access(o.bin, os.X_OK):
        raise SystemExit("realserver: %s is missing: run make first" % o.bin)
    if shutil.which("wrk") is None:
        raise SystemExit("realserver: wrk is not installed (apt-get install "
                         "wrk)")
    if not os.access(o.python, os.X_OK):
        raise SystemExit("realserver: %s is missing (apt-get install "
                         "python3)" % o.python)
    mods = "django" + (", gunicorn" if o.server == "gunicorn" else "")
    r = subprocess.run([o.python, "-c", "import " + mods],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("realserver: %s cannot import %s (apt-get install "
                         "%s)" % (o.python, mods, PACKAGES[o.server]))
    if o.server == "uwsgi" and shutil.which("uwsgi") is None:
        raise SystemExit("realserver: uwsgi is not installed (apt-get "
                         "install %s)" % PACKAGES["uwsgi"])


def main(argv):
    o = parse_args(argv)
    if o.merge:
        o.out = o.merge
        summary, rows, made, text = merge(o, plots=not o.no_plots)
        sys.stdout.write(text)
        return 0 if all(r.get("status", "").startswith("ok")
                        for r in rows) else 1
    check_tools(o)
    use_policies(o.server)
    if os.geteuid() != 0 and not o.quiet:
        log("realserver: not root: page frames are hidden, so cowlab attach "
            "counts copies by the exclusive bit (an upper bound)")
    cells = []
    for s in o.scale_list:
        for w in o.workers_list:
            for pol in o.policy_list:
                for e in o.exit_list:
                    cells.append({"policy": pol, "workers": w, "scale": s,
                                  "exit": e, "requests": o.requests,
                                  "run_id": "%s-%s-w%d-s%s-%s" % (
                                      o.server, pol, w, runner.fmt_scale(s),
                                      e)})
    os.makedirs(os.path.join(o.out, "cells"), exist_ok=True)
    t0 = time.monotonic()
    if not o.quiet:
        log("realserver: %s, %d runs (%s) x workers %s x scale %s x exit %s;"
            " %d requests per worker; results in %s" % (
                o.server, len(cells), ",".join(o.policy_list),
                ",".join(map(str, o.workers_list)),
                ",".join(runner.fmt_scale(s) for s in o.scale_list),
                ",".join(o.exit_list), o.requests, o.out))
    progress = runner.Progress(o, len(cells), t0)
    failed = 0
    for i, c in enumerate(cells, 1):
        if run_cell_balanced(o, c, i, progress)["status"] != "ok":
            failed += 1
    summary, rows, made, text = merge(o, plots=not o.no_plots)
    sys.stdout.write("\n" + text)
    log("realserver: %d runs in %.1f s, %d failed; results in %s%s" % (
        len(cells), time.monotonic() - t0, failed, o.out,
        ("; plots: " + " ".join(os.path.basename(m) for m in made))
        if made else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        log("\nrealserver: interrupted; the cells done so far are in their "
            "folders (merge them with --merge OUT)")
        sys.exit(130)
