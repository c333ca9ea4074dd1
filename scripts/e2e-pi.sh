#!/usr/bin/env bash
# scripts/e2e-pi.sh (make e2e-pi): the image make image writes, flashed to an
# SD card and booted on an emulated Raspberry Pi 3 (QEMU's raspi3b) with its
# own systemd, canaryd driving the SoC's real GPIO controller through the
# kernel's pinctrl-bcm2835 driver. The host reads the front panel out of the
# GPIO registers and presses the button on its line (scripts/pisoc), and
# talks to the guest's report unit (scripts/e2e/guest/canary-e2e) through a
# USB serial adapter: the Pi has no virtio. Nothing in the guest is changed
# for the emulator; canaryd finds the Pi's pins by itself (-gpio auto).
#
#   boot 1: canaryd holds GPIO17/22/23/27 (gpioinfo); the panel matches the
#           status JSON while serving; taps shorter than the debounce do
#           nothing; a press of 0.8 s rolls back (cause button, an incident
#           written), red blinking at the measured period; a 4.5 s press
#           resumes; a press of 0.5 s rolls back for the reboot.
#   boot 2: the latch is on the panel at boot, before the first request;
#           then resumed, a bad verdict (v2's backend stopped: red), promoted
#           (dark), a bad config (status blinks green) and canaryd stopped
#           (all dark, the lines free).
# Then the ARMv6 build on a Pi Zero's SoC (scripts/e2e-pi0.sh).
#
# QEMU's model has no pull-ups and raises no edge interrupts: the host holds
# the button's line high from power-on, and canaryd's polling sees presses
# (the journal says BUTTON_SEEN=poll; a real Pi's kernel raises edges).
# Results in e2e-out/pi/. Runs as root. Environment: E2E_OUT (default
# e2e-out), E2E_KEEP=1 keeps the work dir, E2E_BOOT_TIMEOUT (s, default 420),
# E2E_CACHE (see e2e-base.sh).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
top=${E2E_OUT:-$repo/e2e-out}
outdir=$top/pi
boot_timeout=${E2E_BOOT_TIMEOUT:-420}
E2E_NAME=e2e-pi
# shellcheck source=scripts/e2e/lib.sh
. scripts/e2e/lib.sh

e2e_init
go build -o "$work/pisoc" ./scripts/pisoc
e2e_image

# The card: the image on an SD card of the next power-of-two size, which
# QEMU's SD model wants (a real card is larger than the image too). The
# device tree of the Pi 3 B from the FAT partition, where its firmware finds
# it.
card=$work/sd.img
cp --sparse=always "$img" "$card"
size=$(stat -c %s "$card")
pow=$((1 << 20))
while ((pow < size)); do pow=$((pow * 2)); done
truncate -s "$pow" "$card"
img=$card
fat="$card@@$(($(part_start "$card" 1) * 512))"
rootfs="$card?offset=$(($(part_start "$card" 2) * 512))"
mcopy -n -i "$fat" ::bcm2837-rpi-3-b.dtb "$work/rpi3b.dtb" || fail "no bcm2837-rpi-3-b.dtb on the FAT partition"
stage "SD card $((pow >> 20)) MiB, the Pi 3 B's device tree from the FAT partition"

qmp=$work/qmp.sock
gdb=$work/gdb.sock
pisoc() { "$work/pisoc" -qmp "$qmp" -gdb "$gdb" "$@"; }

boot_pi() { # boot_pi N: powers the emulated Pi on, the button's line high
	local n=$1
	start_qemu "$n" -M raspi3b -m 1G -accel tcg,thread=multi \
		-kernel "$work/Image" -initrd "$work/initramfs8" -dtb "$work/rpi3b.dtb" \
		-append "root=LABEL=rootfs rootfstype=ext4 rootwait fsck.repair=yes console=ttyS1,115200 systemd.show_status=1" \
		-drive "file=$card,if=sd,format=raw" \
		-device usb-serial,chardev=ctl \
		-monitor none -serial null -serial "file:$work/console-boot$n.log" \
		-qmp "unix:$qmp,server=on,wait=off" -gdb "unix:$gdb,server=on,wait=off" -S
	local i
	for ((i = 0; i < 50; i++)); do [[ -S $qmp && -S $gdb ]] && break; sleep 0.1; done
	# Before the kernel runs: the button is up (no pull-up in the model).
	pisoc level GPIO23 high || fail "boot $n: could not set the button's line high through the gdbstub"
	pisoc cont || fail "boot $n: QMP cont"
	note "boot $n: qemu pid $qemu_pid on raspi3b, QMP $qmp, gdbstub $gdb"
}

# guest CMD: runs CMD in the guest; its output (on one line) in $out.
guest() {
	send sh "$*"
	wait_reply sh 180 || fail "no answer from the guest to: $*"
	case $reply in
	"ok sh"*) out=${reply#ok sh} out=${out# } ;;
	*) fail "in the guest, '$*' failed: ${reply#fail sh }" ;;
	esac
}
status_json() { guest canaryctl status --json; st=$out; }

# panel_is NAME STATUS CANARY: the status JSON's leds are STATUS and CANARY,
# and the panel read from the registers shows them; both kept as NAME.
panel_is() {
	local name=$1 want_s=$2 want_c=$3 r
	status_json
	echo "$st" | jq . >"$outdir/status-$name.json"
	[[ $(jq -r .leds.status <<<"$st") == "$want_s" && $(jq -r .leds.canary <<<"$st") == "$want_c" ]] ||
		fail "$name: the status JSON's leds are $(jq -c .leds <<<"$st"), want status $want_s, canary $want_c"
	r=$(pisoc until -status "$want_s" -canary "$want_c" -for 20s) ||
		fail "$name: the panel in the registers does not show status $want_s, canary $want_c: $r"
	echo "$r" | jq . >"$outdir/panel-$name.json"
	note "$name: status JSON and registers agree: status $want_s, canary $want_c ($(jq -c '[.status_period_ms, .canary_period_ms]' <<<"$r") ms)"
}
state_is() { # state_is WANT WHAT
	status_json
	[[ $(jq -r .state <<<"$st") == "$1" ]] || fail "$2: state $(jq -r .state <<<"$st"), want $1"
}
traffic() { guest "for i in \$(seq $1); do curl -fsS -o /dev/null -m 10 http://127.0.0.1/ping || true; done"; }

# ---------------------------------------------------------------- boot 1
boot_pi 1
pisoc held -for "${boot_timeout}s" >"$outdir/panel-held.json" || fail "boot 1: canaryd did not take the LED lines within ${boot_timeout}s"
stage "boot 1: the LED lines are outputs (canaryd holds them)"
wait_reply ready "$boot_timeout" || fail "boot 1: the guest's report unit did not say ready"
ready=1
note "guest: $reply"

guest uname -m
[[ $out == aarch64 ]] || fail "uname -m in the guest: $out"
echo "$out" >"$outdir/arch.txt"
# gpioinfo names the consumer "canaryd" or, from periph, "canaryd@PID".
held_by_canaryd='"canaryd(@[0-9]+)?"'
gpio_report() { # gpio_report FILE: gpiodetect and gpioinfo in the guest
	guest "{ gpiodetect; gpioinfo; } | tr '\n' '\036'"
	tr '\036' '\n' <<<"$out" >"$1"
}
gpio_report "$outdir/gpioinfo.txt"
grep -q '^gpiochip0 \[pinctrl-bcm2835\] (54 lines)' "$outdir/gpioinfo.txt" || fail "gpioinfo.txt: gpiochip0 is not the BCM2835's pinctrl with 54 lines"
for l in GPIO17 GPIO22 GPIO23 GPIO27; do
	grep -E "\"$l\"[[:space:]]+$held_by_canaryd" "$outdir/gpioinfo.txt" >/dev/null ||
		fail "gpioinfo.txt: $l is not held by canaryd: $(grep "\"$l\"" "$outdir/gpioinfo.txt")"
done
grep -E "\"GPIO23\"[[:space:]]+$held_by_canaryd[[:space:]]+input.*pull-up" "$outdir/gpioinfo.txt" >/dev/null ||
	fail "gpioinfo.txt: the button's GPIO23 is not an input with its pull-up"
status_json
[[ $(jq -r .gpio <<<"$st") == periph ]] || fail "boot 1: canaryd runs with gpio $(jq -r .gpio <<<"$st"), want periph (the real pins)"
stage "boot 1: GPIO=periph on pinctrl-bcm2835; gpioinfo: canaryd holds GPIO17, GPIO22, GPIO23 (input), GPIO27"

traffic 15
panel_is serving green green
state_is canary "serving"

# Taps shorter than the debounce time (30 ms): no rollback. canaryd reads
# the line every 200 ms here, so some taps are read down once; the read
# 10 ms later must find them up.
for _ in $(seq 20); do
	pisoc press 15ms >/dev/null || fail "a tap through the gdbstub"
	sleep 0.$((RANDOM % 3 + 1))
done
state_is canary "20 taps of 15 ms"
stage "boot 1: 20 taps of 15 ms changed nothing (state canary)"

pressed=$(pisoc press 800ms) || fail "the press through the gdbstub"
note "$pressed"
for _ in $(seq 20); do
	status_json
	[[ $(jq -r .state <<<"$st") == rolled_back ]] && break
	sleep 0.5
done
state_is rolled_back "a press of 0.8 s"
[[ $(jq -r .latch.cause <<<"$st") == button ]] ||
	fail "after the press, the latch is $(jq -c .latch <<<"$st"), want it caused by the button"
panel_is rolled-back green red-blink
period=$(jq -r .canary_period_ms "$outdir/panel-rolled-back.json")
awk -v p="$period" 'BEGIN { exit !(p >= 400 && p <= 600) }' || fail "the red light blinks with a period of $period ms, want 500 (250 lit, 250 dark)"
guest canaryctl incidents --json
[[ $(jq '[.[] | select(.cause == "button")] | length' <<<"$out") -ge 1 ]] || fail "no incident report with cause button: $out"
stage "boot 1: a press of 0.8 s rolled back (cause button, incident written), red blinking at $period ms"

pisoc press 4500ms >/dev/null || fail "the long press through the gdbstub"
sleep 1
state_is canary "a press of 4.5 s"
panel_is resumed green green
stage "boot 1: a press of 4.5 s resumed"

pisoc press 500ms >/dev/null || fail "the press through the gdbstub"
sleep 1
state_is rolled_back "a press of 0.5 s"
finish_boot 1
mv "$outdir/guest" "$outdir/guest-boot1"
stage "boot 1: a press of 0.5 s rolled back again, for the reboot; guest powered off"

# ---------------------------------------------------------------- boot 2
boot_pi 2
pisoc held -for "${boot_timeout}s" >/dev/null || fail "boot 2: canaryd did not take the LED lines within ${boot_timeout}s"
# No request has been made: the panel shows the latch from the state file.
r=$(pisoc until -status green -canary red-blink -for 20s) || fail "boot 2: the panel at boot is not the latch's red blinking: $r"
echo "$r" | jq . >"$outdir/panel-at-boot.json"
stage "boot 2: the panel blinks red at boot, before the first request"
wait_reply ready "$boot_timeout" || fail "boot 2: the guest's report unit did not say ready"
ready=1
panel_is after-reboot green red-blink
[[ $(jq '[.upstreams[].requests] | add' <<<"$st") == 0 ]] || fail "boot 2: requests were served before the panel was read: $(jq -c '[.upstreams[].requests]' <<<"$st")"

guest canaryctl resume
panel_is resumed-after-reboot green green
guest systemctl stop canaryd-demo@pong-v2
traffic 40
for _ in $(seq 30); do
	status_json
	[[ $(jq -r .leds.canary <<<"$st") == red ]] && break
	traffic 10
done
panel_is bad-verdict green red
state_is canary "a bad verdict (auto_rollback is off: the light turns red, a person decides)"
guest systemctl start canaryd-demo@pong-v2
guest canaryctl promote
panel_is promoted green off
stage "boot 2: resumed, bad verdict (red), promoted (dark)"

guest "printf '[proxy\n' >/etc/canaryd/zz-broken.toml && canaryctl reload || true"
panel_is bad-config green-blink off
guest "rm /etc/canaryd/zz-broken.toml && canaryctl reload"
panel_is config-fixed green off
guest systemctl stop canaryd
r=$(pisoc until -status off -canary off -for 20s) || fail "canaryd stopped: the panel is not dark: $r"
echo "$r" | jq . >"$outdir/panel-stopped.json"
gpio_report "$outdir/gpioinfo-stopped.txt"
! grep -Eq "$held_by_canaryd" "$outdir/gpioinfo-stopped.txt" || fail "canaryd stopped, but gpioinfo still names it: $(grep canaryd "$outdir/gpioinfo-stopped.txt")"
guest systemctl start canaryd
stage "boot 2: a bad config (status blinks green), canaryd stopped (all dark, the lines free)"

finish_boot 2
for f in journal-verbose.txt systemctl-status.txt incidents.json; do
	cp "$outdir/guest/boot2/$f" "$outdir/$f" || fail "the guest wrote no $f"
done
grep -q '^    CAUSE=button' "$outdir/journal-verbose.txt" || fail "journal-verbose.txt: no rollback with CAUSE=button"
grep -q '^    BUTTON_SEEN=poll' "$outdir/journal-verbose.txt" || fail "journal-verbose.txt: no press seen by polling (BUTTON_SEEN=poll)"
cp "$work"/console-boot*.log "$outdir/"
stage "report: e2e-out/pi/ has gpioinfo.txt, the panel per state, journal-verbose.txt, systemctl-status.txt, the consoles"

# ---------------------------------------------------------------- the ARMv6 Pi
bash scripts/e2e-pi0.sh
stage "PASS"
