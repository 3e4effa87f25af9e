#!/usr/bin/env bash
# bench_server.sh -- HTTP throughput of the prefork server, against nginx
# in the same run: rps_healthz and rps_webapp with 2 workers, and
# rps_ratio_vs_nginx (/healthz over nginx's `return 200` with 2 workers,
# same wrk settings).  Also heap_build_ms and fork_ms of the default
# workload.  Prints `name: value unit` lines.  Loopback only.
# As root on Debian (as scripts/experiment does; COWLAB_NO_INSTALL=1 not
# to) it installs what is missing: wrk, nginx-light.  Otherwise a figure it
# cannot measure is n/a, with a SKIP line (tests/skips.sh) and the apt-get
# line to run.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${COWLAB_BIN:-bin/cowlab}
SECS=${BENCH_SECONDS:-5}
WRK="wrk -t2 -c32 -d${SECS}s"
tmp=$(mktemp -d /tmp/cowlab-bench-XXXXXX)
cleanup() {
    [ -n "${srv:-}" ] && kill -9 "$srv" 2>/dev/null
    [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

skip() { tests/skips.sh add "$@"; }

# install PKG...: as root with apt-get, non-interactive; 1 if it cannot.
install() {
    [ "${COWLAB_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] \
        && command -v apt-get >/dev/null || return 1
    echo "bench_server: installing: $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null >&2 \
        && apt-get install -y -qq --no-install-recommends "$@" </dev/null >&2
}

command -v wrk >/dev/null || install wrk
if ! command -v wrk >/dev/null; then
    echo "rps_healthz: n/a (wrk not installed: apt-get install wrk)"
    skip bench_server "wrk is not installed (apt-get install wrk)"
    exit 0
fi
rps() { $WRK "$1" 2>/dev/null | awk '/Requests\/sec/ {print $2}'; }

"$BIN" --port 0 -w 2 --out "$tmp/out" >"$tmp/srv.out" 2>"$tmp/srv.err" &
srv=$!
for _ in $(seq 200); do grep -q listening "$tmp/srv.out" && break; sleep 0.05; done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/srv.out")
[ -n "$port" ] || { echo "bench_server: the server did not start"; cat "$tmp/srv.err"; exit 1; }
sleep 1
healthz=$(rps "http://127.0.0.1:$port/healthz")
webapp=$($WRK -s scripts/wrk_mix.lua "http://127.0.0.1:$port/" 2>/dev/null \
         | awk '/Requests\/sec/ {print $2}')
kill -TERM "$srv"; wait "$srv" 2>/dev/null; srv=
build=$(awk -F, 'NR==2 {print $6}' "$tmp/out/runs.csv")
fork=$(awk -F, 'NR==2 {print $7}' "$tmp/out/runs.csv")
echo "# bench_server: 2 workers, wrk -t2 -c32 -d${SECS}s, default workload (scale 1)"
echo "heap_build_ms: $build ms"
echo "fork_ms: $fork ms"
echo "rps_healthz: $healthz req/s"
echo "rps_webapp: ${webapp:-n/a} req/s"

find_nginx() {
    command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }
}
NGINX=$(find_nginx)
if [ -z "$NGINX" ] && install nginx-light; then
    NGINX=$(find_nginx)
fi
if [ -z "$NGINX" ]; then
    echo "rps_ratio_vs_nginx: n/a (nginx not installed: as root, apt-get install -y nginx-light; make bench as root installs it)"
    skip rps_ratio_vs_nginx "nginx is not installed (apt-get install nginx-light)"
    exit 0
fi
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/nginx"
cat > "$tmp/nginx.conf" <<CONF
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx/error.log;
daemon on;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx;
    scgi_temp_path $tmp/nginx;
    server {
        listen 127.0.0.1:$nport reuseport;
        location / { return 200 '{"status":"ok"}'; }
    }
}
CONF
if ! "$NGINX" -c "$tmp/nginx.conf" -p "$tmp" 2>"$tmp/nginx.err"; then
    echo "rps_ratio_vs_nginx: n/a (nginx did not start: $(head -1 "$tmp/nginx.err"))"
    skip rps_ratio_vs_nginx "nginx did not start: $(head -1 "$tmp/nginx.err")"
    exit 0
fi
sleep 0.5
nginx=$(rps "http://127.0.0.1:$nport/healthz")
echo "rps_nginx_return200: $nginx req/s"
python3 -c "print('rps_ratio_vs_nginx: %.2f' % ($healthz / $nginx))"
