#!/usr/bin/env bash
# test_realserver.sh -- `scripts/experiment --server gunicorn|uwsgi` end to
# end in --quick mode (a small heap, seconds a cell): gunicorn with the
# default and no-preload policies, uWSGI with default and lazy-apps, each
# exit finalize; valid CSVs with the documented columns, the requests
# column filled by the runner, the snapshot taken before the master's fork,
# and what the policies must show (preloading shares the heap: more of it
# stays shared and the app costs less PSS than without).  Needs the cowlab
# binary (COWLAB_BIN), wrk, and Debian's python3 with Django and gunicorn
# (uWSGI for its half); what is missing is skipped, and says so.
# Last line: "N passed, N failed".  Exit status 0 only if all passed.
set -u
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
SRVPY=/usr/bin/python3
BIN=$(realpath "${COWLAB_BIN:-bin/cowlab}" 2>/dev/null || echo bin/cowlab)
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
skip() { tests/skips.sh add "$@"; }
check() {               # check NAME COMMAND...
    local name=$1
    shift
    if "$@" >"$tmp/check.log" 2>&1; then
        ok "$name"
    else
        bad "$name"
        sed 's/^/     /' "$tmp/check.log" | head -20
    fi
}

tmp=$(mktemp -d /tmp/cowlab-test-realserver.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$BIN" ]; then
    echo "test_realserver: $BIN is missing: run make first"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! command -v wrk >/dev/null 2>&1; then
    skip test_realserver "wrk is not installed (apt-get install wrk)"
    exit 0
fi
if ! "$SRVPY" -c 'import django, gunicorn' >/dev/null 2>&1; then
    skip test_realserver "$SRVPY cannot import django and gunicorn" \
        "(apt-get install gunicorn python3-django)"
    exit 0
fi

run() {                 # run SERVER POLICIES OUT
    local t0
    t0=$(date +%s)
    if timeout 300 "$PY" scripts/realserver.py --server "$1" --quick \
            --policies "$2" --exits finalize --bin "$BIN" --out "$3" \
            >"$3.stdout" 2>"$3.stderr"; then
        ok "--server $1 --quick --policies $2 exits 0 ($(( $(date +%s) - t0 )) s)"
    else
        bad "--server $1 --quick --policies $2 exits 0"
        tail -20 "$3.stderr" | sed 's/^/     /'
    fi
}

verify() {              # verify OUT BASELINE: files, columns, figures
    check "$(basename "$1"): documented columns, every row filled as it must be" \
        "$PY" - "$1" "$2" "$(id -u)" <<'EOF'
import csv, json, os, sys
out, baseline, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rows(name):
    with open(os.path.join(out, name), newline="") as f:
        r = csv.DictReader(f)
        return r.fieldnames, list(r)
SAMPLES = ("run_id policy worker pid t_ms requests rss_kb pss_kb "
    "shared_clean_kb shared_dirty_kb private_clean_kb private_dirty_kb "
    "minflt majflt heap_pages heap_copied_pages heap_shared_pct "
    "gc_collections_0 gc_collections_1 gc_collections_2 gc_time_us "
    "faults_gc faults_request faults_other").split()
h, s = rows("samples.csv")
assert h[:len(SAMPLES)] == SAMPLES, "samples.csv header: %s" % h
for c in ("copied_by_master", "heap_new_pages", "heap_shared_pages"):
    assert c in h, c
assert len(s) >= 4, "only %d samples" % len(s)
for r in s:
    int(r["requests"]); int(r["heap_pages"]); int(r["minflt"])
    assert 0 <= float(r["heap_shared_pct"]) <= 100, r
    # what needs cowlab's runtime is empty, never 0
    for c in ("gc_collections_0", "faults_gc", "copied_by_gc"):
        assert r[c] == "", (c, r)
    if uid == 0:
        assert r["copied_by_master"] != "" and r["heap_shared_pages"] != "", r
assert max(int(r["requests"]) for r in s) > 0, "requests never filled"
h, runs = rows("runs.csv")
for c in ("stop_ms", "server", "attach_method", "attached_after_fork",
          "copied_by_master", "total_pss_kb", "wrk_requests"):
    assert c in h, c
for r in runs:
    assert r["status"].startswith("ok"), r["status"]
    assert r["attached_after_fork"] == "False", r   # the snapshot came first
    assert r["attach_method"] == ("pfn" if uid == 0 else "exclusive-bit"), r
    assert int(r["wrk_requests"]) >= 2 * int(r["requests_per_worker"])
    assert r["exit"] == "finalize" and r["scale"] == "0.05", r
    assert float(r["stop_ms"]) > 0 and float(r["total_pss_kb"]) > 0
    assert r["heap_objects"] == "" and r["build_ms"] == "", r
summ = {r["policy"]: r for r in rows("summary.csv")[1]}
pre, lazy = summ["default"], summ[baseline]
f = lambda r, c: float(r[c])
assert f(pre, "heap_shared_pct") > f(lazy, "heap_shared_pct"), (pre, lazy)
assert f(pre, "total_pss_kb") < f(lazy, "total_pss_kb"), (pre, lazy)
meta = json.load(open(os.path.join(out, "meta.json")))
assert meta["tool"] == "cowlab scripts/realserver.py" and meta["versions"]
EOF
    if command -v gnuplot >/dev/null 2>&1; then
        check "$(basename "$1"): the PNGs" sh -c "for p in heap_shared_vs_requests \
            private_dirty_over_time total_pss stop_time throughput_latency; \
            do test -s '$1'/\$p.png || { echo missing \$p.png; exit 1; }; \
            done"
    else
        skip test_realserver_plots "gnuplot is not installed"
    fi
}

# (a relative --out: the servers run elsewhere, the files must not)
run gunicorn default,no-preload "$(realpath --relative-to=. "$tmp")/gunicorn"
verify "$tmp/gunicorn" no-preload

if command -v uwsgi >/dev/null 2>&1 \
        && uwsgi --plugin python3 --help >/dev/null 2>&1; then
    run uwsgi default,lazy-apps "$tmp/uwsgi"
    verify "$tmp/uwsgi" lazy-apps
else
    skip test_realserver_uwsgi "uwsgi with its python3 plugin is not" \
        "installed (apt-get install uwsgi uwsgi-plugin-python3)"
fi

# bad command lines: a clear message and status 2, never a traceback
check "bad options are refused" sh -c "
    ! \"$PY\" scripts/realserver.py --server nginx 2>&1 | grep -q Traceback &&
    \"$PY\" scripts/realserver.py --server gunicorn --policies lazy-apps \
        >/dev/null 2>&1; test \$? -eq 1 &&
    \"$PY\" scripts/realserver.py --server gunicorn --policies lazy-apps 2>&1 \
        | grep -q 'not a gunicorn policy'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
