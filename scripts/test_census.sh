#!/usr/bin/env bash
# test_census.sh -- scripts/heap_census.py end to end: a quick census of a
# small module tree (tests/apps/censustiny.py: json and email, plus known
# objects from the environment) with its request profile, replayed by
# cowlab (the heap it builds has exactly the objects the workload's counts
# give, and it serves the route); two censuses that differ by exact counts
# (3000 lists of a float, 100 rings of 3 dicts), so that a census that
# miscounts fails; bad input refused with a message and exit status 2; the
# Django app (tests/apps/censusapp) and sympy, when Debian's python3 has
# them (else skipped, and said).  Needs the cowlab binary (COWLAB_BIN).
# Last line: "N passed, N failed".  Exit status 0 only if all passed.
set -u
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
APPPY=/usr/bin/python3
BIN=$(realpath "${COWLAB_BIN:-bin/cowlab}" 2>/dev/null || echo bin/cowlab)
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
skip() { tests/skips.sh add "$@"; }

tmp=$(mktemp -d /tmp/cowlab-test-census.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$BIN" ]; then
    echo "test_census: $BIN is missing: run make first"
    echo "0 passed, 1 failed"
    exit 1
fi

census() {              # census PYTHON OUT ARGS...: heap_census.py, quiet
    local py=$1 out=$2
    shift 2
    "$py" scripts/heap_census.py --out "$out.json" --report "$out.rep.json" \
        "$@" >"$out.log" 2>&1
}

# The objects cowlab must build for a workload with only "objects": the
# webapp's fixed 99 and its one pool identifier (both times the scale's
# rounding at scale 1: 1), then workload.h's formula (objects.c's
# wl__objects_count): a class 9 objects, a code entry 5; the instances
# of 32 attributes or more (size buckets 6 and up, shared by weight) a
# dict each; a __slots__ class per slots size bucket used (8 + n, n the
# bucket's middle value) and the largest n names; "x" if there is code.
expected_objects() {
    "$PY" - "$1" <<'PYEOF'
import json, sys
o = json.load(open(sys.argv[1]))["objects"]
types = {k: n for k, n in o.get("types", {}).items() if n > 0}
sizes = o.get("sizes", {})
per = {"class": 9, "code": 5}
def shares(w, total):
    s = 0.0
    for x in w:
        s += x
    last = max([k for k, x in enumerate(w) if x > 0], default=0)
    out, given = [0] * 21, 0
    for k in range(last if s > 0 else 0):
        out[k] = min(int(total * w[k] / s + 0.5), total - given)
        given += out[k]
    out[last] = total - given
    return out
n = 99 + 1 + 4 * o.get("modules", 10) + 9 + 2
n += sum(c * per.get(k, 1) for k, c in types.items())
n += sum(shares(sizes.get("instance", [0, 0, 1, 2, 1]),
                types.get("instance", 0))[6:])
if types.get("slots", 0):
    w = sizes.get("slots", [0, 1, 2, 1])
    used = [k for k, x in enumerate(w) if x > 0] or [0]
    names = [min((3 * 2 ** (k - 1) - 1) // 2 if k else 0, 1024)
             for k in used]
    n += sum(8 + m for m in names) + max(names)
n += 1 if types.get("code", 0) else 0
print(n)
PYEOF
}

# serve WORKLOAD: start cowlab on it in the background (pid in $pid,
# port in $port, empty if it did not listen); objects built in $got.
serve() {
    timeout 120 "$BIN" --workload "$1" --port 0 -w 1 --duration 60 \
        --exit skip >"$tmp/srv.out" 2>"$tmp/srv.err" &
    pid=$!
    port=
    for i in $(seq 1 300); do
        port=$(sed -n 's/^listening http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' \
               "$tmp/srv.out")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    got=$(sed -n 's/.*heap built: \([0-9]*\) objects.*/\1/p' "$tmp/srv.err")
}

# "heap built" counts the runtime's own objects too (singletons, small
# ints, the module and interned tables): measured once, on a workload of
# one module and nothing else (115 objects by workload.h's formula).
echo '{"objects": {"modules": 1}, "routes": [{"path": "/"}]}' \
    >"$tmp/empty.json"
serve "$tmp/empty.json"
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -z "$got" ]; then
    bad "cowlab builds the one-module workload"
    sed 's/^/     /' "$tmp/srv.err" | head -5
    base=0
else
    base=$((got - 115))
fi

# replay NAME WORKLOAD: cowlab builds exactly the expected objects and
# serves 20 requests on "/" with status 200.
replay() {
    local name=$1 wl=$2 want codes
    want=$(( $(expected_objects "$wl") + base ))
    serve "$wl"
    if [ -n "$got" ] && [ "$got" = "$want" ]; then
        ok "$name: cowlab loads it and builds exactly $want objects" \
            "($base of them the runtime's own)"
    else
        bad "$name: cowlab builds ${got:-nothing}, expected $want objects"
        sed 's/^/     /' "$tmp/srv.err" | head -5
    fi
    if [ -n "$port" ]; then
        codes=$("$PY" - "$port" <<'PYEOF'
import sys, urllib.request
codes = set()
for _ in range(20):
    with urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1],
                                timeout=30) as r:
        r.read()
        codes.add(r.status)
print(" ".join(str(c) for c in sorted(codes)))
PYEOF
)
        if [ "$codes" = "200" ]; then
            ok "$name: 20 requests on / answered 200"
        else
            bad "$name: requests on / answered '${codes}'"
        fi
    else
        bad "$name: cowlab did not listen"
    fi
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# ---- a quick census and its replay ----------------------------------------
if census "$PY" "$tmp/tiny" --path tests/apps --import censustiny \
        --request censustiny:request --requests 20; then
    ok "census of censustiny with a request profile exits 0"
    replay censustiny "$tmp/tiny.json"
else
    bad "census of censustiny exits 0"
    sed 's/^/     /' "$tmp/tiny.log" | tail -5
fi

# ---- exact differences -----------------------------------------------------
# Both without a request profile: its figures are objects of the census's
# own process while it scans.
if CENSUSTINY_LISTS=0 CENSUSTINY_RINGS=0 census "$PY" "$tmp/tiny0" \
        --path tests/apps --import censustiny \
    && CENSUSTINY_LISTS=3000 CENSUSTINY_RINGS=100 census "$PY" "$tmp/tiny1" \
        --path tests/apps --import censustiny; then
    diff=$("$PY" - "$tmp/tiny0.json" "$tmp/tiny1.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p))["objects"] for p in sys.argv[1:])
d = {k: b["types"][k] - a["types"][k] for k in ("list", "float", "dict")}
ring = b["cycle_size"][2] - a["cycle_size"][2]      # members in 2..3
print("lists %+d floats %+d dicts %+d ring-members %+d"
      % (d["list"], d["float"], d["dict"], ring))
PYEOF
)
    if [ "$diff" = "lists +3000 floats +3000 dicts +300 ring-members +300" ]
    then
        ok "3000 lists of a float and 100 rings of 3 dicts counted exactly"
    else
        bad "counted differences: $diff"
    fi
else
    bad "censuses of censustiny without and with 3000 lists exit 0"
fi

# ---- bad input -------------------------------------------------------------
refused() {             # refused NAME MESSAGE ARGS...
    local name=$1 msg=$2 rc
    shift 2
    "$PY" scripts/heap_census.py "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"
    rc=$?
    if [ "$rc" = 2 ] && grep -qF -- "$msg" "$tmp/bad.err"; then
        ok "$name: exit 2, '$msg'"
    else
        bad "$name: exit $rc, stderr: $(head -c 300 "$tmp/bad.err")"
    fi
}
refused "unknown module" \
    "heap_census: --import no_such_module_x: ModuleNotFoundError" \
    --import no_such_module_x --out "$tmp/x.json"
refused "request without a colon" "--request: expected MOD:FUNC" \
    --import json --request json.dumps --out "$tmp/x.json"
refused "request not found" \
    "heap_census: --request json:no_such_fn: AttributeError" \
    --import json --request json:no_such_fn --out "$tmp/x.json"
refused "failing request" \
    "--request failed in the profile child: ZeroDivisionError" \
    --import json --setup 'import json; json.boom = lambda: 1 / 0' \
    --request json:boom --out "$tmp/x.json"
refused "no --out" "the following arguments are required: --out" \
    --import json
if "$PY" scripts/heap_census.py --help | grep -q -- "--request MOD:FUNC"
then
    ok "--help"
else
    bad "--help"
fi

# ---- real apps -------------------------------------------------------------
if "$APPPY" -c 'import django' >/dev/null 2>&1; then
    if census "$APPPY" "$tmp/django" --path tests/apps \
            --import censusapp.driver --request censusapp.driver:request_a \
            --requests 50; then
        ok "census of the Django app (tests/apps/censusapp) exits 0"
        replay django "$tmp/django.json"
    else
        bad "census of the Django app exits 0"
        sed 's/^/     /' "$tmp/django.log" | tail -5
    fi
else
    skip test_census_django "$APPPY cannot import django" \
        "(apt-get install python3-django)"
fi
if "$APPPY" -c 'import sympy' >/dev/null 2>&1; then
    if census "$APPPY" "$tmp/sympy" --import sympy; then
        ok "census of sympy exits 0"
        replay sympy "$tmp/sympy.json"
    else
        bad "census of sympy exits 0"
        sed 's/^/     /' "$tmp/sympy.log" | tail -5
    fi
else
    skip test_census_sympy "$APPPY cannot import sympy" \
        "(apt-get install python3-sympy)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
