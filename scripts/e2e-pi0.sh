#!/usr/bin/env bash
# scripts/e2e-pi0.sh: the ARMv6 Pi (issue 19). canaryd's ARMv6 build (make
# arm: bin/linux_armv6/, static) on QEMU's raspi0 (BCM2835, ARM1176: a Pi
# Zero) with Debian bookworm's armel kernel for the BCM2835 (linux-image-rpi)
# and its unmodified Pi Zero device tree, driving the SoC's real GPIO block
# through the kernel's pinctrl-bcm2835 and the GPIO character device
# (-gpio periph). The host reads the panel out of the GPIO registers and
# presses the button on them (scripts/pisoc):
#   1. uname -m in the guest is armv6l;
#   2. canaryd says gpio periph and holds GPIO17, 22, 23 and 27;
#   3. the panel read from the registers is what the status JSON says while
#      the canary serves, after canaryctl rollback (red blinking, its period
#      measured) and after canaryctl resume;
#   4. a 0.8 s press from the host rolls back, cause button;
#   5. after SIGTERM every LED is dark and the lines are free.
#
# The root is an initramfs (busybox-static, canaryd, canaryctl, the package's
# example config, scripts/e2e/pi0/init, and gpioinfo with its libgpiod and
# libc from Debian's armel packages), not a Debian root with systemd:
# the point here is the ARMv6 binary on the BCM2835's GPIO block (make e2e-pi
# boots the image with systemd on a Pi 3), and a whole armel root built under
# qemu-user and booted on one emulated ARM1176 would take many minutes for
# nothing these checks look at. The kernel needs no modules for them:
# PINCTRL_BCM2835, GPIO_CDEV, DEBUG_FS and the PL011 are built in.
#
# One kernel argument is not the Pi's: initcall_blacklist=
# bcm2835_power_driver_init. The kernel's BCM2835 power-domain driver reads
# the ASB bridge's ID register (0x2000a020), which QEMU 7.2 does not model:
# the read is an external abort, and the kernel panics in
# bcm2835_power_probe before userspace. Nothing here needs power domains.
# The "Division by zero in kernel" traces from bcm2835_i2c_probe on the
# console are QEMU's clock model giving the I2C block 0 Hz: no I2C is used.
#
# The guest is driven through its console (the PL011, ttyAMA0, QEMU's first
# serial port, as two fifos): its /init reads one command a line and frames
# the answer in markers (see scripts/e2e/pi0/init). QEMU starts paused (-S)
# so that the host sets GPIO23 high (the button released: QEMU models no
# pull-ups) before the kernel and canaryd run; QEMU raises no edge
# interrupts, so canaryd's 200 ms polling is what sees the press.
#
# Runs as root (as make e2e). Results in $E2E_OUT/pi0 (default e2e-out/pi0 at
# the repo root): arch.txt, gpioinfo*.txt, gpio-debugfs*.txt, status-*.json,
# panel-*.json, canaryd.log, console.txt (FAILED.txt says why if it fails).
# Environment:
#   E2E_OUT, E2E_KEEP=1 keeps the work dir, E2E_CACHE (default
#   /var/cache/canary-pi; the packages, the kernel and the base initramfs in
#   $E2E_CACHE/pi0/KEY, KEY a hash of this script, scripts/e2e/pi0 and the
#   packages' versions), E2E_PI0_MACHINE (raspi0, or raspi1ap),
#   E2E_BOOT_TIMEOUT (s, default 180), E2E_PI0_APPEND (the kernel arguments
#   after the console's; default the initcall_blacklist above, "" shows the
#   panic without it).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
outdir=${E2E_OUT:-$repo/e2e-out}/pi0
cache_root=${E2E_CACHE:-/var/cache/canary-pi}/pi0
machine=${E2E_PI0_MACHINE:-raspi0}
boot_timeout=${E2E_BOOT_TIMEOUT:-180}
gpio_base=0x20200000 # the BCM2835's GPIO block (0x7e200000 on the bus)
uart_base=0x20201000 # its PL011: earlycon shows a panic before the console driver is up
append=${E2E_PI0_APPEND-initcall_blacklist=bcm2835_power_driver_init}
case $machine in
raspi0) dtb_name=bcm2835-rpi-zero.dtb ;;
raspi1ap) dtb_name=bcm2835-rpi-a-plus.dtb ;;
*) echo "e2e-pi0: E2E_PI0_MACHINE=$machine: want raspi0 or raspi1ap" >&2; exit 2 ;;
esac

E2E_NAME=e2e-pi0
# stage, note and need_tools; the cleanup and fail below are this script's.
# shellcheck source=scripts/e2e/lib.sh
. scripts/e2e/lib.sh

qemu_pid=
reader_pid=
work=
console=
cleanup() {
	# ifs, not &&: under set -e a failed kill of a QEMU already gone would
	# end the trap before the console is saved.
	if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null || true; fi
	if [[ -n $reader_pid ]]; then kill "$reader_pid" 2>/dev/null || true; fi
	if [[ -n $console && -s $console && -d $outdir ]]; then
		# All of it, the kernel's messages and the checks' markers.
		tr -d '\r' <"$console" >"$outdir/console.txt"
	fi
	if [[ -n $work && -z ${E2E_KEEP:-} ]]; then rm -rf "$work"; fi
	if [[ -n $work && -n ${E2E_KEEP:-} ]]; then note "kept $work"; fi
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM # through the EXIT trap: QEMU is killed, the console kept

booted=
fail() {
	echo "e2e-pi0: FAIL: $*" >&2
	echo "FAIL: $*" >"$outdir/FAILED.txt"
	# Where the emulated CPU is, whether the guest answers or not.
	if [[ -n $qemu_pid && -x $work/pisoc ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		for c in "info status" "info registers" "x /8i \$pc" "info irq" "info pic"; do
			echo "== $c"
			timeout 10 "$work/pisoc" -qmp "$work/qmp.sock" hmp "$c" 2>&1
		done >"$outdir/qemu-state.txt"
		sleep 1
		{
			echo "== info registers, a second later"
			timeout 10 "$work/pisoc" -qmp "$work/qmp.sock" hmp "info registers" 2>&1
		} >>"$outdir/qemu-state.txt"
	fi
	# canaryd's own log, if the guest still answers.
	if [[ -n $booted ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		run 20 "cat /var/log/canaryd.log" >"$work/canaryd.log" 2>/dev/null && mv "$work/canaryd.log" "$outdir/canaryd.log"
	fi
	if [[ -n $console && -s $console ]]; then
		echo "e2e-pi0: ----- last 60 lines of the guest console -----" >&2
		tail -n 60 "$console" | tr -d '\r' >&2
		echo "e2e-pi0: ----- end of the guest console -----" >&2
	fi
	echo "e2e-pi0: what there is is in $outdir" >&2
	exit 1
}

# ---------------------------------------------------------------- tools
[[ $(id -u) == 0 ]] || { echo "e2e-pi0: run as root (apt-get download into $cache_root)" >&2; exit 1; }
need_tools qemu-system-arm:qemu-system-arm cpio:cpio jq:jq gzip:gzip dpkg-deb:dpkg
mkdir -p "$outdir" "$cache_root"
rm -f "$outdir"/*.json "$outdir"/*.txt "$outdir"/*.log # ours only: e2e-out's other results stay
work=$(mktemp -d /var/tmp/canary-e2e-pi0.XXXXXX)
console=$work/console.log
stage "tools; work dir $work, results in $outdir"

# ---------------------------------------------------------------- binaries
${MAKE:-make} --no-print-directory arm >"$work/make-arm.log" 2>&1 || { cat "$work/make-arm.log"; fail "make arm"; }
for b in canaryd canaryctl; do
	file -b "bin/linux_armv6/$b" 2>/dev/null | grep -q 'ARM, EABI5.*statically linked' ||
		[[ $(od -An -tx1 -j18 -N2 "bin/linux_armv6/$b" | tr -d ' ') == 2800 ]] ||
		fail "bin/linux_armv6/$b is not a static 32-bit ARM executable"
done
go build -o "$work/pisoc" ./scripts/pisoc || fail "go build ./scripts/pisoc"
stage "make arm (bin/linux_armv6), pisoc built"

# ---------------------------------------------------------------- kernel, busybox, gpioinfo
# Debian's armel packages through the machine's apt sources, with lists of
# our own (the system's apt state is not touched), without adding armel to
# dpkg's architectures. gpioinfo is libgpiod's, dynamic: it comes with its
# library, libc and the loader, and nothing else of a Debian root.
aptdir=$cache_root/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
apt_opts=(-o APT::Architectures::=amd64 -o APT::Architectures::=armel
	-o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq >"$work/apt-update.log" 2>&1 ||
	note "apt-get update failed ($(tail -n1 "$work/apt-update.log")); using the lists from the last run"
# The versions in two apt-cache calls (each reads all the lists, ~1 s).
pkgs=(busybox-static gpiod libgpiod2 libc6)
show=$(apt-cache "${apt_opts[@]}" show --no-all-versions linux-image-rpi:armel "${pkgs[@]/%/:armel}" 2>/dev/null) ||
	fail "apt-cache show linux-image-rpi ${pkgs[*]} (armel): not in Debian's lists ($aptdir/lists)"
kpkg=$(awk '/^Package: linux-image-rpi$/ { p = 1 } p && /^Depends:/ { print; exit }' <<<"$show" |
	grep -o 'linux-image-[0-9.]*-[0-9]*-rpi' | head -n1)
[[ -n $kpkg ]] || fail "no linux-image-*-rpi behind linux-image-rpi:armel in Debian's lists ($aptdir/lists)"
show+=$'\n\n'$(apt-cache "${apt_opts[@]}" show --no-all-versions "$kpkg:armel" 2>/dev/null || true)
pkgs=("$kpkg" "${pkgs[@]}")
for i in "${!pkgs[@]}"; do # NAME=VERSION, armel
	v=$(awk -v p="${pkgs[i]}" '/^Package: / { on = ($2 == p) } on && /^Version: / { print $2; exit }' <<<"$show")
	[[ -n $v ]] || fail "no version of ${pkgs[i]}:armel in Debian's lists ($aptdir/lists)"
	pkgs[i]=${pkgs[i]}=$v
done
key=$( {
	cat "${BASH_SOURCE[0]}"
	(cd scripts/e2e/pi0 && find . -type f | LC_ALL=C sort | while read -r f; do echo "$f $(stat -c %a "$f")"; cat "$f"; done)
	cat packaging/canaryd.toml
	printf '%s\n' "${pkgs[@]}"
} | sha256sum | cut -c1-16)
cache=$cache_root/$key
if [[ ! -s $cache/base.cpio.gz ]]; then
	rm -rf "$cache.tmp"
	mkdir -p "$cache.tmp/debs"
	(cd "$cache.tmp/debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]/=/:armel=}") >"$work/apt-download.log" 2>&1 ||
		{ cat "$work/apt-download.log"; fail "apt-get download ${pkgs[*]} (armel)"; }
	x=$cache.tmp/x
	for d in "$cache.tmp"/debs/*.deb; do dpkg-deb -x "$d" "$x"; done
	kname=${kpkg#linux-image-}
	cp "$x/boot/vmlinuz-$kname" "$cache.tmp/zImage"
	cp "$x/boot/config-$kname" "$cache.tmp/config"
	cp "$x/usr/lib/linux-image-$kname"/bcm2835-rpi-*.dtb "$cache.tmp/"
	# The base initramfs: busybox, gpioinfo, /init, the config. canaryd and
	# canaryctl come per run in a second archive appended to it (the kernel
	# unpacks concatenated archives in turn).
	r=$cache.tmp/root
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,var/log,var/lib/canaryd,etc/canaryd}
	mkdir -p "$r"/lib/arm-linux-gnueabi "$r"/usr/lib/arm-linux-gnueabi
	cp "$x/bin/busybox" "$r/bin/busybox"
	cp -a "$x/lib/ld-linux.so.3" "$r/lib/"
	cp -a "$x"/lib/arm-linux-gnueabi/{ld-linux.so.3,libc.so.6} "$r/lib/arm-linux-gnueabi/"
	cp -a "$x"/usr/lib/arm-linux-gnueabi/libgpiod.so.2* "$r/usr/lib/arm-linux-gnueabi/"
	cp -a "$x/usr/bin/gpioinfo" "$r/usr/bin/"
	install -m 0755 scripts/e2e/pi0/init "$r/init"
	cp packaging/canaryd.toml "$r/etc/canaryd/canaryd.toml"
	# The package's canaryctl group, for the admin socket's group.
	printf 'root:x:0:0:root:/:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\ncanaryctl:x:999:\n' >"$r/etc/group"
	(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$cache.tmp/base.cpio.gz"
	rm -rf "$x" "$r"
	# Older keys' kernels and roots go; the apt lists and this one stay.
	find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name apt ! -name "$key.tmp" -exec rm -rf {} +
	mv "$cache.tmp" "$cache"
	stage "${pkgs[*]} (armel) downloaded, base initramfs built, cached in $cache"
else
	stage "${pkgs[*]} (armel) from $cache"
fi
# The kernel's own word on what the checks need built in.
for opt in CONFIG_ARCH_BCM2835 CONFIG_ARCH_MULTI_V6 CONFIG_PINCTRL_BCM2835 CONFIG_GPIO_CDEV CONFIG_DEBUG_FS \
	CONFIG_DEVTMPFS CONFIG_BLK_DEV_INITRD CONFIG_RD_GZIP CONFIG_SERIAL_AMBA_PL011_CONSOLE; do
	grep -qx "$opt=y" "$cache/config" || fail "$kpkg: $opt is not built in (/boot/config-*)"
done

# This run's binaries, as a second archive.
mkdir -p "$work/bin-root/bin"
cp bin/linux_armv6/canaryd bin/linux_armv6/canaryctl "$work/bin-root/bin/"
(cd "$work/bin-root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$work/bin.cpio.gz"
cat "$cache/base.cpio.gz" "$work/bin.cpio.gz" >"$work/initrd.cpio.gz"
stage "initramfs with this tree's ARMv6 canaryd and canaryctl"

# ---------------------------------------------------------------- QEMU
con=$work/con
mkfifo "$con.in" "$con.out"
: >"$console"
qemu-system-arm -M "$machine" -m 512 \
	-kernel "$cache/zImage" -dtb "$cache/$dtb_name" -initrd "$work/initrd.cpio.gz" \
	-append "console=ttyAMA0,115200 earlycon=pl011,$uart_base rdinit=/init $append" \
	-display none -monitor none -serial "pipe:$con" -no-reboot -S \
	-qmp "unix:$work/qmp.sock,server=on,wait=off" -gdb "unix:$work/gdb.sock,server=on,wait=off" \
	>"$work/qemu.log" 2>&1 &
qemu_pid=$!
exec 4<>"$con.in" # read-write: a write never blocks, even after QEMU is gone
cat "$con.out" >>"$console" &
reader_pid=$!
pisoc() { "$work/pisoc" -base "$gpio_base" "$@"; }
for ((i = 0; i < 100; i++)); do
	[[ -S $work/qmp.sock && -S $work/gdb.sock ]] && break
	kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited: $(tail -n 3 "$work/qemu.log")"
	sleep 0.1
done
[[ -S $work/gdb.sock ]] || fail "QEMU made no gdbstub socket in 10 s"
# The button released before anything runs: QEMU's GPIO23 reads low (pressed)
# until a wire pulls it up. Then the machine runs (pisoc's stub already
# continues as it disconnects; cont on a running QEMU changes nothing).
pisoc -gdb "$work/gdb.sock" level GPIO23 high || fail "pisoc level GPIO23 high (gdbstub)"
pisoc -qmp "$work/qmp.sock" cont || fail "pisoc cont (QMP)"
note "QEMU $machine pid $qemu_pid; GPIO23 set high, running"

# run SECONDS COMMAND...: COMMAND in the guest's /init shell; its output on
# stdout, its status as run's. The console has every line; this takes the
# ones between this command's markers.
run() {
	local limit=$1 id end rc
	shift
	id=c$(date +%s%N) # unique without a counter: run is often called in $(...)
	echo "$id $*" >&4
	for ((end = SECONDS + limit; SECONDS < end; )); do
		if rc=$(tr -d '\r' <"$console" | sed -n "s/^@@end $id \([0-9]*\)\$/\1/p" | head -n1) && [[ -n $rc ]]; then
			tr -d '\r' <"$console" | sed -n "/^@@begin $id\$/,/^@@end $id [0-9]*\$/p" | sed '1d;$d'
			return "$rc"
		fi
		kill -0 "$qemu_pid" 2>/dev/null || { echo "QEMU exited" >&2; return 125; }
		sleep 0.2
	done
	echo "no answer to '$*' within ${limit}s" >&2
	return 124
}

for ((end = SECONDS + boot_timeout; SECONDS < end; )); do
	grep -q '^@@ready' "$console" && break
	if grep -q 'Kernel panic' "$console"; then
		sleep 1
		fail "the kernel panicked on $machine (console.txt): $(tr -d '\r' <"$console" | grep -m3 -E 'Unhandled fault|PC is at|Kernel panic' | tr '\n' ' ')"
	fi
	kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before the guest was up: $(tail -n 3 "$work/qemu.log")"
	sleep 0.5
done
grep -q '^@@ready' "$console" || fail "the guest's /init did not come up within ${boot_timeout}s on $machine"
booted=1
# The host's clock, for the log's and the incident reports' times (a Pi has
# no RTC; Raspberry Pi OS would take the time from the network).
run 10 "date -u -s @$(date +%s)" >/dev/null || note "could not set the guest's clock"
stage "boot: $machine, $(grep -m1 -o 'Linux version [^ ]*' "$console"), /init answers"

# ---------------------------------------------------------------- 1. armv6l
run 30 "uname -m" >"$outdir/arch.txt" || fail "uname -m in the guest"
[[ $(cat "$outdir/arch.txt") == armv6l ]] || fail "uname -m in the guest: $(cat "$outdir/arch.txt"), want armv6l"
run 30 "cat /proc/cpuinfo" >"$outdir/cpuinfo.txt" || true
run 30 "head -n 8 /sys/kernel/debug/gpio; ls -l /dev/gpiochip*" >"$outdir/gpiochips.txt" || fail "no GPIO chip in the guest"
grep -q 'pinctrl-bcm2835' "$outdir/gpiochips.txt" || fail "no pinctrl-bcm2835 gpiochip: $(cat "$outdir/gpiochips.txt")"
stage "1. uname -m: armv6l; $(grep -m1 -o 'gpiochip0: GPIOs [^,]*, parent: [^ ]*, pinctrl-bcm2835' "$outdir/gpiochips.txt")"

# ---------------------------------------------------------------- 2. periph, lines held
run 20 "canaryd -check-config /etc/canaryd" >"$work/check-config.txt" || fail "canaryd -check-config /etc/canaryd: $(cat "$work/check-config.txt")"
out=$(run 150 start) || { echo "$out" >"$outdir/start.txt"; fail "canaryd -gpio periph did not start: $(head -n 3 <<<"$out") (start.txt, canaryd.log)"; }
note "guest: $out"
pisoc -qmp "$work/qmp.sock" held -for 30s >"$outdir/panel-held.json" ||
	fail "the LED lines (GPIO22, 27, 17) are not outputs in the GPIO block after canaryd started"
status() { # status NAME: canaryctl status --json into status-NAME.json
	run 30 "ctl status --json" >"$outdir/status-$1.json" || fail "canaryctl status --json ($1): $(head -c 300 "$outdir/status-$1.json")"
	jq -e . "$outdir/status-$1.json" >/dev/null || fail "canaryctl status --json ($1) is not JSON: $(head -c 300 "$outdir/status-$1.json")"
}
field() { jq -r "$2" "$outdir/status-$1.json"; }
status serving
[[ $(field serving .gpio) == periph ]] || fail "canaryd's status says gpio $(field serving .gpio), want periph"
# Who holds the lines, in the kernel's words twice: libgpiod's gpioinfo (from
# Debian's armel gpiod) and debugfs.
run 30 "gpioinfo" >"$outdir/gpioinfo.txt" || fail "gpioinfo in the guest: $(head -c 300 "$outdir/gpioinfo.txt")"
run 30 "cat /sys/kernel/debug/gpio" >"$outdir/gpio-debugfs.txt" || fail "cat /sys/kernel/debug/gpio"
for n in 17 22 23 27; do
	# periph names itself canaryd@PID as the consumer.
	grep -Eq "\"GPIO$n\" +\"canaryd(@[0-9]+)?\" .*\[used" "$outdir/gpioinfo.txt" ||
		fail "gpioinfo: GPIO$n's consumer is not canaryd: $(grep "\"GPIO$n\"" "$outdir/gpioinfo.txt")"
	grep -Eq "\(GPIO$n +\|canaryd(@[0-9]+)? +\)" "$outdir/gpio-debugfs.txt" ||
		fail "/sys/kernel/debug/gpio: GPIO$n's consumer is not canaryd: $(grep "(GPIO$n " "$outdir/gpio-debugfs.txt")"
done
for n in 17 22 27; do
	grep -Eq "\"GPIO$n\" .* output " "$outdir/gpioinfo.txt" || fail "gpioinfo: GPIO$n (an LED) is not an output: $(grep "\"GPIO$n\"" "$outdir/gpioinfo.txt")"
done
grep -Eq '"GPIO23" .* input .*pull-up' "$outdir/gpioinfo.txt" ||
	fail "gpioinfo: GPIO23 (the button) is not an input with pull-up: $(grep '"GPIO23"' "$outdir/gpioinfo.txt")"
stage "2. gpio periph; GPIO17, 22, 23, 27 held by canaryd (gpioinfo.txt)"

# ---------------------------------------------------------------- 3. the panel per state
# panel NAME: the status JSON's lights, then the panel read from the
# registers until it shows them (20 s at most), into panel-NAME.json.
panel() {
	local s c
	s=$(field "$1" .leds.status)
	c=$(field "$1" .leds.canary)
	pisoc -qmp "$work/qmp.sock" until -status "$s" -canary "$c" -for 20s >"$outdir/panel-$1.json" ||
		fail "$1: the registers show $(jq -c '{status, canary, canary_period_ms}' "$outdir/panel-$1.json" 2>/dev/null), the status JSON status $s, canary $c"
	note "$1: state $(field "$1" .state), status $s, canary $c; registers $(jq -c '{status, canary, canary_period_ms, samples}' "$outdir/panel-$1.json")"
}
want_state() { # want_state NAME STATE STATUS CANARY
	[[ $(field "$1" .state) == "$2" ]] || fail "$1: state $(field "$1" .state), want $2"
	[[ $(field "$1" .leds.status) == "$3" && $(field "$1" .leds.canary) == "$4" ]] ||
		fail "$1: the status JSON's lights are $(jq -c .leds "$outdir/status-$1.json"), want status $3, canary $4"
}
want_state serving canary green green
panel serving

out=$(run 30 "ctl rollback") || fail "canaryctl rollback: $out"
status rollback
want_state rollback rolled_back green red-blink
[[ $(field rollback .latch.cause) == command ]] || fail "rollback: latch cause $(field rollback .latch.cause), want command"
panel rollback
period=$(jq -r '.canary_period_ms | floor' "$outdir/panel-rollback.json")
((period >= 400 && period <= 600)) || fail "rollback: the red light blinks with a period of ${period} ms in the registers, want about 500 (250 on, 250 off)"

out=$(run 30 "ctl resume") || fail "canaryctl resume: $out"
status resumed
want_state resumed canary green green
panel resumed
stage "3. the registers match the status: serving green/green, rolled back green/red-blink (${period} ms), resumed green/green"

# ---------------------------------------------------------------- 4. the button
pisoc -gdb "$work/gdb.sock" press 800ms >"$work/press.txt" || fail "pisoc press 800ms (gdbstub): $(cat "$work/press.txt")"
note "$(cat "$work/press.txt")"
for ((end = SECONDS + 20; SECONDS < end; )); do
	status button
	[[ $(field button .state) == rolled_back ]] && break
	sleep 1
done
want_state button rolled_back green red-blink
[[ $(field button .latch.cause) == button ]] || fail "button: latch cause $(field button .latch.cause), want button: $(jq -c .latch "$outdir/status-button.json")"
panel button
# Which path saw it: QEMU raises no edge interrupts, so canaryd's polling.
run 30 "cat /var/log/canaryd.log" >"$outdir/canaryd.log" || true
seen=$(grep -m1 'msg="the button was pressed"' "$outdir/canaryd.log" | grep -o 'BUTTON_SEEN=[a-z]*' || true)
[[ -n $seen ]] || fail "canaryd.log: no 'the button was pressed' entry"
stage "4. a 0.8 s press on GPIO23 rolled back (latch cause button, $seen)"

# ---------------------------------------------------------------- 5. SIGTERM
out=$(run 60 stop) || fail "canaryd on SIGTERM: $out"
note "guest: $out"
pisoc -qmp "$work/qmp.sock" watch -for 1.5s >"$outdir/panel-stopped.json" || fail "pisoc watch after SIGTERM"
[[ $(jq -r .status "$outdir/panel-stopped.json") == off && $(jq -r .canary "$outdir/panel-stopped.json") == off ]] ||
	fail "after SIGTERM the registers show status $(jq -r .status "$outdir/panel-stopped.json"), canary $(jq -r .canary "$outdir/panel-stopped.json"); want all dark"
run 30 "gpioinfo" >"$outdir/gpioinfo-stopped.txt" || fail "gpioinfo after SIGTERM"
run 30 "cat /sys/kernel/debug/gpio" >"$outdir/gpio-debugfs-stopped.txt" || fail "cat /sys/kernel/debug/gpio after SIGTERM"
! grep -q canaryd "$outdir/gpioinfo-stopped.txt" "$outdir/gpio-debugfs-stopped.txt" ||
	fail "after SIGTERM canaryd still holds: $(grep -h canaryd "$outdir/gpioinfo-stopped.txt" "$outdir/gpio-debugfs-stopped.txt" | tr -s ' ')"
for n in 17 22 23 27; do
	grep -Eq "\"GPIO$n\" +unused " "$outdir/gpioinfo-stopped.txt" || fail "gpioinfo after SIGTERM: GPIO$n is not free: $(grep "\"GPIO$n\"" "$outdir/gpioinfo-stopped.txt")"
done
run 30 "cat /var/log/canaryd.log" >"$outdir/canaryd.log" || true
stage "5. SIGTERM: canaryd exited, every LED dark in the registers, the lines free"

run 10 "poweroff -f" >/dev/null 2>&1 || true
for ((i = 0; i < 40; i++)); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.25; done
note "all checks passed; results in $outdir"
