#!/usr/bin/env bash
# test_fleet.sh -- the fleet experiment end to end in --quick mode (seconds):
# every strategy runs under the paced load, fleet.csv has the documented
# columns and a row per slice, the summary names each strategy and the
# targets, the strategies do what they say (max-requests respawns, refork
# makes molds, ksm reports ksmd's CPU), and the plot is drawn.  KSM needs
# root and a kernel with KSM: without them its strategies are skipped with
# a SKIP line (tests/skips.sh).  Needs python3 and wrk (else skipped too).
# Last line: "N passed, N failed".
# Usage: [COWLAB_BIN=build/release/cowlab] scripts/test_fleet.sh [KEEP_DIR]
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
skip() { tests/skips.sh add "$@"; }

if [ $# -ge 1 ]; then
    tmp=$1
    mkdir -p "$tmp"
else
    tmp=$(mktemp -d /tmp/cowlab-test-fleet.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
fi
out=$tmp/fleet

if [ ! -x "$BIN" ]; then
    echo "test_fleet: $BIN is missing: run make first"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! command -v "$PY" >/dev/null 2>&1; then
    skip test_fleet "$PY is not installed (apt-get install python3)"
    exit 0
fi
if ! command -v wrk >/dev/null 2>&1; then
    skip test_fleet "wrk is not installed (apt-get install wrk)"
    exit 0
fi

t0=$(date +%s)
if timeout 300 "$PY" scripts/fleet.py --quick --bin "$BIN" --out "$out" \
        >"$tmp/stdout.txt" 2>"$tmp/stderr.txt"; then
    ok "fleet --quick exits 0 ($(( $(date +%s) - t0 )) s)"
else
    bad "fleet --quick exits 0"
    tail -20 "$tmp/stderr.txt" | sed 's/^/     /'
fi
# what ran: every strategy, less the KSM ones this machine cannot run
ran="none max-requests reload-on-rss max-copied-pct refork"
if grep -q '^SKIP fleet_ksm' "$tmp/stderr.txt"; then
    echo "     (KSM strategies skipped: $(grep -m1 '^SKIP fleet_ksm' \
        "$tmp/stderr.txt" | sed 's/^SKIP fleet_ksm: //'))"
else
    ran="$ran ksm ksm+freeze"
fi

check "fleet.csv: the issue's columns, a row per slice per strategy" \
    "$PY" - "$out" "$ran" <<'EOF'
import csv, os, sys
out, ran = sys.argv[1], sys.argv[2].split()
rows = list(csv.DictReader(open(os.path.join(out, "fleet.csv"))))
with open(os.path.join(out, "fleet.csv")) as f:
    head = f.readline().strip().split(",")
want = ("strategy t_s total_pss_kb rps p99_ms respawns refork_generation "
        "ksmd_cpu_s").split()
assert head[:len(want)] == want, head
by = {}
for r in rows:
    by.setdefault(r["strategy"], []).append(r)
assert sorted(by) == sorted(ran), (sorted(by), ran)
for s, rs in by.items():
    assert len(rs) >= 2, (s, len(rs))
    for r in rs:
        assert float(r["total_pss_kb"]) > 0, r
        assert float(r["rps"]) > 0 and float(r["p99_ms"]) > 0, r
        assert int(r["errors"]) == 0, r
    ts = [float(r["t_s"]) for r in rs]
    assert ts == sorted(ts), ts
last = {s: rs[-1] for s, rs in by.items()}
assert int(last["max-requests"]["respawns"]) >= 1, last["max-requests"]
assert int(last["refork"]["refork_generation"]) >= 1, last["refork"]
assert int(last["none"]["respawns"]) == 0, last["none"]
for s in ("ksm", "ksm+freeze"):
    if s in last:
        assert float(last[s]["ksmd_cpu_s"]) >= 0, last[s]
for s in ran:
    if not s.startswith("ksm"):
        assert last[s]["ksmd_cpu_s"] == "", last[s]
EOF

check "summary: a line per strategy, the costs, the targets" \
    "$PY" - "$out" "$ran" <<'EOF'
import csv, os, sys
out, ran = sys.argv[1], sys.argv[2].split()
s = {r["strategy"]: r for r in csv.DictReader(
    open(os.path.join(out, "summary.csv")))}
for name in ran:
    r = s[name]
    assert float(r["total_pss_mib"]) > 0, r
    assert float(r["rps"]) > 0 and r["cpu_ms_per_request"] != "", r
assert float(s["none"]["vs_none_pct"]) == 0
text = open(os.path.join(out, "summary.txt")).read()
for name in ran:
    assert "\n" + name + " " in text, name
assert "Best strategy by total PSS" in text, text
assert ("KSM (default policy)" in text) == ("ksm" in ran), text
EOF

if command -v gnuplot >/dev/null 2>&1; then
    check "the plot of total PSS over time" sh -c '
        for p in fleet_total_pss fleet_load; do
            head -c 8 "$1/$p.png" | od -An -c | grep -q "P   N   G" \
                || { echo "not a PNG: $1/$p.png"; exit 1; }
        done' sh "$out"
else
    skip test_fleet_png "gnuplot is not installed (apt-get install gnuplot-nox)"
fi

check "--merge rebuilds the same fleet.csv" sh -c "
    cp '$out/fleet.csv' '$tmp/before.csv' &&
    \"$PY\" scripts/fleet.py --merge '$out' --no-plots > /dev/null &&
    cmp '$out/fleet.csv' '$tmp/before.csv'"

check "unknown strategy is refused" sh -c "
    ! \"$PY\" scripts/fleet.py --strategies none,nope --out '$tmp/x' \
        2> '$tmp/err.txt' && grep -q 'unknown strategy' '$tmp/err.txt'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
