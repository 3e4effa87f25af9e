#!/usr/bin/env bash
# chaos.sh -- faults under load: SIGKILL a random worker every 0.5 s while
# wrk drives 4 workers, then SIGHUP-reload under load.  Loopback only.
#
#   scripts/chaos.sh [SECONDS]        (default 60; `make test` runs 5)
#
# Phase 1 (SECONDS): cowlab -w 4 --out DIR; wrk -t2 -c32 on "/"; every
# 0.5 s one live worker (never the same pid twice, never a zombie) gets
# SIGKILL.  Then SIGTERM.  Checks:
#   - the master survives every kill and exits 0 on SIGTERM;
#   - every killed worker was respawned: runs.csv "respawns" == kills,
#     and 4 workers are alive at the end;
#   - samples.csv and runs.csv stay parseable: every row has the header's
#     field count and ends in a newline (no torn rows);
#   - no non-2xx responses, and failed requests (wrk socket errors) are
#     at most the connections that can be in flight on the killed
#     workers (kills x connections / workers x 2, a loose bound: wrk has
#     one request in flight per connection).
# Phase 2 (max(5, SECONDS / 4) s): a fresh cowlab -w 4; wrk as above;
# a SIGHUP, then the next once all workers are new (and 0.5 s of load).
# Checks: every reload replaced all workers, and zero failed requests
# (socket errors + non-2xx).
#
# Prints each check as "ok - ..." / "not ok - ...", the figures, and a
# last line "N passed, N failed"; exits 1 if any check failed.
# Environment: COWLAB_BIN (default bin/cowlab), CHAOS_KEEP=1 keeps the
# output folder, CHAOS_SCALE (default 0.05), CHAOS_CONNECTIONS (32).
set -uo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-60}
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 1 ] && [ "$DURATION" -le 3600 ] \
    || { echo "usage: $0 [SECONDS 1..3600]" >&2; exit 2; }
BIN=${COWLAB_BIN:-bin/cowlab}
SCALE=${CHAOS_SCALE:-0.05}
CONNS=${CHAOS_CONNECTIONS:-32}
WORKERS=4
command -v wrk >/dev/null || { echo "chaos: wrk not found" >&2; exit 2; }
[ -x "$BIN" ] || { echo "chaos: $BIN not found (make all)" >&2; exit 2; }

OUT=$(mktemp -d /tmp/cowlab-chaos-XXXXXX)
PASS=0
FAIL=0
MASTER=""

cleanup() {
    # the server runs in its own process group (setsid): kill the group
    if [ -n "$MASTER" ] && kill -0 "$MASTER" 2>/dev/null; then
        kill -KILL -- "-$MASTER" 2>/dev/null
    fi
    [ "${CHAOS_KEEP:-0}" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() {                       # check NAME CONDITION-STATUS [DETAIL]
    if [ "$2" -eq 0 ]; then
        echo "ok - $1${3:+ ($3)}"
        PASS=$((PASS + 1))
    else
        echo "not ok - $1${3:+ ($3)}"
        FAIL=$((FAIL + 1))
    fi
}

# start_server NAME ARGS...: sets MASTER and PORT
start_server() {
    local name=$1 i
    shift
    setsid "$BIN" --port 0 -w "$WORKERS" --scale "$SCALE" "$@" \
        >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
    MASTER=$!
    PORT=""
    for i in $(seq 1 200); do
        PORT=$(sed -n 's|^listening http://127\.0\.0\.1:\([0-9]*\)$|\1|p' \
               "$OUT/$name.stdout" 2>/dev/null)
        [ -n "$PORT" ] && break
        kill -0 "$MASTER" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$PORT" ] || { echo "chaos: $name: server did not start:" >&2
                        cat "$OUT/$name.stderr" >&2; exit 1; }
    for i in $(seq 1 200); do
        [ "$(workers | wc -w)" -eq "$WORKERS" ] && break
        sleep 0.05
    done
}

workers() {                     # live (non-zombie) children of the master
    local p
    for p in $(cat "/proc/$MASTER/task/$MASTER/children" 2>/dev/null); do
        [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && echo "$p"
    done
}

# stop_server: SIGTERM, wait (bounded, 30 s); sets STATUS (not in a
# subshell: only this shell can wait for the master)
stop_server() {
    local i
    kill -TERM "$MASTER" 2>/dev/null
    for i in $(seq 1 600); do
        [ "$(awk '{print $3}' "/proc/$MASTER/stat" 2>/dev/null)" = Z ] && break
        kill -0 "$MASTER" 2>/dev/null || break
        sleep 0.05
    done
    if [ "$(awk '{print $3}' "/proc/$MASTER/stat" 2>/dev/null)" != Z ] \
       && kill -0 "$MASTER" 2>/dev/null; then
        kill -KILL -- "-$MASTER" 2>/dev/null
    fi
    wait "$MASTER"
    STATUS=$?
    MASTER=""
}

# wrk figures from its summary: socket errors (connect + read + write +
# timeout), non-2xx responses, requests completed
wrk_errors() {
    awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10; f = 1 }
         END { if (!f) print 0 }' "$1"
}
wrk_non2xx() {
    awk '/Non-2xx or 3xx responses:/ { print $5; f = 1 } END { if (!f) print 0 }' "$1"
}
wrk_requests() {
    awk '/requests in/ { print $1 }' "$1"
}

# csv_ok FILE: every row has the header's field count and ends in \n
csv_ok() {
    local f=$1
    [ -s "$f" ] || return 1
    [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ] || return 1
    awk -F, 'NR == 1 { n = NF; next } NF != n { bad++ }
             END { exit (NR < 2 || bad > 0) }' "$f"
}
csv_rows() { awk 'END { print NR - 1 }' "$1"; }
csv_torn() { awk -F, 'NR == 1 { n = NF; next } NF != n { bad++ } END { print bad + 0 }' "$1"; }

csv_col() {                     # csv_col FILE COLUMN: value in the last row
    awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
                         { v = $c } END { print v }' "$1"
}

echo "chaos: $DURATION s, $WORKERS workers, $CONNS connections, output $OUT"

# ---- phase 1: SIGKILL a random worker every 0.5 s under load -------------
start_server chaos --out "$OUT/run" --run-id chaos --sample-ms 100 --timeout 30
wrk -t 2 -c "$CONNS" -d "${DURATION}s" --timeout 5s "http://127.0.0.1:$PORT/" \
    >"$OUT/wrk-chaos.txt" 2>&1 &
WRK=$!
declare -A KILLED=()
KILLS=0
MASTER_DIED=0
END=$((SECONDS + DURATION))
sleep 0.5
while [ "$SECONDS" -lt "$END" ] && kill -0 "$WRK" 2>/dev/null; do
    if ! kill -0 "$MASTER" 2>/dev/null; then
        MASTER_DIED=1
        break
    fi
    mapfile -t live < <(workers)
    if [ "${#live[@]}" -gt 0 ]; then
        victim=${live[$((RANDOM % ${#live[@]}))]}
        if [ -z "${KILLED[$victim]:-}" ] && kill -KILL "$victim" 2>/dev/null; then
            KILLED[$victim]=1
            KILLS=$((KILLS + 1))
        fi
    fi
    sleep 0.5
done
wait "$WRK"
for i in $(seq 1 100); do       # let the last respawn happen (5 s at most)
    [ "$(workers | wc -w)" -eq "$WORKERS" ] && break
    sleep 0.05
done
kill -0 "$MASTER" 2>/dev/null || MASTER_DIED=1
check "master alive through $KILLS kills" "$MASTER_DIED"
ALIVE=$(workers | wc -w)
[ "$ALIVE" -eq "$WORKERS" ]; check "$WORKERS workers alive at the end" $? "$ALIVE"
stop_server
[ "$STATUS" -eq 0 ]; check "master exits 0 on SIGTERM" $? "status $STATUS"

RESPAWNS=$(csv_col "$OUT/run/runs.csv" respawns 2>/dev/null)
RESPAWNS=${RESPAWNS:-missing}
[ "$RESPAWNS" = "$KILLS" ]; check "every killed worker respawned" $? \
    "respawns $RESPAWNS, kills $KILLS"
ROWS=$(csv_rows "$OUT/run/samples.csv" 2>/dev/null)
TORN=$(csv_torn "$OUT/run/samples.csv" 2>/dev/null)
csv_ok "$OUT/run/samples.csv"; check "samples.csv parseable, no torn rows" $? \
    "${ROWS:-0} rows, ${TORN:-?} torn"
csv_ok "$OUT/run/runs.csv"; check "runs.csv parseable" $?

REQS=$(wrk_requests "$OUT/wrk-chaos.txt")
ERRS=$(wrk_errors "$OUT/wrk-chaos.txt")
NON2XX=$(wrk_non2xx "$OUT/wrk-chaos.txt")
BOUND=$((KILLS * CONNS * 2 / WORKERS))
[ -n "$REQS" ] && [ "$REQS" -gt 0 ]; check "wrk completed requests" $? "${REQS:-none}"
[ "$NON2XX" -eq 0 ]; check "no non-2xx responses" $? "$NON2XX"
[ "$ERRS" -le "$BOUND" ]; check "failed requests only those in flight on killed workers" $? \
    "$ERRS socket errors <= $BOUND"
grep -E "Socket errors|requests in|Requests/sec" "$OUT/wrk-chaos.txt" | sed 's/^/    wrk: /'

# ---- phase 2: SIGHUP reload under load, zero failed requests -------------
RDUR=$((DURATION / 4))
[ "$RDUR" -lt 5 ] && RDUR=5
start_server reload --sample-ms 100
wrk -t 2 -c "$CONNS" -d "${RDUR}s" --timeout 5s "http://127.0.0.1:$PORT/" \
    >"$OUT/wrk-reload.txt" 2>&1 &
WRK=$!
RELOADS=0
REPLACED=0
END=$((SECONDS + RDUR - 1))
sleep 1
while [ "$SECONDS" -lt "$END" ] && kill -0 "$WRK" 2>/dev/null; do
    before=" $(workers | tr '\n' ' ')"
    kill -HUP "$MASTER" 2>/dev/null && RELOADS=$((RELOADS + 1))
    # replaced: WORKERS children, none of them from before (old ones
    # drain first: up to 1 s idle, then their last responses); 5 s at most
    for i in $(seq 1 100); do
        sleep 0.05
        after=" $(workers | tr '\n' ' ')"
        same=0
        for p in $after; do
            case "$before" in *" $p "*) same=1 ;; esac
        done
        if [ "$same" -eq 0 ] && [ "$(echo $after | wc -w)" -eq "$WORKERS" ]; then
            REPLACED=$((REPLACED + 1))
            break
        fi
    done
    sleep 0.5                   # load on the new workers between reloads
done
wait "$WRK"
stop_server
[ "$RELOADS" -gt 0 ] && [ "$REPLACED" -eq "$RELOADS" ]
check "every SIGHUP replaced all $WORKERS workers" $? "$REPLACED of $RELOADS reloads"
RREQS=$(wrk_requests "$OUT/wrk-reload.txt")
RERRS=$(wrk_errors "$OUT/wrk-reload.txt")
RNON2XX=$(wrk_non2xx "$OUT/wrk-reload.txt")
[ $((RERRS + RNON2XX)) -eq 0 ]; check "zero failed requests across reloads" $? \
    "${RREQS:-0} requests, $RERRS socket errors, $RNON2XX non-2xx"
[ "$STATUS" -eq 0 ]; check "master exits 0 after the reloads" $? "status $STATUS"

echo "chaos figures: duration ${DURATION}s kills $KILLS respawns $RESPAWNS" \
     "requests ${REQS:-0} socket_errors $ERRS non2xx $NON2XX" \
     "rows ${ROWS:-0} torn_rows ${TORN:-?}" \
     "| reload ${RDUR}s reloads $RELOADS requests ${RREQS:-0}" \
     "failed $((RERRS + RNON2XX))"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
