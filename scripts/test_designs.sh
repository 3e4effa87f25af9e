#!/usr/bin/env bash
# test_designs.sh -- the runner's design matrix end to end, in --quick mode
# (`scripts/experiment --designs --quick`): one run per design, each in its
# runtime mode (runs.csv says which), designs.csv with one row per design,
# the designs plot when gnuplot is installed; and the control: a design
# whose server fails makes the runner fail and leaves that design out of
# designs.csv.
# Needs the server (COWLAB_BIN, default bin/cowlab: make), python3 and wrk;
# without python3 or wrk it is skipped, and says so (SKIP lines go to
# COWLAB_SKIPS too: tests/skips.sh), as is the PNG check without gnuplot.
# Last line: "N passed, N failed".  Exit status 0 only if all passed.
# Usage: [COWLAB_BIN=build/release/cowlab] scripts/test_designs.sh [KEEP_DIR]
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
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/cowlab-test-designs.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
fi
out=$tmp/designs

if [ ! -x "$BIN" ]; then
    echo "test_designs: $BIN is missing: run make first"
    echo "0 passed, 1 failed"
    exit 1
fi
skip() { tests/skips.sh add "$@"; }
if ! command -v "$PY" >/dev/null 2>&1; then
    skip test_designs "$PY is not installed (apt-get install python3)"
    exit 0
fi
if ! command -v wrk >/dev/null 2>&1; then
    skip test_designs "wrk is not installed (apt-get install wrk)"
    exit 0
fi

# 1. the quick design matrix
t0=$(date +%s)
if timeout 300 "$PY" scripts/runner.py --designs --quick --bin "$BIN" \
        --out "$out" >"$tmp/stdout.txt" 2>"$tmp/stderr.txt"; then
    ok "runner --designs --quick exits 0 ($(( $(date +%s) - t0 )) s)"
else
    bad "runner --designs --quick exits 0"
    tail -20 "$tmp/stderr.txt" | sed 's/^/     /'
fi

# 2. one run per design, each in its mode; designs.csv, one row each
check "runs.csv: one ok run per design in its mode; designs.csv complete" \
    "$PY" - "$out" <<'EOF'
import csv, os, sys
out = sys.argv[1]
MODES = {   # design: gc_layout, refcount, warmup, immortal
    "default": ("inline", "inline", "0", "0"),
    "gc-side": ("side", "inline", "0", "0"),
    "gc-bitmap": ("bitmap", "inline", "0", "0"),
    "rc-split": ("inline", "split", "0", "0"),
    "gc-side+rc-split": ("side", "split", "0", "0"),
    "gc-bitmap+rc-split": ("bitmap", "split", "0", "0"),
    "warmup": ("inline", "inline", "1", "0"),
    "immortal": ("inline", "inline", "0", "1"),
}
runs = list(csv.DictReader(open(os.path.join(out, "runs.csv"))))
assert sorted(r["policy"] for r in runs) == sorted(MODES), \
    [r["policy"] for r in runs]
for r in runs:
    assert r["status"].startswith("ok"), (r["policy"], r["status"])
    assert r["exit"] == "skip", r["exit"]
    got = (r["gc_layout"], r["refcount"], r["warmup"], r["immortal"])
    assert got == MODES[r["policy"]], (r["policy"], got)
    assert int(r["requests_per_worker"]) == 500, r["requests_per_worker"]
    assert float(r["gc_objects"]) > 0, (r["policy"], r["gc_objects"])
    assert r["side_pages"] != "" and r["side_copied_pages"] != "", r
    assert (r["warmup_ms"] != "") == (r["warmup"] == "1"), r["warmup_ms"]
with open(os.path.join(out, "designs.csv"), newline="") as f:
    rd = csv.DictReader(f)
    need = ("design gc_layout refcount warmup heap_shared_pct side_pages "
            "side_copied_pages gc_bytes_per_object rc_table_bytes "
            "overhead_bytes_per_object rps rps_ratio_vs_inline").split()
    missing = [c for c in need if c not in rd.fieldnames]
    assert not missing, "designs.csv lacks %s" % missing
    d = list(rd)
assert [x["design"] for x in d] == list(MODES), [x["design"] for x in d]
for x in d:
    assert 0 <= float(x["heap_shared_pct"]) <= 100, x
    assert float(x["rps"]) > 0 and float(x["rps_ratio_vs_inline"]) > 0, x
    assert float(x["overhead_bytes_per_object"]) >= 0, x
    assert float(x["side_copied_pages"]) <= float(x["side_pages"]), x
base = [x for x in d if x["design"] == "default"][0]
assert base["rps_ratio_vs_inline"] == "1", base["rps_ratio_vs_inline"]
assert float(base["gc_bytes_per_object"]) == 16, base["gc_bytes_per_object"]
EOF

# 3. the table on the terminal and in summary.txt
check "designs table printed and saved" \
    sh -c "grep -q '^Designs' '$tmp/stdout.txt' &&
           grep -q '^gc-side+rc-split ' '$out/summary.txt'"

# 4. the plot (or the note that says why not)
if command -v gnuplot >/dev/null 2>&1; then
    check "designs.png" sh -c '
        head -c 8 "$1/designs.png" | od -An -c | grep -q "P   N   G"' \
        sh "$out"
else
    check "no gnuplot: plots skipped with a note" \
        test -f "$out/PLOTS-SKIPPED.txt"
    skip test_designs_png "gnuplot is not installed (apt-get install gnuplot-nox)"
fi

# 5. the control: a design whose server fails fails the runner, and is
# named so in runs.csv, never averaged into designs.csv
cat > "$tmp/failing-cowlab" <<EOF
#!/bin/sh
case " \$* " in
*" --gc-layout bitmap "*) echo "test: this design fails" >&2; exit 3 ;;
esac
exec "$BIN" "\$@"
EOF
chmod +x "$tmp/failing-cowlab"
if timeout 120 "$PY" scripts/runner.py --designs --quick --attempts 1 \
        --policies default,gc-bitmap --bin "$tmp/failing-cowlab" \
        --out "$tmp/failing" --quiet --no-plots >"$tmp/failing.txt" 2>&1; then
    bad "a failing design makes the runner exit non-zero"
else
    check "a failing design makes the runner fail and stays out of designs.csv" \
        "$PY" - "$tmp/failing" <<'EOF'
import csv, os, sys
out = sys.argv[1]
runs = {r["policy"]: r for r in
        csv.DictReader(open(os.path.join(out, "runs.csv")))}
assert runs["default"]["status"].startswith("ok"), runs["default"]
# (a run whose load the kernel spread unevenly is "ok (unbalanced ...)")
assert runs["gc-bitmap"]["status"].startswith("failed"), runs["gc-bitmap"]
assert not os.path.exists(os.path.join(out, "designs.csv")) or all(
    r["design"] != "gc-bitmap" for r in
    csv.DictReader(open(os.path.join(out, "designs.csv"))))
EOF
fi

# 6. bad options fail clearly
check "unknown design is refused" sh -c "
    ! \"$PY\" scripts/runner.py --designs --policies gc-nope \
        --out '$tmp/x' 2> '$tmp/err.txt' &&
    grep -q 'unknown policy' '$tmp/err.txt'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
