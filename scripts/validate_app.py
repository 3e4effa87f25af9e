#!/usr/bin/env python3
"""
validate_app.py -- `make validate-app`: the census Django app
(tests/apps/censusapp) under CPython with a forked worker per policy,
against cowlab serving the app's census workload, side by side.

Per interpreter (Debian's python3; pyenv's 3.12 with Debian's
dist-packages on PYTHONPATH, where Django imports there):
 1. census of the app with request mix A (heap_census.py);
 2. calibration, on mix A only: cowlab serves that census's workload for one
    request; the pages that request copied over the reads it made give
    --pages-per-read (how many pages one of cowlab's reads copies);
 3. census with request mix B, at that --pages-per-read;
 4. per policy (default, gc-off, freeze): CPython imports the app under
    the policy, snapshots its heap pages (cpython_experiment.py's
    snapshot_pages/count_copied) and forks a worker that serves mix B;
    cowlab serves the mix-B workload under the same policy with one
    worker, driven over HTTP one request at a time.  Figures:
      copied_N    % of the pre-fork heap pages the worker copied after N
                  requests (N = 100, 1,000, 10,000)
      first_full  the request during which the first full (generation 2)
                  collection ran (cowlab: the first sample showing one;
                  samples every 20 ms)
      by_gc       heap pages copied inside collections of generation 1 or
                  2 (CPython: gc.callbacks with a pagemap count around
                  each; generation-0 collections are not bracketed, they
                  would cost a pagemap read each) / cowlab: copied_by_gc
      teardown    minor faults of the worker's exit, finalize and skip
                  (CPython: two children forked from the worker after the
                  last request, one each; cowlab: one run per exit policy)
Nothing is fitted on these figures: the only calibrated constant comes from
mix A, the comparison uses mix B.  Output: OUT/comparison.txt (the table),
OUT/results.json, the workloads and census reports.
"""

import argparse
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APPS = os.path.join(ROOT, "tests", "apps")
CHECKPOINTS = (100, 1000, 10000)
POLICIES = ("default", "gc-off", "freeze")
SAMPLE_MS = 20


def log(msg):
    sys.stderr.write("validate_app: %s\n" % msg)
    sys.stderr.flush()


# ---- the CPython side (runs inside the app's interpreter) ------------------

def cpython_cell(policy, mix, requests):
    """Import the app under the policy, fork a worker serving `requests`
    requests of the mix, print the figures as JSON."""
    import gc
    sys.path.insert(0, HERE)
    from cpython_experiment import count_copied, snapshot_pages
    sys.path.insert(0, APPS)
    if policy == "gc-off":
        gc.set_threshold(0)
    import censusapp.driver as driver
    if policy != "gc-off":
        gc.collect()
    if policy == "freeze":
        gc.freeze()
    ranges, heap_pages = snapshot_pages()
    fn = getattr(driver, "request_" + mix)
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _exit_child["result_fd"] = wfd
        try:
            out = worker(fn, requests, ranges, count_copied)
        except BaseException as e:
            if _exit_child["exiting"]:
                raise                   # a teardown child: finalize
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        os.write(wfd, json.dumps(out).encode())
        os._exit(0)
    os.close(wfd)
    data = b""
    while True:
        b = os.read(rfd, 65536)
        if not b:
            break
        data += b
    os.waitpid(pid, 0)
    out = json.loads(data.decode() or '{"error": "the worker died"}')
    out["heap_pages"] = heap_pages
    out["python"] = sys.version.split()[0]
    print(json.dumps(out))


def worker(fn, requests, ranges, count_copied):
    import gc
    me = os.getpid()
    state = {"k": 0, "first_full": None, "by_gc": 0, "c0": None}

    def copied_now():
        # count_copied() gives (copied, released): released pages (given
        # back to the system) are neither copied nor shared, as in cowlab
        got = count_copied(me, ranges)
        if got is None:
            raise RuntimeError("pagemap unreadable")
        return got[0]

    def bracket(phase, info):
        if info["generation"] < 1:
            return
        if phase == "start":
            state["c0"] = copied_now()
            if info["generation"] == 2 and state["first_full"] is None:
                state["first_full"] = state["k"]
        elif state["c0"] is not None:
            state["by_gc"] += copied_now() - state["c0"]
            state["c0"] = None
    gc.callbacks.append(bracket)
    base = copied_now()
    copied = {}
    for k in range(1, requests + 1):
        state["k"] = k
        fn()
        if k in CHECKPOINTS:
            copied[k] = copied_now() - base
    gc.callbacks.remove(bracket)
    return {"copied": copied, "first_full": state["first_full"],
            "by_gc": state["by_gc"], "teardown": {
                "finalize": exit_faults("finalize"),
                "skip": exit_faults("skip")}}


# Set in exit_faults()'s children, whose sys.exit() must reach the
# interpreter's own exit (Py_FinalizeEx) through cpython_cell().
_exit_child = {"exiting": False, "result_fd": None}


def exit_faults(how):
    """Minor faults of an exit from this state: a child forked now exits
    at once by `how`; wait4's figure minus the child's own before it."""
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _exit_child["exiting"] = True
        os.close(_exit_child["result_fd"])
        os.write(wfd, str(resource.getrusage(
            resource.RUSAGE_SELF).ru_minflt).encode())
        os.close(wfd)
        if how == "skip":
            os._exit(0)
        sys.exit(0)
    os.close(wfd)
    t0 = time.perf_counter()
    before = int(os.read(rfd, 64) or b"0")
    os.close(rfd)
    _, _, ru = os.wait4(pid, 0)
    return {"faults": ru.ru_minflt - before,
            "ms": round((time.perf_counter() - t0) * 1e3, 3)}


# ---- the cowlab side ---------------------------------------------------------

def last_row(path):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None, []
    if len(lines) < 2:
        return None, []
    head = lines[0].split(",")
    rows = [dict(zip(head, ln.split(","))) for ln in lines[1:]
            if ln.count(",") == len(head) - 1]
    return (rows[-1] if rows else None), rows


def wait_requests(samples, k, timeout=10.0):
    """The first sample showing k requests served."""
    t_end = time.time() + timeout
    while time.time() < t_end:
        row, _ = last_row(samples)
        if row is not None and int(row["requests"]) >= k:
            return row
        time.sleep(SAMPLE_MS / 1000.0)
    raise RuntimeError("no sample with %d requests in %s" % (k, samples))


def cowlab_cell(binary, workload, policy, exit_policy, requests, out,
                python, checkpoints=CHECKPOINTS):
    """Serve `requests` requests on "/" one at a time, the heap laid out
    as CPython `python` ("3.11" or "3.12") lays it out; the figures."""
    if os.path.isdir(out):
        shutil.rmtree(out)
    args = [binary, "--workload", workload, "--port", "0", "-w", "1",
            "--sample-ms", str(SAMPLE_MS), "--sample-budget", "100",
            "--exit", exit_policy, "--out", out, "--run-id", "run",
            "--pagemap-gc-fraction", "1", "--python", python]
    if policy == "gc-off":
        args += ["--gc", "off"]
    elif policy == "freeze":
        args += ["--freeze"]
    os.makedirs(out)
    so, se = (os.path.join(out, n) for n in ("server.out", "server.err"))
    with open(so, "w") as fo, open(se, "w") as fe:
        proc = subprocess.Popen(args, stdout=fo, stderr=fe)
    port = None
    try:
        t_end = time.time() + 120
        while port is None and time.time() < t_end \
                and proc.poll() is None:
            with open(so) as f:
                for line in f:
                    if line.startswith("listening http://127.0.0.1:"):
                        port = int(line.rsplit(":", 1)[1])
            time.sleep(0.05)
        if port is None:
            with open(se) as f:
                raise RuntimeError("cowlab did not start: "
                                   + f.read()[-500:])
        samples = os.path.join(out, "samples.csv")
        base = int(wait_requests(samples, 0)["heap_copied_pages"])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        copied = {}
        for k in range(1, requests + 1):
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("GET / answered %d" % r.status)
            if k in checkpoints:
                row = wait_requests(samples, k)
                copied[k] = int(row["heap_copied_pages"]) - base
        conn.close()
        time.sleep(3 * SAMPLE_MS / 1000.0)
        row, rows = last_row(samples)
        first_full = None
        for r in rows:
            if r["gc_collections_2"] not in ("", "0"):
                first_full = int(r["requests"])
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    run, _ = last_row(os.path.join(out, "runs.csv"))
    return {"copied": copied, "heap_pages": int(row["heap_pages"]),
            "first_full": first_full,
            "by_gc": int(row["copied_by_gc"] or 0),
            "teardown": {"faults": float(run["faults_teardown"] or 0),
                         "ms": float(run["teardown_ms"] or 0)}
            if run else None}


# ---- the harness -------------------------------------------------------------

def interpreters(spec, py311, py312):
    """(version, interpreter, environment) per --pythons entry: 3.11 is
    Debian's python3 (with python3-django); 3.12 is --python312, else
    pyenv's, else python3.12 on PATH, given Debian's dist-packages (Django
    3.2 is pure Python)."""
    out = []
    for v in spec.split(","):
        if v == "3.11":
            out.append(("3.11", py311, {}))
        elif v == "3.12":
            py = py312 or shutil.which("python3.12")
            root = os.path.expanduser("~/.pyenv/versions")
            if not py312 and os.path.isdir(root):
                for d in sorted(os.listdir(root)):
                    if d.startswith("3.12"):
                        py = os.path.join(root, d, "bin", "python3.12")
            out.append(("3.12", py, {"PYTHONPATH":
                                     "/usr/lib/python3/dist-packages",
                                     "PYTHONWARNINGS": "ignore"}))
        else:
            raise SystemExit("validate_app: --pythons: 3.11 or 3.12, not %r"
                             % v)
    return out


def run_py(py, env, args, what):
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run([py] + args, env=e, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (what, p.returncode,
                                                p.stderr.strip()[-600:]))
    return p


def census(py, env, mix, out, ppr, requests):
    wl = os.path.join(out, "census-%s.json" % mix)
    run_py(py, env, [os.path.join(HERE, "heap_census.py"), "--path", APPS,
                     "--import", "censusapp.driver", "--request",
                     "censusapp.driver:request_" + mix, "--requests",
                     str(requests), "--pages-per-read", repr(ppr),
                     "--name", "censusapp-" + mix, "--out", wl, "--report",
                     os.path.join(out, "census-%s.report.json" % mix)],
           "census (mix %s)" % mix)
    return wl


def pct(pages, total):
    return 100.0 * pages / total if total else 0.0


def copied_pct(side, k):
    """% of the heap copied after k requests (keys are ints, or strs once
    through JSON)."""
    c = side["copied"]
    return pct(c.get(k, c.get(str(k), 0)), side["heap_pages"])


def table(results):
    lines = []
    hdr = "%-6s %-8s %-22s %12s %12s %12s" % ("python", "policy", "figure",
                                                "CPython", "cowlab",
                                                "difference")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for (ver, pol), r in results.items():
        if "skipped" in r:
            lines.append("%-6s %-8s skipped: %s" % (ver, pol, r["skipped"]))
            continue
        c, m = r["cpython"], r["cowlab"]
        for k in CHECKPOINTS:
            a, b = copied_pct(c, k), copied_pct(m, k)
            lines.append("%-6s %-8s %-22s %11.1f%% %11.1f%% %+10.1f pp"
                         % (ver, pol, "copied after %d" % k, a, b, b - a))
        a, b = c["first_full"], m["first_full"]
        ratio = ("%10.2fx" % (b / a)) if a and b else "%11s" % "-"
        lines.append("%-6s %-8s %-22s %12s %12s %s" % (
            ver, pol, "first full (request)", a if a is not None else "none",
            b if b is not None else "none", ratio))
        a = pct(c["by_gc"], c["heap_pages"])
        b = pct(m["by_gc"], m["heap_pages"])
        lines.append("%-6s %-8s %-22s %11.1f%% %11.1f%% %+10.1f pp"
                     % (ver, pol, "copied by the GC", a, b, b - a))
        for how in ("finalize", "skip"):
            a = c["teardown"][how]["faults"]
            b = m["teardown_" + how]["faults"] if m.get(
                "teardown_" + how) else float("nan")
            lines.append("%-6s %-8s %-22s %12d %12.0f %+12.0f" % (
                ver, pol, "teardown faults " + how, a, b, b - a))
    # The ordering of the policies by heap copied after the last
    # checkpoint reached, per interpreter.
    for ver in sorted({v for v, _ in results}):
        rows = [(p, r) for (v, p), r in results.items()
                if v == ver and "skipped" not in r]
        if len(rows) < 2:
            continue
        k = max(CHECKPOINTS)

        def order(side):
            return [p for p, _ in sorted(
                rows, key=lambda pr: copied_pct(pr[1][side], k))]
        a, b = order("cpython"), order("cowlab")
        lines.append("%-6s policies by copied after %d: CPython %s, cowlab "
                     "%s: %s" % (ver, k, " < ".join(a), " < ".join(b),
                                 "same order" if a == b
                                 else "different order"))
    return "\n".join(lines) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(prog="validate_app.py",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--pythons", default="3.11,3.12",
                    help="interpreters to compare: 3.11, 3.12 [%(default)s]")
    ap.add_argument("--python311", default="/usr/bin/python3",
                    metavar="PATH", help="the 3.11 interpreter, with "
                    "Django importable [%(default)s]")
    ap.add_argument("--python312", default=None, metavar="PATH",
                    help="the 3.12 interpreter [pyenv's, else python3.12]")
    ap.add_argument("--policies", default=",".join(POLICIES),
                    help="policies: default, gc-off, freeze [all]")
    ap.add_argument("--requests", type=int, default=10000,
                    help="requests per worker [%(default)s]")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "release",
                                                  "cowlab"),
                    help="the cowlab binary [build/release/cowlab]")
    ap.add_argument("--out", default=None,
                    help="results folder [results/validate-app-<time>]")
    ap.add_argument("--cpython-cell", nargs=3,
                    metavar=("POLICY", "MIX", "REQUESTS"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.requests < 1:
        ap.error("--requests: expected at least 1")
    if a.cpython_cell:
        cpython_cell(a.cpython_cell[0], a.cpython_cell[1],
                     int(a.cpython_cell[2]))
        return 0
    policies = [p for p in a.policies.split(",") if p]
    for p in policies:
        if p not in POLICIES:
            ap.error("--policies: %r is not one of %s" % (p, POLICIES))
    if not os.access(a.bin, os.X_OK):
        ap.error("--bin %s: not an executable (make first)" % a.bin)
    out = a.out or os.path.join(ROOT, "results", "validate-app-"
                                + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    results = {}
    for ver, py, env in interpreters(a.pythons, a.python311, a.python312):
        vout = os.path.join(out, ver)
        os.makedirs(vout, exist_ok=True)
        try:
            if not py:
                raise RuntimeError("no python%s found" % ver)
            run_py(py, env, ["-c", "import django"], "import django")
        except RuntimeError as e:
            for p in policies:
                results[(ver, p)] = {"skipped": str(e)}
            log("%s skipped: %s" % (ver, e))
            continue
        log("%s: census, mix A" % ver)
        wl_a = census(py, env, "a", vout, 3.0, 200)
        with open(wl_a) as f:
            reads_a = json.load(f)["routes"][0]["reads"]
        cal = cowlab_cell(a.bin, wl_a, "default", "skip", 1,
                          os.path.join(vout, "calibrate"), ver,
                          checkpoints=(1,))
        ppr = max(0.05, cal["copied"][1] / max(1, reads_a))
        log("%s: calibration on mix A: %d reads copied %d pages: "
            "--pages-per-read %.3f" % (ver, reads_a, cal["copied"][1], ppr))
        wl_b = census(py, env, "b", vout, ppr, 200)
        for pol in policies:
            log("%s %s: CPython, %d requests of mix B" % (ver, pol,
                                                        a.requests))
            p = run_py(py, env, [os.path.abspath(__file__), "--cpython-cell",
                                 pol, "b", str(a.requests)],
                       "CPython cell %s" % pol)
            c = json.loads(p.stdout.strip().splitlines()[-1])
            if "error" in c:
                raise SystemExit("validate_app: CPython %s %s: %s"
                                 % (ver, pol, c["error"]))
            log("%s %s: cowlab" % (ver, pol))
            m = {}
            for how in ("finalize", "skip"):
                r = cowlab_cell(a.bin, wl_b, pol, how, a.requests,
                                os.path.join(vout, "cowlab-%s-%s"
                                             % (pol, how)), ver)
                if how == "finalize":
                    m.update(r)
                m["teardown_" + how] = r["teardown"]
            results[(ver, pol)] = {"cpython": c, "cowlab": m,
                                   "pages_per_read": ppr}
    text = table(results)
    with open(os.path.join(out, "comparison.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"%s %s" % k: v for k, v in results.items()}, f,
                  indent=2, default=str)
    sys.stdout.write(text)
    log("wrote %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
