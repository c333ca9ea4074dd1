#!/usr/bin/env bash
# Runs the ARMv6 canaryd -demo under qemu-user on an ARM1176 (the Pi Zero and
# Pi 1 core) and checks what a user of the first Pi would see: a static ARM
# binary, the seed's 10:5 split pick for pick as nginx makes it, a canaryctl
# that answers, and a clean exit on SIGTERM.
#
# Usage: arm-demo-check.sh [DIR]   (DIR holds canaryd and canaryctl; default bin/linux_armv6)
set -euo pipefail

cd "$(dirname "$0")/.."
dir=${1:-bin/linux_armv6}
qemu=(qemu-arm-static -cpu arm1176)
# nginx's smooth weighted round-robin for weights 10 (pong-v1) and 5 (pong-v2).
want="pong-v1 pong-v2 pong-v1 pong-v1 pong-v2 pong-v1 pong-v1 pong-v2 pong-v1 pong-v1 pong-v2 pong-v1 pong-v1 pong-v2 pong-v1"

fail() {
	echo "arm-demo-check: FAIL: $*" >&2
	if [ -n "${tmp:-}" ] && [ -s "$tmp/stdout" ]; then sed 's/^/    stdout| /' "$tmp/stdout" >&2; fi
	if [ -n "${tmp:-}" ] && [ -s "$tmp/stderr" ]; then sed 's/^/    stderr| /' "$tmp/stderr" >&2; fi
	exit 1
}

# The binaries: static 32-bit ARM (EABI5, no interpreter), built for ARMv6.
for b in canaryd canaryctl; do
	[ -x "$dir/$b" ] || fail "$dir/$b not found (make arm)"
	desc=$(file -b "$dir/$b")
	case $desc in
	*"ELF 32-bit LSB executable, ARM, EABI5"*"statically linked"*) ;;
	*) fail "$dir/$b is not a static 32-bit ARM EABI5 executable: $desc" ;;
	esac
	${GO:-go} version -m "$dir/$b" | grep -q 'GOARM=6' || fail "$dir/$b was not built with GOARM=6"
done
echo "arm-demo-check: $dir/canaryd and canaryctl are static ARM EABI5, GOARM=6"

# A free port: nothing answers a connect to it.
port=
for _ in $(seq 50); do
	p=$((20000 + RANDOM % 40000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || fail "no free port found"

# The demo puts its config, state and admin socket in its place,
# $XDG_RUNTIME_DIR/canaryd-demo: point that at ours to find the socket and
# clean up.
tmp=$(mktemp -d)
place=$tmp/canaryd-demo
sock=$place/admin.sock
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

started=$SECONDS
XDG_RUNTIME_DIR=$tmp "${qemu[@]}" "$dir/canaryd" -demo -listen "127.0.0.1:$port" >"$tmp/stdout" 2>"$tmp/stderr" &
pid=$!

# Ready when the admin socket exists and the proxy port accepts a connection.
# A bare connect sends no request, so the balancer's sequence is untouched.
for _ in $(seq 600); do
	kill -0 "$pid" 2>/dev/null || fail "canaryd -demo exited while starting"
	if [ -S "$sock" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done
[ -S "$sock" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
	fail "canaryd -demo not ready on 127.0.0.1:$port within 60s"
echo "arm-demo-check: canaryd -demo ready on 127.0.0.1:$port after $((SECONDS - started))s"

got=
for _ in $(seq 15); do
	body=$(curl -sS --max-time 10 "http://127.0.0.1:$port/ping") || fail "curl http://127.0.0.1:$port/ping failed"
	[[ $body =~ ^\{\"message\":\"(pong-v[12])\"\}$ ]] || fail "curl /ping answered $body, want the seed's {\"message\":\"pong-v1\"}"
	got="${got:+$got }${BASH_REMATCH[1]}"
done
v1=$(grep -o 'pong-v1' <<<"$got" | wc -l)
v2=$(grep -o 'pong-v2' <<<"$got" | wc -l)
[ "$v1" -eq 10 ] && [ "$v2" -eq 5 ] || fail "15 requests: $v1 pong-v1 and $v2 pong-v2, want 10 and 5: $got"
[ "$got" = "$want" ] || fail "15 requests in the order
     got  $got
     want $want"
echo "arm-demo-check: 15 requests: 10 pong-v1, 5 pong-v2, in nginx's order"

status=$(timeout 60 "${qemu[@]}" "$dir/canaryctl" -socket "$sock" status --json) ||
	fail "canaryctl status --json under qemu failed (exit $?): $status"
grep -Eq '"state": *"canary"' <<<"$status" || fail "canaryctl status --json: no \"state\": \"canary\": $status"
grep -Eq '"canary_version": *"pong-v2"' <<<"$status" || fail "canaryctl status --json: no \"canary_version\": \"pong-v2\": $status"
echo "arm-demo-check: canaryctl status --json answers: state canary, canary_version pong-v2"

kill -TERM "$pid"
for _ in $(seq 300); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then fail "canaryd still running 30s after SIGTERM"; fi
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "canaryd exited with status $rc after SIGTERM, want 0"
for d in "$place/config" "$place/state" "$sock"; do
	if [ -e "$d" ]; then fail "canaryd -demo left $d behind"; fi
done
echo "arm-demo-check: SIGTERM: canaryd exited 0 and removed its temporary files ($((SECONDS - started))s in all)"
