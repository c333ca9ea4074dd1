#!/usr/bin/env bash
# canaryd against nginx, side by side (make bench-nginx).
#
# Two backend nginx servers answer a tiny 200. In front of them, on their own
# ports, an nginx reverse proxy (upstream app { A weight=10; B weight=5;
# keepalive 32; }) and canaryd with the same split as a stable and a canary
# upstream, and with everything on that a user would turn on: request ids, the
# canary windows and verdict, the canary journal, a sticky header
# (X-User-ID, 1000 users in the load), and /metrics scraped once a second
# while canaryd is loaded.
#
# Each configuration runs ROUNDS alternating rounds of wrk (CONNS connections,
# DURATION seconds) against each proxy, nginx first in odd rounds, canaryd
# first in even ones, and divides the CPU time the proxy process used
# (utime+stime from /proc/PID/stat, all nginx workers together) by the
# requests it served. Then an open loop (vegeta as a go tool) offers 50% and
# 80% (OPEN_SHARES) of nginx's measured maximum for RATE_SECONDS each to
# both, for the p50/p99/p999 latency that a closed loop at saturation hides.
#
#   one-core     nginx worker_processes 1 and canaryd GOMAXPROCS=1, both pinned
#                to CPU 1; wrk, vegeta and the backends on CPU 0
#   as-shipped   nginx worker_processes auto; canaryd with the Environment= and
#                CPUAffinity= of systemd/canaryd.service (none today: Go's
#                defaults); nothing pinned
#
# Needs nginx, wrk, taskset and curl: as root it apt-get installs what is
# missing (nginx-light wrk util-linux curl). Stops every process it started
# and removes its temp dir on exit, Ctrl-C or failure.
#
#   scripts/bench-nginx.sh    ROUNDS=5 DURATION=5 CONNS=32 RATE_SECONDS=5
#                             OPEN_SHARES="50 80" CONFIGS="one-core as-shipped"
#                             CANARYD=bin/canaryd (else it runs make build)
#
# vegeta runs CONNS workers, at most 4 x CONNS: past that it falls behind the
# offered rate rather than open thousands of connections, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
RATE_SECONDS=${RATE_SECONDS:-5}
OPEN_SHARES=${OPEN_SHARES:-50 80}
CONFIGS=${CONFIGS:-one-core as-shipped}
CANARYD=${CANARYD:-}
UNIT=systemd/canaryd.service

die() { echo "bench-nginx: $*" >&2; exit 1; }
for c in $CONFIGS; do
	case $c in one-core | as-shipped) ;; *) die "CONFIGS: unknown configuration \"$c\" (want one-core, as-shipped)" ;; esac
done

command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
		die "needs ${need[*]}: apt-get install ${need[*]} (as root), then run it again"
	echo "bench-nginx: installing ${need[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v python3 >/dev/null || die "needs python3 (to find free ports)"
go tool vegeta -version >/dev/null || die "go tool vegeta does not build (go.mod's tool line)"
if [ -z "$CANARYD" ]; then
	make -s build >/dev/null
	CANARYD=bin/canaryd
fi
[ -x "$CANARYD" ] || die "CANARYD=$CANARYD is not an executable"
case " $CONFIGS " in *" one-core "*)
	taskset -c 0,1 true 2>/dev/null || die "one-core needs CPUs 0 and 1 (CONFIGS=as-shipped runs without)" ;;
esac

work=$(mktemp -d)
pids=()
stop() { # pids...: TERM, wait, and forget them, so that nothing outlives its round
	local p q keep=()
	for p in "$@"; do kill "$p" 2>/dev/null || true; done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
	for q in "${pids[@]}"; do
		for p in "$@"; do [ "$p" = "$q" ] && continue 2; done
		keep+=("$q")
	done
	pids=("${keep[@]}")
}
cleanup() {
	trap - EXIT INT TERM
	stop "${pids[@]}"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "bench-nginx: failed at line $LINENO" >&2' ERR

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
A=$(free_port); B=$(free_port); NG=$(free_port); CD=$(free_port); ADMIN=$(free_port)
user=""; [ "$(id -u)" = 0 ] && user="user root root;"
hz=$(getconf CLK_TCK)

nginx_conf() { # name, worker_processes, http block body
	mkdir -p "$work/$1/logs"
	cat >"$work/$1/nginx.conf" <<CONF
$user
worker_processes $2;
daemon off;
error_log $work/$1/logs/error.log warn;
pid $work/$1/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/$1/body; proxy_temp_path $work/$1/proxy;
  fastcgi_temp_path $work/$1/fcgi; uwsgi_temp_path $work/$1/uwsgi; scgi_temp_path $work/$1/scgi;
  $3
}
CONF
}

canaryd_conf() {
	mkdir -p "$work/canaryd/conf"
	rm -rf "$work/canaryd/state"
	cat >"$work/canaryd/conf/canaryd.toml" <<CONF
[proxy]
listen = "127.0.0.1:$CD"
[admin]
socket = "$work/canaryd/admin.sock"
listen = "127.0.0.1:$ADMIN"
[[upstream]]
name = "a"
url = "http://127.0.0.1:$A"
weight = 10
role = "stable"
[[upstream]]
name = "b"
url = "http://127.0.0.1:$B"
weight = 5
role = "canary"
[canary]
version = "v2"
sticky_header = "X-User-ID"
CONF
}

# The load: 1000 users, each request with its own X-User-ID, formatted once.
cat >"$work/users.lua" <<'LUA'
local reqs, i = {}, 0
init = function(args)
  for u = 1, 1000 do reqs[u] = wrk.format("GET", "/", {["X-User-ID"] = "user" .. u}) end
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
LUA
targets() { # port: the same 1000 users for vegeta
	local u
	for u in $(seq 1000); do printf 'GET http://127.0.0.1:%s/\nX-User-ID: user%s\n\n' "$1" "$u"; done
}
targets "$NG" >"$work/nginx.targets"
targets "$CD" >"$work/canaryd.targets"

wait_http() { # url
	local _
	for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
	die "nothing answers at $1"
}
children() { pgrep -P "$1" | tr '\n' ' '; }
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
hwm_kib() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmHWM/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

scrape_start() {
	( trap 'kill $! 2>/dev/null; exit 0' TERM
	  while :; do curl -fs -o /dev/null "http://127.0.0.1:$ADMIN/metrics" || true; sleep 1 & wait $!; done ) &
	scraper=$!
	pids+=("$scraper")
}
scrape_stop() { stop "$scraper"; }

wrk_run() { # name port duration pids... -> "us/request req/s"
	local name=$1 port=$2 dur=$3; shift 3
	local before after out reqs rps
	before=$(cpu_ticks "$@")
	out=$($PIN_LOAD wrk -t"$THREADS" -c"$CONNS" -d"${dur}s" -s "$work/users.lua" "http://127.0.0.1:$port/")
	after=$(cpu_ticks "$@")
	if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
		echo "$out" >&2
		die "$name: wrk saw errors (above); every answer must be a 200"
	fi
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	awk -v t=$((after - before)) -v hz="$hz" -v r="$reqs" -v s="$rps" \
		'BEGIN { printf "%.2f %.0f\n", t / hz * 1e6 / r, s }'
}

vegeta_run() { # name targets rate -> "p50 p99 p999 achieved/s errors" (ms)
	local name=$1 tf=$2 rate=$3
	$PIN_LOAD go tool vegeta attack -targets="$tf" -rate="$rate/1s" -duration="${RATE_SECONDS}s" \
		-timeout=5s -keepalive=true -workers="$CONNS" -max-workers=$((CONNS * 4)) >"$work/vegeta.bin"
	go tool vegeta encode -to csv <"$work/vegeta.bin" >"$work/vegeta.csv"
	awk -F, '$2 != 200' "$work/vegeta.csv" | cut -d, -f6 | sort | uniq -c | sort -rn | head -3 |
		sed "s/^/   $name: /" >&2 || true
	awk -F, -v secs="$RATE_SECONDS" '{ if ($2 != 200) e++; print $3 > "/dev/stderr" } END { printf "%d %d\n", NR / secs, e }' \
		<"$work/vegeta.csv" 2>"$work/lat" >"$work/counts"
	read -r achieved errors <"$work/counts"
	sort -n "$work/lat" | awk -v a="$achieved" -v e="$errors" '{l[NR]=$1} END {
		q = "0.5 0.99 0.999"; split(q, qs, " ")
		for (i = 1; i <= 3; i++) { k = int(qs[i] * NR + 0.999999); if (k < 1) k = 1; printf "%.3f ", l[k] / 1e6 }
		printf "%d %d\n", a, e }'
	rm -f "$work/vegeta.bin" "$work/vegeta.csv" "$work/lat"
}

unit_env() { # the Environment= of the unit, one NAME=value a line
	sed -n 's/^Environment=//p' "$UNIT" | tr -d '"' | tr ' ' '\n' | grep . || true
}
unit_affinity() { sed -n 's/^CPUAffinity=//p' "$UNIT" | tr ' ' ',' | tail -1; }

bench() { # configuration
	local cfg=$1 front_workers canaryd_run=() env_note
	local ng_pid cd_pid ng_pids
	case $cfg in
	one-core)
		PIN_PROXY="taskset -c 1"; PIN_LOAD="taskset -c 0"; THREADS=1; front_workers=1
		canaryd_run=(env GOMAXPROCS=1 taskset -c 1 "$CANARYD")
		env_note="canaryd GOMAXPROCS=1, nginx worker_processes 1, both on CPU 1; wrk, vegeta and the backends on CPU 0"
		;;
	as-shipped)
		PIN_PROXY=""; PIN_LOAD=""; THREADS=2; front_workers=auto
		local envs aff
		mapfile -t envs < <(unit_env)
		aff=$(unit_affinity)
		canaryd_run=(env -u GOMAXPROCS -u GOGC -u GOMEMLIMIT -u GODEBUG "${envs[@]}")
		[ -n "$aff" ] && canaryd_run+=(taskset -c "$aff")
		canaryd_run+=("$CANARYD")
		env_note="nginx worker_processes auto; canaryd as $UNIT runs it (Environment: ${envs[*]:-none}; CPUAffinity: ${aff:-none}); nothing pinned"
		;;
	esac

	nginx_conf backend 1 "server { listen 127.0.0.1:$A; location / { return 200 \"pong-v1\n\"; } }
  server { listen 127.0.0.1:$B; location / { return 200 \"pong-v2\n\"; } }"
	nginx_conf front "$front_workers" "upstream app { server 127.0.0.1:$A weight=10; server 127.0.0.1:$B weight=5; keepalive 32; }
  server { listen 127.0.0.1:$NG; location / { proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection \"\"; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
	canaryd_conf

	local round_pids=()
	$PIN_LOAD nginx -p "$work/backend" -c "$work/backend/nginx.conf" & round_pids+=($!)
	$PIN_PROXY nginx -p "$work/front" -c "$work/front/nginx.conf" & ng_pid=$!; round_pids+=($!)
	"${canaryd_run[@]}" -config-dir "$work/canaryd/conf" -state-dir "$work/canaryd/state" \
		2>"$work/canaryd-$cfg.log" & cd_pid=$!; round_pids+=($!)
	pids+=("${round_pids[@]}")
	wait_http "http://127.0.0.1:$A/"; wait_http "http://127.0.0.1:$B/"
	wait_http "http://127.0.0.1:$NG/"; wait_http "http://127.0.0.1:$CD/"
	wait_http "http://127.0.0.1:$ADMIN/metrics"
	ng_pids="$ng_pid $(children "$ng_pid")"

	echo
	echo "== $cfg: $env_note"
	echo "   wrk -t$THREADS -c$CONNS, ${DURATION}s a round, $ROUNDS rounds, 1000 users in X-User-ID"
	# Warm both up: pooled upstream connections, the journal's first records.
	wrk_run nginx "$NG" 2 $ng_pids >/dev/null
	scrape_start; wrk_run canaryd "$CD" 2 "$cd_pid" >/dev/null; scrape_stop

	: >"$work/ng.us"; : >"$work/cd.us"; : >"$work/ng.rps"; : >"$work/cd.rps"
	local r ng ngr cd cdr res
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			res=$(wrk_run nginx "$NG" "$DURATION" $ng_pids); read -r ng ngr <<<"$res"
			scrape_start; res=$(wrk_run canaryd "$CD" "$DURATION" "$cd_pid"); scrape_stop; read -r cd cdr <<<"$res"
		else
			scrape_start; res=$(wrk_run canaryd "$CD" "$DURATION" "$cd_pid"); scrape_stop; read -r cd cdr <<<"$res"
			res=$(wrk_run nginx "$NG" "$DURATION" $ng_pids); read -r ng ngr <<<"$res"
		fi
		printf '   round %d: nginx %7s us/req %7s req/s   canaryd %7s us/req %7s req/s\n' "$r" "$ng" "$ngr" "$cd" "$cdr"
		echo "$ng" >>"$work/ng.us"; echo "$cd" >>"$work/cd.us"
		echo "$ngr" >>"$work/ng.rps"; echo "$cdr" >>"$work/cd.rps"
	done
	ng=$(median <"$work/ng.us"); cd=$(median <"$work/cd.us")
	ngr=$(median <"$work/ng.rps"); cdr=$(median <"$work/cd.rps")
	local ng_hwm cd_hwm
	ng_hwm=$(hwm_kib $(children "$ng_pid")); cd_hwm=$(hwm_kib "$cd_pid")
	# What canaryd's RSS is made of, now: its own memory (heap, stacks, the
	# journal) and the pages of its binary file, which the kernel can drop.
	local cd_anon cd_file
	cd_anon=$(awk '/^RssAnon/ {print $2}' "/proc/$cd_pid/status")
	cd_file=$(awk '/^RssFile/ {print $2}' "/proc/$cd_pid/status")

	# The open loop, at fixed shares of nginx's closed-loop maximum.
	local pct rate lat=()
	for pct in $OPEN_SHARES; do
		rate=$(awk -v m="$ngr" -v p="$pct" 'BEGIN { printf "%d", m * p / 100 }')
		local nl cl
		nl=$(vegeta_run nginx "$work/nginx.targets" "$rate")
		scrape_start; cl=$(vegeta_run canaryd "$work/canaryd.targets" "$rate"); scrape_stop
		lat+=("$pct $rate $nl $cl")
	done

	local ng_hwm_open cd_hwm_open
	ng_hwm_open=$(hwm_kib $(children "$ng_pid")); cd_hwm_open=$(hwm_kib "$cd_pid")
	stop "${round_pids[@]}"

	echo
	printf '   %-34s %10s %10s %14s\n' "$cfg" nginx canaryd canaryd/nginx
	printf '   %-34s %10s %10s %14s\n' "CPU per request, median (us)" "$ng" "$cd" "$(awk -v a="$cd" -v b="$ng" 'BEGIN{printf "%.2f", a/b}')"
	printf '   %-34s %10s %10s %14s\n' "requests/s, median (closed loop)" "$ngr" "$cdr" "$(awk -v a="$cdr" -v b="$ngr" 'BEGIN{printf "%.2f", a/b}')"
	printf '   %-34s %10s %10s\n' "peak RSS after wrk, VmHWM (MiB)" "$(mib "$ng_hwm")" "$(mib "$cd_hwm")"
	printf '   %-34s %10s %10s\n' "peak RSS after vegeta too (MiB)" "$(mib "$ng_hwm_open")" "$(mib "$cd_hwm_open")"
	printf '   %-34s %10s %10s\n' "canaryd RSS after wrk: own, file" "$(mib "$cd_anon")" "$(mib "$cd_file")"
	printf '   %-34s %10s %10s\n' "wrk non-2xx and socket errors" 0 0
	local l p rt n50 n99 n999 na ne c50 c99 c999 ca ce
	for l in "${lat[@]}"; do
		read -r p rt n50 n99 n999 na ne c50 c99 c999 ca ce <<<"$l"
		echo "   open loop at $p% of nginx's max, $rt req/s offered for ${RATE_SECONDS}s (vegeta; achieved: nginx $na/s, canaryd $ca/s; non-200: nginx $ne, canaryd $ce)"
		printf '   %-34s %10s %10s\n' "  p50 (ms)" "$n50" "$c50"
		printf '   %-34s %10s %10s %14s\n' "  p99 (ms)" "$n99" "$c99" "$(awk -v a="$c99" -v b="$n99" 'BEGIN{printf "%.2f", a/b}')"
		printf '   %-34s %10s %10s\n' "  p999 (ms)" "$n999" "$c999"
		if [ "$ne" != 0 ] || [ "$ce" != 0 ]; then
			echo "   ERROR: answers other than 200 in the open loop (nginx $ne, canaryd $ce; reasons above)"
			failed=1
		fi
		if [ $((na * 100)) -lt $((rt * 95)) ] || [ $((ca * 100)) -lt $((rt * 95)) ]; then
			echo "   note: vegeta fell more than 5% short of the offered rate; its latencies then include its own queueing"
		fi
	done
}

echo "bench-nginx: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)"
echo "             $(nginx -v 2>&1), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $("$CANARYD" -version 2>&1 | head -1), $(go version | cut -d' ' -f3)"
failed=0
for cfg in $CONFIGS; do bench "$cfg"; done
[ "$failed" = 0 ] || die "the open loop had errors (ERROR lines above)"
