#!/usr/bin/env bash
# CPU per proxied request, canaryd against nginx, side by side in one run.
#
# One nginx serves as the upstream (a fixed 200 answer). In front of it, on
# their own ports, an nginx reverse proxy (keepalive to the upstream, one
# worker) and canaryd (one upstream, the same weights; with CANARY=1 a stable
# and a canary upstream at 10:5, both that nginx, so that a third of the
# requests take the canary's path: X-Canary-Version and the journal, which
# JOURNAL=0 turns off for a side-by-side). wrk loads each in
# turn, ROUNDS times, and the CPU time each front proxy used (utime+stime
# from /proc) is divided by the requests it served. Prints the medians and
# the ratio canaryd/nginx. Needs nginx and wrk (apt-get install nginx-light wrk).
#
#   scripts/bench-vs-nginx.sh [bin/canaryd]      ROUNDS=5 DURATION=5 CONNS=16 CANARY=0 JOURNAL=1
set -euo pipefail
CANARYD=${1:-bin/canaryd}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-16}
CANARY=${CANARY:-0}
JOURNAL=${JOURNAL:-1}
command -v wrk >/dev/null || { echo "bench-vs-nginx: wrk not found (apt-get install wrk)" >&2; exit 1; }
command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
command -v nginx >/dev/null || { echo "bench-vs-nginx: nginx not found (apt-get install nginx-light)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "bench-vs-nginx: failed at line $LINENO" >&2' ERR

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
UP=$(free_port); NG=$(free_port); CD=$(free_port)
user=""; [ "$(id -u)" = 0 ] && user="user root root;"

nginx_conf() { # name, server block
	mkdir -p "$work/$1/logs"
	cat >"$work/$1/nginx.conf" <<CONF
$user
worker_processes 1;
daemon off;
error_log $work/$1/logs/error.log warn;
pid $work/$1/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/$1/body; proxy_temp_path $work/$1/proxy;
  fastcgi_temp_path $work/$1/fcgi; uwsgi_temp_path $work/$1/uwsgi; scgi_temp_path $work/$1/scgi;
  $2
}
CONF
}
nginx_conf upstream "server { listen 127.0.0.1:$UP; location / { return 200 \"pong\n\"; } }"
nginx_conf front "upstream app { server 127.0.0.1:$UP weight=10; keepalive 32; }
  server { listen 127.0.0.1:$NG; location / { proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection \"\"; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"

nginx -p "$work/upstream" -c "$work/upstream/nginx.conf" & pids+=($!)
nginx -p "$work/front" -c "$work/front/nginx.conf" & pids+=($!)

mkdir -p "$work/canaryd/conf"
cat >"$work/canaryd/conf/canaryd.toml" <<CONF
[proxy]
listen = "127.0.0.1:$CD"
[admin]
socket = "$work/canaryd/admin.sock"
listen = ""
[[upstream]]
name = "app"
url = "http://127.0.0.1:$UP"
weight = 10
role = "stable"
CONF
if [ "$CANARY" = 1 ]; then
	cat >>"$work/canaryd/conf/canaryd.toml" <<CONF
[[upstream]]
name = "app-v2"
url = "http://127.0.0.1:$UP"
weight = 5
role = "canary"
[canary]
version = "v2"
CONF
fi
if [ "$JOURNAL" = 0 ]; then
	printf '[journal]\nrecords = 0\n' >>"$work/canaryd/conf/canaryd.toml"
fi
"$CANARYD" -config-dir "$work/canaryd/conf" -state-dir "$work/canaryd/state" -gpio off 2>"$work/canaryd.log" & pids+=($!)
CANARYD_PID=$!

for port in $UP $NG $CD; do
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done

# The front nginx's worker does the proxying; its master only waits.
NGINX_PIDS=$( (pgrep -f "nginx: worker process" || true) | while read -r p; do
	if grep -qs "$work/front" /proc/"$(cut -d' ' -f4 /proc/$p/stat 2>/dev/null)"/cmdline; then echo "$p"; fi; done)
[ -n "$NGINX_PIDS" ] || { echo "bench-vs-nginx: front nginx worker not found" >&2; exit 1; }

cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
hz=$(getconf CLK_TCK)

run() { # port pids... -> prints microseconds of CPU per request and requests/s
	local port=$1; shift
	local before after out reqs
	before=$(cpu_ticks "$@")
	out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/")
	after=$(cpu_ticks "$@")
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	grep -q "Non-2xx\|Socket errors" <<<"$out" && echo "$out" >&2
	awk -v t=$((after - before)) -v hz="$hz" -v r="$reqs" -v d="$DURATION" \
		'BEGIN { printf "%.2f %.0f\n", t / hz * 1e6 / r, r / d }'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$work/nginx.us"; : >"$work/canaryd.us"
for r in $(seq "$ROUNDS"); do
	read -r ng ngr < <(run "$NG" $NGINX_PIDS)
	read -r cd cdr < <(run "$CD" "$CANARYD_PID")
	echo "round $r: nginx ${ng} us/req (${ngr} req/s)   canaryd ${cd} us/req (${cdr} req/s)"
	echo "$ng" >>"$work/nginx.us"; echo "$cd" >>"$work/canaryd.us"
done
ng=$(median <"$work/nginx.us"); cd=$(median <"$work/canaryd.us")
echo "canaryd: CANARY=$CANARY JOURNAL=$JOURNAL"
echo "median CPU per request: nginx ${ng} us, canaryd ${cd} us, ratio canaryd/nginx $(awk -v a="$cd" -v b="$ng" 'BEGIN{printf "%.2f", a/b}')"
