#!/usr/bin/env bash
# test_experiment.sh -- the experiment runner end to end, in --quick mode
# (a small heap, seconds): valid CSVs with every documented column, a
# summary, the PNGs when gnuplot is installed, --print-matrix and --merge.
# Needs the server (COWLAB_BIN, default bin/cowlab: make), python3 and wrk;
# without python3 or wrk it is skipped, and says so (SKIP lines go to
# COWLAB_SKIPS too: tests/skips.sh), as are the PNG checks without gnuplot.
# Last line: "N passed, N failed".  Exit status 0 only if all passed.
# Usage: [COWLAB_BIN=build/release/cowlab] scripts/test_experiment.sh [KEEP_DIR]
# (KEEP_DIR: where the results stay; default a temp dir, removed after)
set -u
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
BIN=$(realpath "${COWLAB_BIN:-bin/cowlab}" 2>/dev/null || echo bin/cowlab)
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
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

if [ $# -ge 1 ]; then
    tmp=$1
    mkdir -p "$tmp"
else
    tmp=$(mktemp -d /tmp/cowlab-test-experiment.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
fi
out=$tmp/quick

if [ ! -x "$BIN" ]; then
    echo "test_experiment: $BIN is missing: run make first"
    echo "0 passed, 1 failed"
    exit 1
fi
skip() { tests/skips.sh add "$@"; }
if ! command -v "$PY" >/dev/null 2>&1; then
    skip test_experiment "$PY is not installed (apt-get install python3)"
    exit 0
fi
if ! command -v wrk >/dev/null 2>&1; then
    skip test_experiment "wrk is not installed (apt-get install wrk)"
    exit 0
fi

# 1. the quick matrix: every policy, both exits
t0=$(date +%s)
if timeout 120 "$PY" scripts/runner.py --quick --bin "$BIN" --out "$out" \
        >"$tmp/stdout.txt" 2>"$tmp/stderr.txt"; then
    ok "runner --quick exits 0 ($(( $(date +%s) - t0 )) s)"
else
    bad "runner --quick exits 0"
    tail -20 "$tmp/stderr.txt" | sed 's/^/     /'
fi

# 2. the files, their columns and their rows (checked by header name)
check "samples.csv, runs.csv, summary.csv: documented columns, sane rows" \
    "$PY" - "$out" <<'EOF'
import csv, json, os, sys
out = sys.argv[1]
def rows(name):
    with open(os.path.join(out, name), newline="") as f:
        r = csv.DictReader(f)
        return r.fieldnames, list(r)
SAMPLES = ("run_id policy worker pid t_ms requests rss_kb pss_kb "
    "shared_clean_kb shared_dirty_kb private_clean_kb private_dirty_kb "
    "minflt majflt heap_pages heap_copied_pages heap_shared_pct "
    "gc_collections_0 gc_collections_1 gc_collections_2 gc_time_us "
    "faults_gc faults_request faults_other").split()
RUNS = ("run_id policy workers heap_objects heap_mb build_ms fork_ms "
    "requests rps p50_ms p99_ms heap_shared_pct private_dirty_kb "
    "teardown_ms faults_teardown exit scale workload gc gc_threshold freeze "
    "immortal lazy respawns duration_s").split()
SERVER_APPENDED = ("copied_by_teardown sample_ms responses_4xx "
    "responses_5xx").split()
EXTRA = ("server_rps p90_ms p999_ms wrk_requests worker_requests_min "
    "worker_requests_max pss_kb master_pss_kb total_pss_kb faults_gc "
    "faults_request faults_other status").split()
SUMMARY = ("policy workers scale heap_shared_pct private_dirty_kb faults_gc "
    "faults_request faults_other rps p50_ms p99_ms teardown_ms_finalize "
    "faults_teardown_finalize teardown_ms_skip faults_teardown_skip").split()
h, s = rows("samples.csv")
assert h[:len(SAMPLES)] == SAMPLES, "samples.csv header: %s" % h
assert len(s) > 20, "only %d samples" % len(s)
for r in s:
    assert all(r[c] != "" for c in SAMPLES), "empty field in %s" % r
    float(r["heap_shared_pct"]); int(r["rss_kb"]); int(r["minflt"])
    assert 0 <= float(r["heap_shared_pct"]) <= 100
h, runs = rows("runs.csv")
assert h[:len(RUNS)] == RUNS, "runs.csv header: %s" % h
missing = [c for c in SERVER_APPENDED + EXTRA if c not in h]
assert not missing, "runs.csv lacks %s" % missing
pols = ["default", "gc-off", "freeze", "freeze+immortal", "lazy"]
got = sorted((r["policy"], r["exit"]) for r in runs)
assert got == sorted((p, e) for p in pols for e in ("finalize", "skip")), got
for r in runs:
    assert r["status"].startswith("ok"), r["status"]
    assert float(r["rps"]) > 0 and float(r["p99_ms"]) >= float(r["p50_ms"]) > 0
    assert int(r["wrk_requests"]) >= int(r["requests_per_worker"]) * int(r["workers"])
    assert float(r["teardown_ms"]) >= 0 and r["faults_teardown"] != ""
    assert float(r["total_pss_kb"]) > 0
    assert int(r["responses_4xx"]) >= 0 and int(r["responses_5xx"]) == 0, r
h, summ = rows("summary.csv")
missing = [c for c in SUMMARY if c not in h]
assert not missing, "summary.csv lacks %s" % missing
assert [r["policy"] for r in summ] == pols, [r["policy"] for r in summ]
meta = json.load(open(os.path.join(out, "meta.json")))
assert meta["cells"] and meta["kernel"]
for r in runs:
    cell = os.path.join(out, "cells", r["run_id"])
    for f in ("samples.csv", "runs.csv", "meta.json", "wrk.txt", "cell.json"):
        assert os.path.isfile(os.path.join(cell, f)), (cell, f)
EOF

# 3. what the policies must show, even on a small heap
check "figures: immortal keeps the heap shared, lazy shares none, skip < finalize" \
    "$PY" - "$out" <<'EOF'
import csv, os, sys
s = {r["policy"]: r for r in csv.DictReader(open(os.path.join(sys.argv[1], "summary.csv")))}
f = lambda p, c: float(s[p][c])
assert f("freeze+immortal", "heap_shared_pct") > 90, s["freeze+immortal"]
assert f("lazy", "heap_shared_pct") == 0, s["lazy"]
assert f("default", "heap_shared_pct") < f("freeze+immortal", "heap_shared_pct")
for p in s:
    assert f(p, "teardown_ms_skip") < 5, (p, s[p]["teardown_ms_skip"])
    assert f(p, "teardown_ms_skip") < f(p, "teardown_ms_finalize"), p
    assert f(p, "faults_teardown_skip") <= f(p, "faults_teardown_finalize"), p
EOF

# 3b. copies by cause: every copy attributed (write sets), routes merged
check "write sets: no copy unattributed, each worker's count = its pagemap's; routes.csv" \
    "$PY" - "$out" <<'EOF'
import csv, os, sys
out = sys.argv[1]
runs = list(csv.DictReader(open(os.path.join(out, "runs.csv"))))
samples = list(csv.DictReader(open(os.path.join(out, "samples.csv"))))
routes = list(csv.DictReader(open(os.path.join(out, "routes.csv"))))
for r in runs:
    if r["policy"] == "lazy":
        assert r["attribution"] == "none", r
        continue
    assert r["attribution"] == "write-sets", (r["run_id"], r["attribution"])
    assert r["wset_check_pages"] == "0", (r["run_id"], r["wset_check_pages"])
    assert float(r["copied_unattributed"]) == 0, r["run_id"]
    last = {}
    for s in samples:
        if s["run_id"] == r["run_id"]:
            last[s["pid"]] = s
    for s in last.values():
        assert int(s["copied_by_request"]) + int(s["copied_by_gc"]) \
            == int(s["heap_copied_pages"]), s
    mine = [x for x in routes if x["run_id"] == r["run_id"]]
    n = sum(int(x["requests"]) for x in mine)
    assert n >= int(r["wrk_requests"]), (r["run_id"], n, r["wrk_requests"])
    if r["policy"] == "default":
        assert r["top_copy_route"], r["run_id"]
EOF

# 4. the summary, on the terminal and in summary.txt
check "summary table printed and saved" \
    sh -c "grep -q '^freeze+immortal' '$tmp/stdout.txt' &&
           grep -q 'teardown finalize' '$out/summary.txt' &&
           grep -q 'coordinated omission' '$out/summary.txt' &&
           [ \$(grep -cE '^(default|gc-off|freeze|freeze\+immortal|lazy) ' '$out/summary.txt') -eq 5 ]"

# 5. progress lines, one per step
check "a progress line per run" \
    sh -c "[ \$(grep -cE '(done|unbalanced): ' '$tmp/stderr.txt') -ge 10 ]"

# 6. the plots (or the note that says why not)
if command -v gnuplot >/dev/null 2>&1; then
    check "PNG plots" sh -c '
        for p in heap_shared_vs_requests private_dirty_over_time \
                 faults_by_cause teardown throughput_latency; do
            f="$1/$p.png"
            [ -s "$f" ] || { echo "missing $f"; exit 1; }
            head -c 8 "$f" | od -An -c | grep -q "P   N   G" \
                || { echo "not a PNG: $f"; exit 1; }
        done' sh "$out"
else
    check "no gnuplot: plots skipped with a note" \
        test -f "$out/PLOTS-SKIPPED.txt"
    skip test_experiment_png "gnuplot is not installed (apt-get install gnuplot-nox)"
fi

# 6b. --write-kinds: kinds.csv and kinds.png (one policy, one exit; lazy
# inherits no heap: it runs without kinds)
if timeout 120 "$PY" scripts/runner.py --quick --bin "$BIN" --write-kinds \
        --policies freeze,lazy --exits finalize --out "$tmp/kinds" --quiet \
        >"$tmp/kinds.txt" 2>&1; then
    check "--write-kinds: kinds.csv has every copy, by kind" \
        "$PY" - "$tmp/kinds" <<'EOF'
import csv, os, sys
out = sys.argv[1]
k = list(csv.DictReader(open(os.path.join(out, "kinds.csv"))))
assert sorted({r["kind"] for r in k}) == sorted(
    ["refcount", "gc", "payload", "new", "allocator", "other"]), k
runs = {r["policy"]: r for r in
        csv.DictReader(open(os.path.join(out, "runs.csv")))}
assert runs["lazy"]["status"] == "ok", runs["lazy"]
assert {r["policy"] for r in k} == {"freeze"}, k
samples = list(csv.DictReader(open(os.path.join(out, "samples.csv"))))
last = {}
for s in samples:
    if s["policy"] == "freeze":
        last[s["worker"]] = s
assert last
for w, s in last.items():
    mine = [r for r in k if r["worker"] == w]
    served = sum(int(r["copied_by_request"]) + int(r["copied_by_gc"])
                 for r in mine)
    assert served == int(s["heap_copied_pages"]), (w, served, s)
    assert sum(int(r["copied_by_teardown"]) for r in mine) > 0, mine
if os.path.exists(os.path.join(out, "plots.gp")):
    png = os.path.join(out, "kinds.png")
    assert open(png, "rb").read(4) == b"\x89PNG", png
EOF
else
    bad "runner --write-kinds exits 0"
    tail -20 "$tmp/kinds.txt" | sed 's/^/     /'
fi

# 7. --print-matrix: one command per cell; one of them, then --merge
check "--print-matrix prints one command per cell" sh -c "
    \"$PY\" scripts/runner.py --print-matrix --workers 1,2 --scale 0.02 --bin '$BIN' \
        --policies default,lazy --out '$tmp/sweep' > '$tmp/matrix.txt' &&
    [ \$(wc -l < '$tmp/matrix.txt') -eq 8 ] &&
    grep -q -- '--cell' '$tmp/matrix.txt'"
check "matrix lines run anywhere, --merge joins them by run_id" sh -c "
    set -e
    grep -e '--policies lazy' '$tmp/matrix.txt' | grep -e '--exits skip' |
        grep -e '--workers 2' > '$tmp/one.txt'
    grep -e '--policies default' '$tmp/matrix.txt' | grep -e '--exits skip' \
        >> '$tmp/one.txt'
    while read -r line; do
        eval \"COWLAB_NO_INSTALL=1 COWLAB_NO_BUILD=1 \$line --requests 100 --quiet --bin '$BIN'\"
    done < '$tmp/one.txt'
    [ \$(ls '$tmp/sweep/cells' | wc -l) -eq 3 ]
    \"$PY\" scripts/runner.py --merge '$tmp/sweep' > '$tmp/merge.txt'
    [ \$(grep -c . '$tmp/sweep/runs.csv') -eq 4 ]
    grep -q '^default' '$tmp/merge.txt'
    if command -v gnuplot >/dev/null; then
        test -s '$tmp/sweep/sweep_total_pss_vs_workers.png'; fi"

# 8. bad options fail clearly
check "unknown policy is refused" sh -c "
    ! \"$PY\" scripts/runner.py --policies nope --out '$tmp/x' 2> '$tmp/err.txt' &&
    grep -q 'unknown policy' '$tmp/err.txt'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
