#!/usr/bin/env bash
# scripts/e2e.sh (make e2e): the boot test. Builds a stand-in Raspberry Pi OS
# image (scripts/e2e-base.sh, cached), runs `make image` on it as a user would,
# boots it twice under QEMU (arm64, emulated) with systemd and checks from the
# host, through hostfwd, and from the guest, through a virtio-serial port that
# scripts/e2e/guest/canary-e2e answers on:
#   boot 1: the demo backends serve through canaryd 10:5, the status page is
#           on the LAN port and refuses a rollback without the token;
#           `canaryctl button` in the guest rolls back.
#   between: v1's weight is edited 10 -> 20 in the FAT partition's canaryd/.
#   boot 2: the rollback is still latched (only pong-v1), the new weight is
#           live; the guest's report lands in e2e-out/.
#   boot 3: a broken copy on the FAT partition is refused: the status LED
#           blinks green, the status says why, the last good config serves.
# Runs as root (the base image's chroot). Environment:
#   E2E_OUT (default e2e-out at the repo root), E2E_KEEP=1 keeps the work dir,
#   E2E_BOOT_TIMEOUT (s, default 300) for each boot to serve,
#   QEMU_SMP (default 2), E2E_CACHE (see e2e-base.sh).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
outdir=${E2E_OUT:-$repo/e2e-out}
boot_timeout=${E2E_BOOT_TIMEOUT:-300}
smp=${QEMU_SMP:-2}
export MTOOLS_SKIP_CHECK=1

t0=$(date +%s)
tl=$t0
stage() {
	local now
	now=$(date +%s)
	printf '::: e2e: %s (+%ss, %ss total)\n' "$1" $((now - tl)) $((now - t0))
	tl=$now
}
note() { echo "e2e: $*"; }

qemu_pid=
reader_pid=
console=
work=
cleanup() {
	[[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
	[[ -n $reader_pid ]] && kill "$reader_pid" 2>/dev/null
	if [[ -n $work && -z ${E2E_KEEP:-} ]]; then rm -rf "$work"; fi
	[[ -n $work && -n ${E2E_KEEP:-} ]] && note "kept $work"
	return 0
}
trap cleanup EXIT

fail() {
	echo "e2e: FAIL: $*" >&2
	if [[ -n $console && -s $console ]]; then
		echo "e2e: ----- last 80 lines of the guest console ($console) -----" >&2
		tail -n 80 "$console" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' >&2
		echo "e2e: ----- end of the guest console -----" >&2
	fi
	# If the guest still listens, have it write its diagnostics and power off.
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null && [[ -n ${ready:-} ]]; then
		send "collect failed" && wait_reply collect 60 &&
			send poweroff && wait_qemu 60 >/dev/null 2>&1 || true
	fi
	if [[ -n ${img:-} && -f ${img:-} ]]; then
		fetch_out "$outdir/guest-after-failure" >/dev/null 2>&1 || true
	fi
	[[ -n $console && -s $console ]] && cp "$console" "$outdir/" 2>/dev/null
	echo "e2e: what there is is in $outdir" >&2
	exit 1
}

# ---------------------------------------------------------------- tools
[[ $(id -u) == 0 ]] || { echo "e2e: run as root (the base image is built in a chroot under qemu-user)" >&2; exit 1; }
need=()
for t in qemu-system-aarch64:qemu-system-arm mcopy:mtools sfdisk:fdisk debugfs:e2fsprogs \
	curl:curl jq:jq mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static \
	mkfs.vfat:dosfstools arch-test:arch-test xz:xz-utils; do
	command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if ((${#need[@]})); then
	note "installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rm -rf "$outdir"
mkdir -p "$outdir"
work=$(mktemp -d /var/tmp/canary-e2e.XXXXXX)
stage "tools; work dir $work, results in $outdir"

# ---------------------------------------------------------------- base
bash scripts/e2e-base.sh "$work/base.img" 2>&1 | sed -u 's/^/  /'
[[ ${PIPESTATUS[0]} == 0 ]] || fail "scripts/e2e-base.sh failed"
stage "base image"

# ---------------------------------------------------------------- make image
img=$work/canary-pi.img
${MAKE:-make} --no-print-directory image BASE="$work/base.img" OUT="$img" ARCH=arm64 2>&1 | tee "$outdir/make-image.log" | sed -u 's/^/  /'
[[ ${PIPESTATUS[0]} == 0 && -s $img ]] || fail "make image BASE=$work/base.img OUT=$img ARCH=arm64 failed (make-image.log)"
stage "make image"

# Partition offsets from the MBR, as image.sh finds them.
part_start() { sfdisk -J "$1" | jq -r ".partitiontable.partitions[$(($2 - 1))].start // 0"; } # IMG N
boot_off=$(($(part_start "$img" 1) * 512))
root_off=$(($(part_start "$img" 2) * 512))
[[ $boot_off -gt 0 && $root_off -gt 0 ]] || fail "no partitions 1 and 2 in $img"
fat="$img@@$boot_off"
rootfs="$img?offset=$root_off"
debugfs_cmd() { debugfs -R "$1" "$rootfs" 2>/dev/null; }

# Raspberry Pi Imager's files on the FAT partition are as they were.
for f in cmdline.txt config.txt firstrun.sh user-data network-config; do
	cmp -s <(mtype -i "$work/base.img@@$(($(part_start "$work/base.img" 1) * 512))" "::$f") <(mtype -i "$fat" "::$f") ||
		fail "make image changed $f on the FAT partition"
done

token=$(debugfs_cmd "cat /etc/canaryd/admin.token" | tr -d '[:space:]')
[[ -n $token ]] || fail "no /etc/canaryd/admin.token in the image (make image puts the status page on the LAN with a token)"
grep -qF "$token" "$outdir/make-image.log" || fail "make image did not print the admin token it wrote"
note "admin token from make image: ${token:0:4}…"

# ---------------------------------------------------------------- test units
# The report unit and its script. The demo backends are make image's: with
# the package's example config it enables them, so the first boot serves.
wants=/etc/systemd/system/multi-user.target.wants
{
	echo "write scripts/e2e/guest/canary-e2e /usr/local/sbin/canary-e2e"
	echo "sif /usr/local/sbin/canary-e2e mode 0100755"
	echo "sif /usr/local/sbin/canary-e2e uid 0"
	echo "sif /usr/local/sbin/canary-e2e gid 0"
	echo "write scripts/e2e/guest/canary-e2e.service /etc/systemd/system/canary-e2e.service"
	echo "sif /etc/systemd/system/canary-e2e.service mode 0100644"
	echo "sif /etc/systemd/system/canary-e2e.service uid 0"
	echo "sif /etc/systemd/system/canary-e2e.service gid 0"
	echo "mkdir $wants"
	echo "symlink $wants/canary-e2e.service /etc/systemd/system/canary-e2e.service"
} >"$work/debugfs.cmds"
debugfs -w -f "$work/debugfs.cmds" "$rootfs" >"$work/debugfs.log" 2>&1 || { cat "$work/debugfs.log"; fail "debugfs could not add the test units"; }
for f in /usr/local/sbin/canary-e2e /etc/systemd/system/canary-e2e.service "$wants/canary-e2e.service" \
	"$wants/canaryd-demo@pong-v1.service" "$wants/canaryd-demo@pong-v2.service" \
	/usr/lib/systemd/system/canaryd-demo@.service "$wants/canaryd.service" /usr/bin/canaryd; do
	debugfs_cmd "stat $f" | grep -q '^Inode:' || fail "$f is not in the image's root file system"
done
e2fsck -fn "$rootfs" >"$work/e2fsck.log" 2>&1 || { cat "$work/e2fsck.log"; fail "e2fsck -fn on the root partition after adding the test units"; }

# The kernel and initramfs the Pi would boot, from the FAT partition.
mcopy -n -i "$fat" ::kernel8.img "$work/kernel8.img"
mcopy -n -i "$fat" ::initramfs8 "$work/initramfs8"
if [[ $(head -c2 "$work/kernel8.img" | od -An -tx1 | tr -d ' ') == 1f8b ]]; then
	gunzip -c "$work/kernel8.img" >"$work/Image"
else
	cp "$work/kernel8.img" "$work/Image"
fi
stage "test units added (debugfs), kernel and initramfs taken from the FAT partition"

# ---------------------------------------------------------------- QEMU
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 30000))
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
	return 1
}
http_port=$(free_port)
admin_port=$(free_port)
while [[ $admin_port == "$http_port" ]]; do admin_port=$(free_port); done

ctl=$work/ctl
replies=$work/ctl.replies
boot_qemu() { # boot_qemu N: starts the VM in the background
	local n=$1
	console=$work/console-boot$n.log
	rm -f "$ctl.in" "$ctl.out"
	mkfifo "$ctl.in" "$ctl.out"
	: >"$replies"
	seen=0
	ready=
	qemu-system-aarch64 -M virt -cpu cortex-a72 -accel tcg,thread=multi -smp "$smp" -m 1024 \
		-kernel "$work/Image" -initrd "$work/initramfs8" \
		-append "root=LABEL=rootfs rootfstype=ext4 rootwait fsck.repair=yes console=ttyAMA0 systemd.show_status=1" \
		-drive "file=$img,if=virtio,format=raw" \
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$http_port-:80,hostfwd=tcp:127.0.0.1:$admin_port-:9090" \
		-device virtio-net-pci,netdev=n0,romfile= \
		-device virtio-serial-pci -chardev "pipe,id=ctl,path=$ctl" -device virtserialport,chardev=ctl,name=canary.e2e \
		-display none -monitor none -serial "file:$console" -no-reboot \
		>"$work/qemu-boot$n.log" 2>&1 &
	qemu_pid=$!
	exec 4<>"$ctl.in" # read-write: a write never blocks, even after QEMU is gone
	cat "$ctl.out" >>"$replies" &
	reader_pid=$!
	note "boot $n: qemu pid $qemu_pid, guest :80 on 127.0.0.1:$http_port, :9090 on 127.0.0.1:$admin_port"
}
send() { echo "$*" >&4; }
seen=0 # lines of $replies already taken
wait_reply() { # wait_reply WORD SECONDS: the guest's next answer naming WORD, in $reply
	local word=$1 limit=$2 i n line
	reply=
	for ((i = 0; i < limit * 2; i++)); do
		n=0
		while IFS= read -r line; do
			n=$((n + 1))
			if [[ $line =~ ^(ok|fail|ready)( |$) && $line == *"$word"* ]]; then
				seen=$((seen + n))
				reply=$line
				return 0
			fi
		done < <(tail -n +$((seen + 1)) "$replies")
		kill -0 "$qemu_pid" 2>/dev/null || return 1
		sleep 0.5
	done
	return 1
}
wait_qemu() { # wait_qemu SECONDS: the guest powers off and QEMU exits
	local i
	for ((i = 0; i < $1 * 2; i++)); do
		if ! kill -0 "$qemu_pid" 2>/dev/null; then
			wait "$qemu_pid" 2>/dev/null || true
			qemu_pid=
			kill "$reader_pid" 2>/dev/null || true
			reader_pid=
			return 0
		fi
		sleep 0.5
	done
	return 1
}
wait_serving() { # until GET /ping answers through the :80 forward
	local deadline=$((SECONDS + boot_timeout))
	while ((SECONDS < deadline)); do
		# A long -m: a probe given up on while canaryd is still starting
		# would be served later, among the requests that are counted.
		if curl -fsS -m 60 -o /dev/null "http://127.0.0.1:$http_port/ping" 2>/dev/null; then
			return 0
		fi
		kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before canaryd served ($(tail -n 3 "$work/qemu-boot$1.log" | tr '\n' ' '))"
		sleep 1
	done
	fail "boot $1: no answer on GET /ping (guest :80) within ${boot_timeout}s"
}
count_pongs() { # count_pongs N: N requests; prints "v1 v2 other"
	local v1=0 v2=0 other=0 body ct i
	for ((i = 0; i < $1; i++)); do
		body=$(curl -fsS -m 10 -w '\n%{content_type}' "http://127.0.0.1:$http_port/ping" 2>/dev/null || echo)
		ct=${body##*$'\n'}
		body=${body%$'\n'*}
		case $body in
		'{"message":"pong-v1"}') v1=$((v1 + 1)) ;;
		'{"message":"pong-v2"}') v2=$((v2 + 1)) ;;
		*) other=$((other + 1)); note "unexpected answer: $body" >&2 ;;
		esac
		[[ $ct == application/json* ]] || note "content type $ct for $body" >&2
	done
	echo "$v1 $v2 $other"
}
# Reads need the token too: make image leaves admin.public_read false.
admin_status() { curl -fsS -m 10 -H "Authorization: Bearer $token" "http://127.0.0.1:$admin_port/v1/status"; }
fetch_out() { # fetch_out DIR: the guest's e2e-out/ from the FAT partition
	rm -rf "$1"
	mcopy -s -n -i "$fat" ::e2e-out "$1"
}

finish_boot() { # finish_boot N: the guest's report collected, powered off, its e2e-out/ fetched
	send collect "boot$1"
	wait_reply collect 120 || fail "boot $1: the guest did not collect its report"
	send poweroff
	wait_qemu 120 || fail "boot $1: the guest did not power off within 120 s"
	cp "$work/console-boot$1.log" "$outdir/"
	rm -rf "$outdir/guest"
	fetch_out "$outdir/guest" || fail "no e2e-out/ on the FAT partition after boot $1"
}

# ---------------------------------------------------------------- boot 1
boot_qemu 1
wait_serving 1
stage "boot 1: canaryd serves GET /ping through hostfwd"
wait_reply ready 120 || fail "boot 1: the guest's report unit did not say ready"
ready=1
note "guest: $reply"

# Any 15 consecutive picks of SWRR at 10:5 are 10 and 5, so the split is exact
# unless another request took a pick among ours: a probe of wait_serving that
# curl gave up on while the slow guest still had it queued is served late.
# canaryd's own counters say whether that happened, and how many.
served() { admin_status | jq '[.upstreams[].requests] | add'; }
before=$(served) || fail "boot 1: GET /v1/status on the LAN port"
read -r v1 v2 other <<<"$(count_pongs 15)"
after=$(served) || fail "boot 1: GET /v1/status on the LAN port"
extra=$((after - before - 15))
note "15 requests: $v1 pong-v1, $v2 pong-v2, $other other ($extra other requests served meanwhile)"
((other == 0 && v1 + v2 == 15 && extra >= 0 && (v2 - 5) * (v2 - 5) <= extra * extra)) ||
	fail "boot 1: 15 requests gave $v1 pong-v1, $v2 pong-v2, $other other, with $extra other requests meanwhile; want 10 and 5"
page=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/")
[[ $page == 200 ]] || fail "boot 1: the status page on the LAN port (guest :9090) answered $page"
code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$admin_port/v1/rollback")
[[ $code == 401 ]] || fail "boot 1: POST /v1/rollback without the token on the LAN port answered $code, want 401"
code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer wrong-$token" "http://127.0.0.1:$admin_port/v1/rollback")
[[ $code == 401 ]] || fail "boot 1: POST /v1/rollback with a wrong token answered $code, want 401"
code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/v1/status")
[[ $code == 401 ]] || fail "boot 1: GET /v1/status without the token on the LAN port answered $code, want 401 (admin.public_read is false)"
code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" -H "Host: evil.example" "http://127.0.0.1:$admin_port/v1/rollback")
[[ $code == 421 ]] || fail "boot 1: POST /v1/rollback with the token and Host evil.example answered $code, want 421"
st=$(admin_status) || fail "boot 1: GET /v1/status on the LAN port"
[[ $(jq -r .state <<<"$st") == canary ]] || fail "boot 1: state $(jq -r .state <<<"$st") before the button, want canary (did a refused rollback act?)"
code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "http://127.0.0.1:$admin_port/v1/reload")
[[ $code == 200 ]] || fail "boot 1: POST /v1/reload with make image's token answered $code, want 200"
stage "boot 1: 10 pong-v1 / 5 pong-v2, status page on :9090, 401 without the token, 421 for a foreign Host, 200 with it"

send button
wait_reply button 60 || fail "boot 1: no answer to button"
[[ $reply == "ok button" ]] || fail "boot 1: canaryctl button in the guest: $reply"
read -r v1 v2 other <<<"$(count_pongs 10)"
[[ $v1 == 10 && $v2 == 0 ]] || fail "boot 1: after the button, 10 requests gave $v1 pong-v1, $v2 pong-v2, $other other; want all pong-v1"
finish_boot 1
[[ $(jq -r .state "$outdir/guest/status-after-button.json") == rolled_back ]] ||
	fail "boot 1: canaryctl status --json after the button says state $(jq -r .state "$outdir/guest/status-after-button.json"), want rolled_back"
stage "boot 1: canaryctl button rolled back (state rolled_back, only pong-v1), guest powered off"

# ---------------------------------------------------------------- edit the FAT config
mcopy -s -n -i "$fat" ::canaryd "$work/fatcfg" || fail "no canaryd/ folder on the FAT partition"
edited=
for f in "$work"/fatcfg/*.toml; do
	# In the [[upstream]] block named v1: weight = 10 -> 20.
	awk '/^\[/ { inv1 = 0 } /^name *= *"v1"/ { inv1 = 1 }
		inv1 && /^weight *= *10([^0-9]|$)/ { sub(/= *10/, "= 20"); changed = 1 }
		{ print } END { exit !changed }' "$f" >"$f.new" && { mv "$f.new" "$f"; edited=$(basename "$f"); } || rm -f "$f.new"
done
[[ -n $edited ]] || fail "no 'weight = 10' in the v1 upstream of the FAT partition's canaryd/*.toml"
mcopy -o -i "$fat" "$work/fatcfg/$edited" "::canaryd/$edited"
mtype -i "$fat" "::canaryd/$edited" | grep -q '^weight = 20' || fail "the edit did not land on the FAT partition"
stage "FAT canaryd/$edited: v1 weight 10 -> 20 (mtools)"

# ---------------------------------------------------------------- boot 2
boot_qemu 2
wait_serving 2
stage "boot 2: canaryd serves again"
wait_reply ready 120 || fail "boot 2: the guest's report unit did not say ready"
ready=1
read -r v1 v2 other <<<"$(count_pongs 25)"
note "25 requests after the reboot: $v1 pong-v1, $v2 pong-v2, $other other"
[[ $v1 == 25 && $v2 == 0 ]] || fail "boot 2: 25 requests gave $v1 pong-v1, $v2 pong-v2, $other other; want all pong-v1 (rolled back)"
st=$(admin_status) || fail "boot 2: GET /v1/status on the LAN port"
[[ $(jq -r .state <<<"$st") == rolled_back ]] || fail "boot 2: state $(jq -r .state <<<"$st") after the reboot, want rolled_back"
[[ $(jq -r '.upstreams[] | select(.name == "v1") | .weight' <<<"$st") == 20 ]] ||
	fail "boot 2: v1's weight is $(jq -c '.upstreams' <<<"$st"), want 20 from the FAT partition"
finish_boot 2
stage "boot 2: still rolled back (25/25 pong-v1), v1 weight 20 live, guest powered off"

# ---------------------------------------------------------------- the report
for f in systemctl-status.txt journal-verbose.txt status-after-reboot.json arch.txt; do
	[[ -s $outdir/guest/boot2/$f ]] || fail "the guest wrote no $f"
	cp "$outdir/guest/boot2/$f" "$outdir/$f"
done
e=$outdir
grep -q 'Active: active (running)' "$e/systemctl-status.txt" || fail "systemctl status canaryd: not active (running): $(grep Active: "$e/systemctl-status.txt")"
grep -q '^    SYSLOG_IDENTIFIER=canaryd' "$e/journal-verbose.txt" || fail "journal-verbose.txt: no entries with SYSLOG_IDENTIFIER=canaryd"
grep -q '^    CANARY_VERSION=v2' "$e/journal-verbose.txt" || fail "journal-verbose.txt: no structured CANARY_VERSION field from canaryd"
# The rollback's MESSAGE_ID (systemd/canaryd.service names it), from boot 1: the journal persists.
grep -q '^    MESSAGE_ID=f82c92e61a4b4515aff7a0f4a30df294' "$e/journal-verbose.txt" ||
	fail "journal-verbose.txt: no rollback entry (MESSAGE_ID=f82c92e61a4b4515aff7a0f4a30df294) from boot 1"
grep -q '^    CAUSE=' "$e/journal-verbose.txt" || fail "journal-verbose.txt: no structured CAUSE field on the rollback"
sock=$(cat "$outdir/guest/boot2/admin-socket.txt" 2>/dev/null)
[[ $sock == "660 canaryctl" ]] || fail "boot 2: /run/canaryd/admin.sock is \"$sock\", want mode 660, group canaryctl"
! grep -q "keeps the process's group" "$e/journal-verbose.txt" ||
	fail "journal-verbose.txt: the admin socket did not get group canaryctl: $(grep -m1 "keeps the process's group" "$e/journal-verbose.txt")"
[[ $(jq -r .state "$e/status-after-reboot.json") == rolled_back ]] || fail "status-after-reboot.json: state is not rolled_back"
[[ $(jq -r '.upstreams[] | select(.name == "v1") | .weight' "$e/status-after-reboot.json") == 20 ]] || fail "status-after-reboot.json: v1's weight is not 20"
grep -q '^    MESSAGE=.*simulated' "$e/journal-verbose.txt" || fail "journal-verbose.txt: canaryd did not say that the front panel is simulated (-gpio auto on a machine without the Pi's pins)"
# The button's rollback in boot 1 wrote an incident report, kept across the reboot,
# and its journal entry (MESSAGE_ID in appliance/daemon/events.go) with its path.
inc=$outdir/guest/boot2/incidents.json
[[ $(jq '[.[] | select(.cause == "button" and .version == "v2")] | length' "$inc" 2>/dev/null) -ge 1 ]] ||
	fail "boot 2: canaryctl incidents --json lists no report of the button's rollback of v2: $(head -c 300 "$inc")"
cp "$inc" "$outdir/incidents.json"
grep -q '^    MESSAGE_ID=063bc74377ab4d56b9f0decd00ba1287' "$e/journal-verbose.txt" ||
	fail "journal-verbose.txt: no incident report entry (MESSAGE_ID=063bc74377ab4d56b9f0decd00ba1287) from boot 1"
note "canaryctl incidents --json after the reboot: $(jq length "$inc") report(s), $(jq -r '.[0].id' "$inc")"
[[ $(cat "$e/arch.txt") == aarch64 ]] || fail "arch.txt: $(cat "$e/arch.txt"), want aarch64"
boots=$(grep -c . "$outdir/guest/boot2/boots.txt" || true)
note "journal: $(grep -c '^    SYSLOG_IDENTIFIER=canaryd' "$e/journal-verbose.txt") canaryd entries over $((boots - 1)) boots"
stage "report: e2e-out/ from boot 2 checked"

# ---------------------------------------------------------------- boot 3: a broken copy on the card
# A typo made on a laptop: the import refuses it, /etc/canaryd keeps serving
# (still rolled back, v1 still 20), the status LED blinks green and says why.
sed -i 's#url = "http://127.0.0.1:8002"#url = "htp://127.0.0.1:8002"#' "$work/fatcfg/$edited"
grep -q 'htp://' "$work/fatcfg/$edited" || fail "could not break the v2 url in canaryd/$edited"
mcopy -o -i "$fat" "$work/fatcfg/$edited" "::canaryd/$edited"
boot_qemu 3
wait_serving 3
wait_reply ready 120 || fail "boot 3: the guest's report unit did not say ready"
ready=1
st=$(admin_status) || fail "boot 3: GET /v1/status on the LAN port"
err=$(jq -r .config.error <<<"$st")
[[ $err == *"import refused"*"canaryd/$edited:"*"htp"* ]] ||
	fail "boot 3: config.error is '$err', want the import's refusal naming canaryd/$edited and the bad url"
[[ $(jq -r .leds.status <<<"$st") == green-blink ]] || fail "boot 3: status LED $(jq -r .leds.status <<<"$st") after a refused import, want green-blink"
[[ $(jq -r .state <<<"$st") == rolled_back ]] || fail "boot 3: state $(jq -r .state <<<"$st"), want rolled_back still"
[[ $(jq -r '.upstreams[] | select(.name == "v1") | .weight' <<<"$st") == 20 ]] || fail "boot 3: v1's weight changed under a refused import"
read -r v1 v2 other <<<"$(count_pongs 10)"
[[ $v1 == 10 && $other == 0 ]] || fail "boot 3: 10 requests gave $v1 pong-v1, $v2 pong-v2, $other other; want all pong-v1"
finish_boot 3
grep -q 'import refused' "$outdir/guest/boot3/journal-verbose.txt" || fail "boot 3: the refusal is not in journalctl -u canaryd"
stage "boot 3: a broken copy on the FAT partition refused (status LED green-blink, /etc/canaryd kept serving), guest powered off"

stage "PASS: e2e-out/ has systemctl-status.txt, journal-verbose.txt, status-after-reboot.json, arch.txt, the consoles"
