#!/bin/bash
# The identical-page study (README "Fleet"): default policy, webapp-stateful,
# 4 workers; LOAD_S seconds of paced load at RATE req/s, then IDLE_S seconds
# idle; heap_identical_pages every round, diffs.csv and types.csv at the end.
# Run from the checkout's root after make.
# Usage: identical.sh OUT [more server flags]
set -eu
out=$1; shift
rate=${RATE:-100} load_s=${LOAD_S:-30} idle_s=${IDLE_S:-15}
mkdir -p "$out"
bin/cowlab --port 0 --workers 4 --workload webapp-stateful --out "$out" \
    --run-id identical --policy-name default --sample-ms 1000 \
    --sample-budget 5 --identical-pages --identical-diff --type-census \
    "$@" > "$out/server.out" 2> "$out/server.log" &
srv=$!
port=
for _ in $(seq 600); do
    port=$(sed -n 's#^listening http://.*:\([0-9]*\)$#\1#p' "$out/server.out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "identical.sh: the server did not listen" >&2; kill $srv; exit 1; }
sleep 3
echo "load $(awk '{print $1}' /proc/uptime) s since boot, $rate req/s for $load_s s" > "$out/phases.txt"
wrk -t 1 -c 16 -d "${load_s}s" --timeout 10s -s scripts/wrk_rate.lua \
    "http://127.0.0.1:$port" -- "$rate" /,/api/items,/api/user,/static 1 \
    > "$out/wrk.txt" 2>&1
echo "idle $(awk '{print $1}' /proc/uptime) s since boot, $idle_s s" >> "$out/phases.txt"
sleep "$idle_s"
echo "stop $(awk '{print $1}' /proc/uptime) s since boot" >> "$out/phases.txt"
kill -TERM $srv
wait $srv
