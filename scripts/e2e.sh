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
E2E_NAME=e2e
# shellcheck source=scripts/e2e/lib.sh
. scripts/e2e/lib.sh

e2e_init pi pi0 # make e2e-pi's results stay
e2e_image

# ---------------------------------------------------------------- QEMU
http_port=$(free_port)
admin_port=$(free_port)
while [[ $admin_port == "$http_port" ]]; do admin_port=$(free_port); done

boot_qemu() { # boot_qemu N: starts the VM in the background
	local n=$1
	start_qemu "$n" -M virt -cpu cortex-a72 -accel tcg,thread=multi -smp "$smp" -m 1024 \
		-kernel "$work/Image" -initrd "$work/initramfs8" \
		-append "root=LABEL=rootfs rootfstype=ext4 rootwait fsck.repair=yes console=ttyAMA0 systemd.show_status=1" \
		-drive "file=$img,if=virtio,format=raw" \
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$http_port-:80,hostfwd=tcp:127.0.0.1:$admin_port-:9090" \
		-device virtio-net-pci,netdev=n0,romfile= \
		-device virtio-serial-pci -device virtserialport,chardev=ctl,name=canary.e2e \
		-monitor none -serial "file:$work/console-boot$n.log"
	note "boot $n: qemu pid $qemu_pid, guest :80 on 127.0.0.1:$http_port, :9090 on 127.0.0.1:$admin_port"
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
