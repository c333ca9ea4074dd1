#!/usr/bin/env bash
# scripts/deb-test.sh [NEW.deb]: the amd64 package in a Debian bookworm root,
# as a user's apt and dpkg would treat it:
#   (a) an older version installs (apt resolves its dependencies): files and
#       modes, the conffile registered, the gpio group, the enable link; the
#       manual pages, which man -l (on this machine) renders without a
#       warning;
#   (b) the user edits /etc/canaryd/canaryd.toml, the current version is
#       installed over it non-interactively: the edit is kept; a unit the
#       admin disabled stays disabled across an upgrade;
#   (c) with state in /var/lib/private/canaryd (DynamicUser's StateDirectory),
#       purge removes it, the conffile and the enable link.
# NEW.deb defaults to dist/canaryd_<scripts/debversion.sh>_amd64.deb, built
# with scripts/deb.sh when missing. Run as root (make e2e does); installs
# mmdebstrap and man-db with apt-get when missing. The root is made with
# mmdebstrap --variant=minbase from this machine's own apt sources (so it
# works wherever apt does) and cached as a tarball, keyed on its package list
# and sources, in
#   ${XDG_CACHE_HOME:-/var/cache}/canary-pi/deb-test-root-<key>.tar
# so a warm run takes seconds. No mounts: nothing runs the daemon, and the
# chroot has no /run/systemd/system, as in an image build.
set -euo pipefail
cd "$(dirname "$0")/.."

T0=$SECONDS
stage() { printf '[deb-test %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
fail() {
	printf '[deb-test %4ds] FAIL: %s\n' "$((SECONDS - T0))" "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (chroot, dpkg in a Debian root): sudo bash scripts/deb-test.sh"
[ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] || fail "runs on an amd64 Debian host (tests the amd64 package natively)"

SUITE=bookworm
INCLUDE=init-system-helpers,passwd # the package's Depends
cache=${XDG_CACHE_HOME:-/var/cache}/canary-pi

# --- apt dependencies of this test ------------------------------------------
if ! command -v mmdebstrap >/dev/null; then
	stage "installing mmdebstrap with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get install -y --no-install-recommends mmdebstrap >/dev/null 2>&1 ||
		{ timeout 600 apt-get update -qq && timeout 600 apt-get install -y --no-install-recommends mmdebstrap >/dev/null; } ||
		fail "apt-get install mmdebstrap failed"
fi

if ! command -v man >/dev/null; then
	stage "installing man-db with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get install -y --no-install-recommends man-db groff-base >/dev/null 2>&1 ||
		{ timeout 600 apt-get update -qq && timeout 600 apt-get install -y --no-install-recommends man-db groff-base >/dev/null; } ||
		fail "apt-get install man-db failed"
fi

work=$(mktemp -d /tmp/deb-test.XXXXXX)
cleanup() { rm -rf --one-file-system "$work"; }
trap cleanup EXIT
root=$work/root

# --- the packages: the current one and an older one --------------------------
new=${1:-}
if [ -z "$new" ]; then
	version=$(bash scripts/debversion.sh)
	new=dist/canaryd_${version}_amd64.deb
	if [ ! -f "$new" ]; then
		stage "building $new (scripts/deb.sh, amd64 only)"
		DEB_ARCHES=amd64 timeout 600 bash scripts/deb.sh "$version" >/dev/null || fail "scripts/deb.sh $version failed"
	fi
fi
[ -f "$new" ] || fail "no package $new"
new_version=$(dpkg-deb -f "$new" Version)
[ "$(dpkg-deb -f "$new" Architecture)" = amd64 ] || fail "$new is not an amd64 package"

# The older package: the same binaries under a lower version, with a
# different example config so that the upgrade meets a conffile changed both
# by the package and by the user (the case dpkg would ask about).
old_version=0~test1
dpkg --compare-versions "$old_version" lt "$new_version" ||
	fail "test version $old_version does not sort before $new_version"
stage "building the older package $old_version"
{
	cat packaging/canaryd.toml
	printf '\n# (the older package %s shipped this line)\n' "$old_version"
} >"$work/old.toml"
DIST=$work/old DEB_ARCHES=amd64 DEB_CONFIG=$work/old.toml timeout 600 \
	bash scripts/deb.sh "$old_version" >/dev/null || fail "scripts/deb.sh $old_version failed"
old=$work/old/canaryd_${old_version}_amd64.deb

# --- the Debian root, cached --------------------------------------------------
# This machine's apt sources for $SUITE (one-line and deb822 files), the way
# it reaches Debian's mirrors, possibly offline through a local one.
srcdir=$work/sources
mkdir -p "$srcdir"
suite_re="(^|[[:space:]])$SUITE(-updates|-security|-backports)?([[:space:]]|$)"
i=0
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	if grep -E "^[[:space:]]*deb[[:space:]]" "$f" | grep -E "$suite_re" >"$srcdir/$i.list"; then
		i=$((i + 1))
	else
		rm -f "$srcdir/$i.list"
	fi
done
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	if grep -Eiq "^Suites:.*$suite_re" "$f"; then
		cp "$f" "$srcdir/$i.sources"
		i=$((i + 1))
	fi
done
mirrors=("$srcdir"/*)
if [ ! -e "${mirrors[0]}" ]; then
	stage "no $SUITE entry in /etc/apt/sources.list{,.d}: using http://deb.debian.org/debian"
	mirrors=()
fi

key=$( {
	echo "suite=$SUITE arch=amd64 variant=minbase include=$INCLUDE"
	cat "${mirrors[@]}" 2>/dev/null | grep -v '^[[:space:]]*#'
} | sha256sum | cut -c1-16)
tarball=$cache/deb-test-root-$key.tar
if [ -f "$tarball" ]; then
	stage "Debian $SUITE root from the cache: $tarball"
else
	stage "building the Debian $SUITE amd64 root (mmdebstrap minbase + $INCLUDE) into $tarball"
	mkdir -p "$cache"
	tmp=$cache/.deb-test-root-$key.$$.tar # mmdebstrap picks the format by the .tar
	timeout 1200 mmdebstrap --quiet --variant=minbase --architectures=amd64 --include="$INCLUDE" \
		"$SUITE" "$tmp" "${mirrors[@]}" >"$work/mmdebstrap.log" 2>&1 || {
		rm -f "$tmp"
		tail -30 "$work/mmdebstrap.log" >&2
		fail "mmdebstrap failed (log above)"
	}
	mv "$tmp" "$tarball"
	stage "root built"
fi
mkdir -p "$root"
timeout 300 tar -C "$root" -xf "$tarball" || fail "extracting $tarball failed"
# As in an image build: nothing may start services in this root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp "$old" "$root/tmp/old.deb"
cp "$new" "$root/tmp/new.deb"

# in_root CMD...: runs in the root, bounded, with a clean environment.
in_root() {
	timeout 300 env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"
}
# run_root WHAT CMD...: in_root, failing with its output.
run_root() {
	local what=$1
	shift
	if ! in_root "$@" >"$work/out" 2>&1; then
		cat "$work/out" >&2
		fail "$what: '$*' failed in the root (output above)"
	fi
}
# mode PATH WANT: octal mode and owner.
mode() {
	local got
	got=$(stat -c '%a %U:%G' "$root$1" 2>/dev/null) || fail "$1 missing"
	[ "$got" = "$2" ] || fail "$1 is $got, want $2"
}
link=/etc/systemd/system/multi-user.target.wants/canaryd.service
conffile=/etc/canaryd/canaryd.toml

# --- (a) install the older version -------------------------------------------
in_root getent group gpio >/dev/null && fail "the fresh root already has a gpio group: the test would prove nothing"
stage "(a) apt-get install ./old.deb ($old_version)"
run_root "install of $old_version" apt-get install -y --no-install-recommends /tmp/old.deb
got=$(in_root dpkg-query -W -f='${Status} ${Version}' canaryd) || fail "canaryd not known to dpkg after install"
[ "$got" = "install ok installed $old_version" ] || fail "after install: dpkg says '$got'"
mode /usr/bin/canaryd "755 root:root"
mode /usr/bin/canaryctl "755 root:root"
for u in canaryd.service canaryd.socket canaryd-demo@.service; do
	mode "/usr/lib/systemd/system/$u" "644 root:root"
done
mode $conffile "644 root:root"
mode /usr/share/doc/canaryd/copyright "644 root:root"
mode /usr/share/doc/canaryd/README.md "644 root:root"
mode /usr/share/lintian/overrides/canaryd "644 root:root"
# The manual pages, rendered as lintian checks them but at 80 columns; by
# this machine's man: the minbase root has none.
for page in man8/canaryd.8 man8/canaryctl.8 man5/canaryd.toml.5; do
	mode "/usr/share/man/$page.gz" "644 root:root"
	gzip -t "$root/usr/share/man/$page.gz" || fail "/usr/share/man/$page.gz is not gzip"
	if ! warnings=$(env -i PATH="$PATH" LC_ALL=C.UTF-8 MANWIDTH=80 MANROFFSEQ= \
		timeout 60 man --warnings -E UTF-8 -l -Tutf8 -Z "$root/usr/share/man/$page.gz" 2>&1 >/dev/null); then
		fail "man -l /usr/share/man/$page.gz failed: $warnings"
	fi
	[ -z "$warnings" ] || fail "man -l /usr/share/man/$page.gz warns: $warnings"
done
in_root dpkg-query -W -f='${Conffiles}\n' canaryd | grep -Eq "^ $conffile [0-9a-f]{32}$" ||
	fail "$conffile is not registered as a conffile: $(in_root dpkg-query -W -f='${Conffiles}' canaryd)"
gpio=$(in_root getent group gpio) || fail "postinst did not create the gpio group"
gid=$(cut -d: -f3 <<<"$gpio")
[ "$gid" -lt 1000 ] || fail "gpio group $gpio is not a system group"
ctlgroup=$(in_root getent group canaryctl) || fail "postinst did not create the canaryctl group (the admin socket's)"
[ "$(cut -d: -f3 <<<"$ctlgroup")" -lt 1000 ] || fail "canaryctl group $ctlgroup is not a system group"
[ -L "$root$link" ] || fail "no enable link $link"
# deb-systemd-helper links to the path it finds first: /lib/systemd/system on
# a merged-/usr root (bookworm's /lib is a link to usr/lib), /usr/lib otherwise.
target=$(readlink "$root$link")
case $target in
/lib/systemd/system/canaryd.service | /usr/lib/systemd/system/canaryd.service) ;;
*) fail "$link points at $target" ;;
esac
[ -f "$root$target" ] || fail "$link points at $target, which is not in the root"
[ -e "$root/etc/systemd/system/sockets.target.wants/canaryd.socket" ] &&
	fail "canaryd.socket was enabled: it must stay opt-in"
run_root "static binary and shipped config" /usr/bin/canaryd -check-config /etc/canaryd
stage "(a) ok: files, modes, manual pages, conffile, gpio group (gid $gid), $link"

# --- (a') a new installation serves the demo, never 502s to nothing ----------
# postinst enabled the demo backends (the shipped config proxies to them).
# The chroot runs no systemd: each enabled unit's command lines are run here
# by hand, its ExecCondition first, and GET /ping through canaryd must give
# pong-v1 and pong-v2 at 10:5.
wants=/etc/systemd/system/multi-user.target.wants
for b in pong-v1 pong-v2; do
	[ -L "$root$wants/canaryd-demo@$b.service" ] || fail "postinst did not enable canaryd-demo@$b (the shipped config proxies to it)"
done
pids=()
stop_demo() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_demo; cleanup' EXIT
for b in pong-v1 pong-v2; do
	in_root /usr/bin/canaryd -demo-backend $b -demo-used-by /etc/canaryd >/dev/null ||
		fail "canaryd-demo@$b's ExecCondition refuses the shipped config"
	in_root /usr/bin/canaryd -demo-backend $b >"$work/$b.log" 2>&1 &
	pids+=($!)
done
port=$((20000 + RANDOM % 20000))
mkdir -p "$root/tmp/state"
# The shipped status page's 127.0.0.1:9090 is this machine's too (a chroot
# shares its network): off for the test, the file removed after.
printf '[admin]\nlisten = ""\n' >"$root/etc/canaryd/zz-deb-test.toml"
in_root /usr/bin/canaryd -config-dir /etc/canaryd -state-dir /tmp/state -gpio off -listen "127.0.0.1:$port" >"$work/canaryd.log" 2>&1 &
pids+=($!)
answers=
for _ in $(seq 100); do
	curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/ping" 2>/dev/null && break
	sleep 0.1
done
for _ in $(seq 15); do
	answers+=$(curl -sS -m 5 "http://127.0.0.1:$port/ping" 2>&1)$'\n'
done
stop_demo
rm -f "$root/etc/canaryd/zz-deb-test.toml"
v1=$(grep -c '^{"message":"pong-v1"}$' <<<"$answers" || true)
v2=$(grep -c '^{"message":"pong-v2"}$' <<<"$answers" || true)
if [ "$v1" != 10 ] || [ "$v2" != 5 ]; then
	cat "$work/canaryd.log" >&2
	fail "a new installation: 15 GET /ping gave $v1 pong-v1 and $v2 pong-v2, want 10 and 5:
$answers"
fi
stage "(a') ok: the demo backends enabled, GET /ping through canaryd gives 10 pong-v1 and 5 pong-v2"

# --- (b) edit the config, upgrade --------------------------------------------
grep -Eq '^weight = 5([[:space:]]|$)' "$root$conffile" || fail "no 'weight = 5' line in $conffile to edit"
sed -i -E 's/^weight = 5([[:space:]]|$)/weight = 7\1/' "$root$conffile"
grep -Eq '^weight = 7' "$root$conffile" || fail "could not edit $conffile"
stage "(b) weight 5 -> 7 edited; dpkg --force-confold -i ./new.deb ($new_version)"
run_root "upgrade to $new_version" dpkg --force-confdef --force-confold -i /tmp/new.deb
got=$(in_root dpkg-query -W -f='${Status} ${Version}' canaryd)
[ "$got" = "install ok installed $new_version" ] || fail "after upgrade: dpkg says '$got'"
grep -Eq '^weight = 7' "$root$conffile" || fail "the upgrade lost the user's edit of $conffile"
[ -f "$root$conffile.dpkg-dist" ] || fail "no $conffile.dpkg-dist: the new package's config was not offered beside the kept one"
dpkg-deb --fsys-tarfile "$new" | tar -xO ".$conffile" | cmp -s - "$root$conffile.dpkg-dist" ||
	fail "$conffile.dpkg-dist is not the new package's config"
[ -L "$root$link" ] || fail "the upgrade removed the enable link"
[ "$(in_root getent group gpio)" = "$gpio" ] || fail "the upgrade changed the gpio group"
[ "$(in_root getent group canaryctl)" = "$ctlgroup" ] || fail "the upgrade changed the canaryctl group"
run_root "edited config after the upgrade" /usr/bin/canaryd -check-config /etc/canaryd
# A config proxying elsewhere: the demo backends no longer start.
cp "$root$conffile" "$work/kept.toml"
sed -i 's/127\.0\.0\.1:8001/127.0.0.1:9001/' "$root$conffile"
in_root /usr/bin/canaryd -demo-backend pong-v1 -demo-used-by /etc/canaryd >/dev/null &&
	fail "canaryd-demo@pong-v1's ExecCondition passes with a config that proxies elsewhere"
cp "$work/kept.toml" "$root$conffile"

# An admin's `systemctl disable` (which removes the link) holds across
# upgrades: the was-enabled dance. `systemctl enable` brings it back.
rm "$root$link"
run_root "reinstall of $new_version" dpkg --force-confdef --force-confold -i /tmp/new.deb
[ -e "$root$link" ] && fail "an upgrade re-enabled canaryd.service that the admin had disabled"
ln -s "$target" "$root$link"
stage "(b) ok: edit kept, new config beside it as .dpkg-dist, enable link kept, a disabled unit stays disabled"

# --- (c) state, then purge ----------------------------------------------------
# What systemd makes for DynamicUser=yes + StateDirectory=canaryd.
mkdir -p "$root/var/lib/private/canaryd"
chmod 0700 "$root/var/lib/private"
echo '{"rolled_back":true,"canary_version":"v2"}' >"$root/var/lib/private/canaryd/state.json"
ln -s private/canaryd "$root/var/lib/canaryd"
# What the unit's ExecStartPre leaves in /etc/canaryd on a flashed Pi.
mkdir -p "$root/boot/firmware/canaryd"
cp "$root$conffile" "$root/boot/firmware/canaryd/"
run_root "canaryd -import-config" canaryd -import-config /boot/firmware/canaryd -config-dir /etc/canaryd
[ -f "$root/etc/canaryd/.imported" ] || fail "canaryd -import-config left no /etc/canaryd/.imported"
stage "(c) state in /var/lib/private/canaryd, an import record in /etc/canaryd; dpkg --purge canaryd"
run_root "purge" dpkg --purge canaryd
got=$(in_root dpkg-query -W -f='${Status}' canaryd 2>/dev/null || true)
case $got in "" | "unknown ok not-installed" | "deinstall ok not-installed") ;; *) fail "after purge: dpkg says '$got'" ;; esac
for p in /var/lib/private/canaryd /var/lib/canaryd $conffile $conffile.dpkg-dist /etc/canaryd \
	/usr/bin/canaryd /usr/lib/systemd/system/canaryd.service /usr/share/man/man8/canaryd.8.gz $link \
	$wants/canaryd-demo@pong-v1.service $wants/canaryd-demo@pong-v2.service \
	/var/lib/systemd/deb-systemd-helper-enabled/canaryd.service.dsh-also; do
	if [ -e "$root$p" ] || [ -L "$root$p" ]; then
		fail "$p still there after purge"
	fi
done
stage "(c) ok: state dir, conffile, enable link and deb-systemd-helper state gone"
stage "PASS: canaryd $old_version -> $new_version installs, upgrades keeping the edited config, purges clean"
