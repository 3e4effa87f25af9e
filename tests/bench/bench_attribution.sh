#!/usr/bin/env bash
# bench_attribution.sh -- what exact copy attribution costs: the server's
# throughput with write sets (every request and collection attributed,
# the defaults: one sampled request per 10 s) against no attribution, in
# the same run, and the old exact method (pagemap reads around every
# collection) beside them.  Each round starts a fresh server per method
# (2 workers, the default heap), so the copying a young worker does is in
# every figure, and sends the same wrk load; the methods alternate, and
# each figure is the median over the rounds.  Also the workers' CPU time
# per request, which other jobs on the machine disturb less than
# throughput.  Prints `name: value unit` lines; loopback only.
# BENCH_ROUNDS (3), BENCH_SECONDS of load per run (8: a young worker copies
# most of the heap in its first seconds, so that part weighs in).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${COWLAB_BIN:-bin/cowlab}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-8}
W=2
tmp=$(mktemp -d /tmp/cowlab-bench-attr-XXXXXX)
srv=
cleanup() {
    [ -n "$srv" ] && kill -9 "$srv" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
    echo "attribution_overhead_pct: n/a (wrk not installed: apt-get install wrk)"
    tests/skips.sh add bench_attribution "wrk is not installed (apt-get install wrk)"
    exit 0
fi

# run NAME ROUND ARGS...: one fresh server, SECS of load; appends
# "name rps cpu_ms_per_request wset_ms_per_request" to $tmp/results
run() {
    local name=$1 out=$tmp/$1.$2
    shift 2
    "$BIN" --port 0 -w $W -q --out "$out" --exit skip "$@" \
        >"$out.stdout" 2>"$out.stderr" &
    srv=$!
    for _ in $(seq 1200); do
        grep -q listening "$out.stdout" 2>/dev/null && break
        sleep 0.05
    done
    local port
    port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out.stdout")
    if [ -z "$port" ]; then
        echo "bench_attribution: the server did not start:" >&2
        cat "$out.stderr" >&2
        exit 1
    fi
    # every worker serving: the master samples only those
    for _ in $(seq 600); do
        [ "$(tail -n +2 "$out/samples.csv" 2>/dev/null | cut -d, -f3 \
             | sort -u | wc -l)" -ge $W ] && break
        sleep 0.05
    done
    wrk -t1 -c$((4 * W)) -d${SECS}s -s scripts/wrk_mix.lua \
        "http://127.0.0.1:$port/" 2>/dev/null \
        | sed -n 's/^WRK_RESULT //p' > "$out.wrk"
    local cpu=0 t
    for p in $(pgrep -P "$srv"); do
        t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        cpu=$((cpu + t))
    done
    kill -TERM "$srv"
    wait "$srv" 2>/dev/null
    srv=
    python3 - "$name" "$out" "$cpu" "$(getconf CLK_TCK)" >> "$tmp/results" <<'EOF'
import csv, json, sys
name, out, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = json.loads(open(out + ".wrk").read())
last = {}
for s in csv.DictReader(open(out + "/samples.csv")):
    last[s["worker"]] = s
reqs = sum(int(s["requests"]) for s in last.values())
wset = sum(float(s.get("wset_ms") or 0) for s in last.values())
print(name, r["rps"], ticks * 1000.0 / hz / max(reqs, 1), wset / max(reqs, 1))
EOF
}

for i in $(seq "$ROUNDS"); do
    # alternate the order: no method always runs on a warmer machine
    if [ $((i % 2)) -eq 1 ]; then
        run off "$i" --attribution off
        run wset "$i" --attribution write-sets
        run pagemap "$i" --attribution pagemap --pagemap-gc-fraction 1
    else
        run pagemap "$i" --attribution pagemap --pagemap-gc-fraction 1
        run wset "$i" --attribution write-sets
        run off "$i" --attribution off
    fi
done

python3 - "$tmp/results" "$ROUNDS" "$W" "$SECS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for r in rows:
    print("# run %s: %.0f req/s, %.3f ms CPU per request, %.3f ms in write "
          "sets per request" % (r[0], float(r[1]), float(r[2]), float(r[3])))
def med(name, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name)
rps = {n: med(n, 1) for n in ("off", "wset", "pagemap")}
cpu = {n: med(n, 2) for n in ("off", "wset", "pagemap")}
print("# bench_attribution: %s rounds, %s workers, %s s of wrk per run, "
      "default workload (scale 1), a fresh server per run; medians"
      % tuple(sys.argv[2:5]))
print("attribution_overhead_pct: %.1f %% (write sets against none, "
      "throughput)" % (100 * (1 - rps["wset"] / rps["off"])))
print("attribution_overhead_cpu_pct: %.1f %% (the workers' CPU time per "
      "request)" % (100 * (cpu["wset"] / cpu["off"] - 1)))
print("attribution_pagemap_overhead_pct: %.1f %% (pagemap reads around "
      "every collection, the old exact method)"
      % (100 * (1 - rps["pagemap"] / rps["off"])))
print("attribution_rps_none: %.0f req/s" % rps["off"])
print("attribution_rps_write_sets: %.0f req/s" % rps["wset"])
print("attribution_rps_pagemap: %.0f req/s" % rps["pagemap"])
print("attribution_cpu_ms_per_request_none: %.3f ms" % cpu["off"])
print("attribution_cpu_ms_per_request_write_sets: %.3f ms" % cpu["wset"])
print("attribution_wset_ms_per_request: %.3f ms (scans and sampling, "
      "wall time in the worker)" % med("wset", 3))
# The same runs' direct measure, which other jobs disturb less than
# throughput: the workers' time in write sets over their CPU time.
print("attribution_wset_share_pct: %.1f %% (time in write sets / the "
      "workers' CPU time, write-set runs)" % statistics.median(
          100 * float(r[3]) / float(r[2]) for r in rows if r[0] == "wset"))
EOF
