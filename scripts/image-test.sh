#!/usr/bin/env bash
# image-test.sh: scripts/image.sh on a small stand-in Raspberry Pi OS image,
# built here without root (an MBR with a FAT32 "bootfs" then an ext4 "rootfs",
# as Raspberry Pi OS Lite), checked file by file. Part of `make test`.
#
# Needs (installs nothing): sfdisk (fdisk), mkfs.vfat/fsck.vfat (dosfstools),
# mtools, mkfs.ext4/debugfs/e2fsck (e2fsprogs), dpkg-deb, xz (xz-utils), file.
#
# The package: $IMAGE_TEST_DEB if set; else scripts/deb.sh (make deb's) for
# arm64 from bin/linux_arm64 (make arm), into a temporary directory; else a
# minimal one built here with dpkg-deb from bin/linux_arm64 or a fresh arm64
# build (or from $IMAGE_TEST_BIN_ARM64).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
IMAGE=$ROOT/scripts/image.sh
export MTOOLS_SKIP_CHECK=1 DEBUGFS_PAGER=__none__ PAGER=cat
export CANARYD=${CANARYD:-$ROOT/bin/canaryd}
export PATH=$PATH:/usr/sbin:/sbin # sfdisk, mkfs.*, debugfs: not in a user's PATH on Debian

missing=()
for t in sfdisk mkfs.vfat fsck.vfat mcopy mdir mtype mmd mkfs.ext4 debugfs e2fsck dumpe2fs dpkg-deb xz file truncate; do
	command -v "$t" >/dev/null || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "image-test: missing tools: ${missing[*]} (apt-get install fdisk dosfstools mtools e2fsprogs dpkg xz-utils file)" >&2
	exit 1
fi
[ -x "$CANARYD" ] || { echo "image-test: $CANARYD missing: make build first" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/image-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
start=$SECONDS
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { # check "what" command...
	local what=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}

# --- the package ------------------------------------------------------------
mkdeb() { # mkdeb ARCH DIR-WITH-BINARIES OUT.deb
	local arch=$1 bins=$2 out=$3 d
	d=$(mktemp -d "$T/debroot.XXXX")
	mkdir -p "$d/DEBIAN" "$d/usr/bin" "$d/usr/lib/systemd/system" "$d/etc/canaryd" "$d/usr/share/doc/canaryd"
	cp "$bins/canaryd" "$bins/canaryctl" "$d/usr/bin/"
	chmod 0755 "$d/usr/bin/"*
	cp systemd/canaryd.service systemd/canaryd.socket "systemd/canaryd-demo@.service" "$d/usr/lib/systemd/system/"
	cp packaging/canaryd.toml "$d/etc/canaryd/canaryd.toml"
	echo "canaryd (stand-in package for image-test)" >"$d/usr/share/doc/canaryd/copyright"
	chmod -R go-w "$d"
	echo /etc/canaryd/canaryd.toml >"$d/DEBIAN/conffiles"
	cat >"$d/DEBIAN/control" <<EOF
Package: canaryd
Version: 0.0~test
Architecture: $arch
Maintainer: canary-pi <canary-pi@localhost>
Description: canary-pi proxy (image-test stand-in)
EOF
	dpkg-deb --root-owner-group -Znone --build "$d" "$out" >/dev/null
}

DEB=${IMAGE_TEST_DEB:-}
bins=${IMAGE_TEST_BIN_ARM64:-bin/linux_arm64}
if [ -z "$DEB" ] && [ -f scripts/deb.sh ] && [ -x bin/linux_arm64/canaryd ] && [ -z "${IMAGE_TEST_BIN_ARM64:-}" ]; then
	# make deb's own script, for arm64 only, from make arm's binaries (make
	# test runs test-arm first), into the test's directory, not dist/.
	if DIST=$T/dist DEB_ARCHES=arm64 bash scripts/deb.sh 0.0~imagetest >"$T/deb.log" 2>&1; then
		DEB=$T/dist/canaryd_0.0~imagetest_arm64.deb
	else
		echo "image-test: scripts/deb.sh failed, using a stand-in package: $(tail -1 "$T/deb.log")"
	fi
fi
if [ -z "$DEB" ]; then
	if [ ! -x "$bins/canaryd" ] || [ ! -x "$bins/canaryctl" ]; then
		bins=$T/arm64
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bins/" ./cmd/canaryd ./cmd/canaryctl ||
			{ echo "image-test: cannot build the arm64 binaries" >&2; exit 1; }
	fi
	DEB=$T/canaryd_0.0~test_arm64.deb
	mkdeb arm64 "$bins" "$DEB"
fi
echo "image-test: package $DEB"
# The same contents, labelled armhf: refused for ARCH=arm64.
dpkg-deb -R "$DEB" "$T/wrong" && sed -i 's/^Architecture: .*/Architecture: armhf/' "$T/wrong/DEBIAN/control" &&
	dpkg-deb --root-owner-group -Znone --build "$T/wrong" "$T/wrong-armhf.deb" >/dev/null
rm -rf "$T/wrong"
dpkg-deb -x "$DEB" "$T/pkg"

# --- the stand-in Raspberry Pi OS image ---------------------------------------
FAT_START=8192 FAT_SECTORS=$((64 * 2048)) # 64 MiB at 4 MiB, as Raspberry Pi OS
EXT_START=$((FAT_START + FAT_SECTORS))

# skel DIR: a root file system skeleton as Raspberry Pi OS has it, without gpio.
skel() {
	local r=$1
	mkdir -p "$r/etc/systemd/system/getty.target.wants" "$r/usr/lib/systemd/system" "$r/usr/bin" \
		"$r/boot/firmware" "$r/var/lib" "$r/home/pi"
	ln -s usr/bin "$r/bin"
	ln -s usr/lib "$r/lib"
	printf 'root:x:0:\ndaemon:x:1:\nadm:x:4:pi\nshadow:x:42:\nusers:x:100:pi\nsystemd-journal:x:999:\nsystemd-network:x:998:\npi:x:1000:' >"$r/etc/group" # no final newline
	printf 'root:*::\ndaemon:*::\nadm:*::pi\nshadow:*::\nusers:*::pi\nsystemd-journal:!*::\nsystemd-network:!*::\npi:!::\n' >"$r/etc/gshadow"
	echo raspberrypi >"$r/etc/hostname"
	echo 'an old canaryd' >"$r/usr/bin/canaryd" # replaced by the package's
	printf '[Unit]\nDescription=Getty\n' >"$r/usr/lib/systemd/system/getty@.service"
	chmod 0644 "$r/etc/group" "$r/etc/hostname"
	chmod 0640 "$r/etc/gshadow"
}
# fatfiles DIR: what Raspberry Pi Imager and the firmware leave on bootfs.
fatfiles() {
	local f=$1
	mkdir -p "$f/overlays"
	echo 'console=serial0,115200 console=tty1 root=PARTUUID=12345678-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot' >"$f/cmdline.txt"
	printf '# For more options and information see\n# http://rptl.io/configtxt\ndtparam=audio=on\ncamera_auto_detect=1\ndisplay_auto_detect=1\nauto_initramfs=1\ndtoverlay=vc4-kms-v3d\narm_64bit=1\n' >"$f/config.txt"
	printf '#!/bin/bash\nset +e\nCURRENT_HOSTNAME=$(cat /etc/hostname | tr -d " \\t\\n\\r")\necho pi-test >/etc/hostname\nrm -f /boot/firstrun.sh\nexit 0\n' >"$f/firstrun.sh"
	printf '#cloud-config\nhostname: pi-test\nmanage_etc_hosts: true\nusers:\n- name: pi\n  groups: users,adm,gpio\n' >"$f/user-data"
	printf 'network:\n  version: 2\n  wifis:\n    wlan0:\n      dhcp4: true\n      access-points:\n        "home":\n          password: "secret"\n' >"$f/network-config"
	head -c 300000 /dev/urandom >"$f/kernel8.img"
	head -c 2000 /dev/urandom >"$f/overlays/vc4-kms-v3d.dtbo"
}
# mkbase OUT [EXT_MIB]: the two-partition image (p2 EXT_MIB MiB, 40 by default).
mkbase() {
	local out=$1 extmib=${2:-40} d
	d=$(mktemp -d "$T/base.XXXX")
	truncate -s $(((EXT_START + extmib * 2048) * 512)) "$out"
	printf 'label: dos\nstart=%d, size=%d, type=c\nstart=%d, type=83\n' "$FAT_START" "$FAT_SECTORS" "$EXT_START" |
		sfdisk -q "$out" >/dev/null || return 1
	truncate -s $((FAT_SECTORS * 512)) "$d/fat"
	mkfs.vfat -F 32 -s 1 -n BOOTFS "$d/fat" >/dev/null || return 1
	fatfiles "$d/boot"
	mcopy -s -m -i "$d/fat" "$d/boot/"* :: || return 1
	skel "$d/root"
	truncate -s $((extmib * 1024 * 1024)) "$d/ext"
	mkfs.ext4 -q -F -L rootfs -E root_owner=0:0 -d "$d/root" "$d/ext" || return 1
	printf 'sif /etc/gshadow gid 42\nsif /etc/group uid 0\nsif /etc/group gid 0\nsif /etc/gshadow uid 0\n' >"$d/cmds"
	debugfs -w -f "$d/cmds" "$d/ext" >/dev/null 2>&1
	dd if="$d/fat" of="$out" bs=512 seek="$FAT_START" conv=notrunc,sparse status=none
	dd if="$d/ext" of="$out" bs=512 seek="$EXT_START" conv=notrunc,sparse status=none
	cp -r "$d/boot" "$out.boot" # the FAT files as written, to compare
	rm -rf "$d"
}

# Accessors for an image made from the layout above.
ext() { echo "$1?offset=$((EXT_START * 512))"; }
fat() { echo "$1@@$((FAT_START * 512))"; }
e2cat() { debugfs -R "cat \"$2\"" "$(ext "$1")" 2>/dev/null; }
e2stat() { debugfs -R "stat \"$2\"" "$(ext "$1")" 2>/dev/null; }
e2type() { e2stat "$1" "$2" | sed -n '1s/.*Type: *\([a-z]*\).*/\1/p'; }
e2mode() { e2stat "$1" "$2" | sed -n '1s/.*Mode: *\([0-7]*\).*/\1/p'; }
e2owner() { e2stat "$1" "$2" | awk '/^User:/ { print $2 ":" $4 }'; }
e2link() { e2stat "$1" "$2" | sed -n 's/^Fast link dest: "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p'; }
fatcat() { mtype -i "$(fat "$1")" "::$2" 2>/dev/null; }
fathas() { mdir -b -i "$(fat "$1")" "::$2" >/dev/null 2>&1; }
lines() { [ "$(grep -c '' "$1")" -eq "$2" ]; }

if ! mkbase "$T/base.img"; then
	echo "image-test: cannot build the stand-in image" >&2
	exit 1
fi
basesum=$(sha256sum <"$T/base.img")

# --- 1: the default run: LAN admin on ------------------------------------------
run() { # run NAME args...: stdout in $T/NAME.out, stderr in $T/NAME.err, rc in $rc
	local name=$1; shift
	rc=0
	bash "$IMAGE" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
}
echo "--- image.sh on the stand-in (LAN admin)"
run lan --base "$T/base.img" --out "$T/out.img" --arch arm64 --deb "$DEB"
if [ $rc -ne 0 ]; then
	bad "image.sh exits 0 (rc $rc): $(head -3 "$T/lan.err")"
else
	ok "image.sh exits 0"
fi
O=$T/out.img
check "OUT written" test -s "$O"
check "no OUT.partial left" test ! -e "$O.partial"
check "BASE unchanged" test "$(sha256sum <"$T/base.img")" = "$basesum"
e2cat "$O" /usr/bin/canaryd >"$T/canaryd.arm"
check "/usr/bin/canaryd is an arm64 ELF" grep -q 'ELF 64-bit LSB.*ARM aarch64' <(file -b "$T/canaryd.arm")
check "/usr/bin/canaryd is the package's (the old one replaced)" cmp -s "$T/canaryd.arm" "$T/pkg/usr/bin/canaryd"
check "/usr/bin/canaryd mode 0755" test "$(e2mode "$O" /usr/bin/canaryd)" = 0755
check "/usr/bin/canaryd owner 0:0" test "$(e2owner "$O" /usr/bin/canaryd)" = 0:0
check "/usr/bin/canaryctl mode 0755 owner 0:0" test "$(e2mode "$O" /usr/bin/canaryctl) $(e2owner "$O" /usr/bin/canaryctl)" = "0755 0:0"
check "canaryd.service in /usr/lib/systemd/system, 0644" test "$(e2mode "$O" /usr/lib/systemd/system/canaryd.service)" = 0644
check "canaryd.service is the package's" cmp -s <(e2cat "$O" /usr/lib/systemd/system/canaryd.service) "$T/pkg/usr/lib/systemd/system/canaryd.service"
check "enable link in multi-user.target.wants" test "$(e2type "$O" /etc/systemd/system/multi-user.target.wants/canaryd.service)" = symlink
check "enable link points at the unit" test "$(e2link "$O" /etc/systemd/system/multi-user.target.wants/canaryd.service)" = /usr/lib/systemd/system/canaryd.service
for b in pong-v1 pong-v2; do
	check "the example config: canaryd-demo@$b enabled" test "$(e2link "$O" /etc/systemd/system/multi-user.target.wants/canaryd-demo@$b.service)" = /usr/lib/systemd/system/canaryd-demo@.service
done
check "multi-user.target.wants is a directory 0755" test "$(e2type "$O" /etc/systemd/system/multi-user.target.wants) $(e2mode "$O" /etc/systemd/system/multi-user.target.wants)" = "directory 0755"
e2cat "$O" /etc/canaryd/canaryd.toml >"$T/etc.toml"
check "/etc/canaryd/canaryd.toml from the package's example" grep -q '^\[proxy\]' "$T/etc.toml"
check "/etc/canaryd/canaryd.toml 0644 0:0" test "$(e2mode "$O" /etc/canaryd/canaryd.toml) $(e2owner "$O" /etc/canaryd/canaryd.toml)" = "0644 0:0"
e2cat "$O" /etc/group >"$T/group"
gid=$(awk -F: '$1 == "gpio" { print $3 }' "$T/group")
check "gpio group added to /etc/group" test -n "$gid"
check "gpio gid a free system gid < 1000" test "${gid:-x}" -lt 1000 -a "$(cut -d: -f3 "$T/group" | grep -cx "${gid:-x}")" -eq 1
check "/etc/group keeps its other lines" cmp -s <(head -8 "$T/group") <(printf 'root:x:0:\ndaemon:x:1:\nadm:x:4:pi\nshadow:x:42:\nusers:x:100:pi\nsystemd-journal:x:999:\nsystemd-network:x:998:\npi:x:1000:\n')
check "/etc/group keeps 0644 0:0" test "$(e2mode "$O" /etc/group) $(e2owner "$O" /etc/group)" = "0644 0:0"
check "gpio group added to /etc/gshadow" grep -qx 'gpio:!::' <(e2cat "$O" /etc/gshadow)
ctlgid=$(awk -F: '$1 == "canaryctl" { print $3 }' "$T/group")
check "canaryctl group added to /etc/group (the admin socket's)" test -n "$ctlgid"
check "canaryctl gid another free system gid < 1000" test "${ctlgid:-x}" -lt 1000 -a "${ctlgid:-x}" != "${gid:-x}" -a "$(cut -d: -f3 "$T/group" | grep -cx "${ctlgid:-x}")" -eq 1
check "canaryctl group added to /etc/gshadow" grep -qx 'canaryctl:!::' <(e2cat "$O" /etc/gshadow)
check "/etc/gshadow keeps 0640 0:42" test "$(e2mode "$O" /etc/gshadow) $(e2owner "$O" /etc/gshadow)" = "0640 0:42"
check "admin.token mode 0640" test "$(e2mode "$O" /etc/canaryd/admin.token)" = 0640
check "admin.token owner root:gpio" test "$(e2owner "$O" /etc/canaryd/admin.token)" = "0:${gid:-x}"
token=$(e2cat "$O" /etc/canaryd/admin.token)
check "admin.token holds a 40-character token" grep -qxE '[A-Za-z0-9]{40}' <<<"$token"
check "the token is printed once" test "$(grep -o -- "${token:-none}" "$T/lan.out" | wc -l)" -eq 1
check "how to reach it: http://raspberrypi.local:9090/" grep -q 'http://raspberrypi.local:9090/' "$T/lan.out"
check "how to reach it: Authorization: Bearer" grep -q "Authorization: Bearer" "$T/lan.out"
e2cat "$O" /etc/canaryd/lan-admin.toml >"$T/lan.toml"
check "/etc/canaryd/lan-admin.toml: listen 0.0.0.0:9090" grep -qx 'listen = "0.0.0.0:9090"' "$T/lan.toml"
check "/etc/canaryd/lan-admin.toml: token_file" grep -qx 'token_file = "admin.token"' "$T/lan.toml"
check "FAT canaryd/canaryd.toml = /etc/canaryd/canaryd.toml" cmp -s <(fatcat "$O" canaryd/canaryd.toml) "$T/etc.toml"
check "FAT canaryd/lan-admin.toml = /etc/canaryd/lan-admin.toml" cmp -s <(fatcat "$O" canaryd/lan-admin.toml) "$T/lan.toml"
check "no token on the FAT partition" test "$(mdir -b -i "$(fat "$O")" ::canaryd | sed 's|.*/||' | sort | paste -sd' ')" = "canaryd.toml lan-admin.toml"
mkdir -p "$T/fatall" && mcopy -s -n -i "$(fat "$O")" '::*' "$T/fatall/" 2>/dev/null
check "the token nowhere on the FAT partition" test -z "$(grep -rl -- "${token:-none}" "$T/fatall")"
for f in cmdline.txt config.txt firstrun.sh user-data network-config kernel8.img overlays/vc4-kms-v3d.dtbo; do
	check "FAT $f byte-identical" cmp -s <(fatcat "$O" "$f") "$T/base.img.boot/$f"
done
check "e2fsck -fn clean" e2fsck -fn "$(ext "$O")"
dd if="$O" of="$T/fat.part" bs=512 skip="$FAT_START" count="$FAT_SECTORS" status=none
check "fsck.vfat -n clean" fsck.vfat -n "$T/fat.part"
rm -f "$T/fat.part"

# -check-config: the validator in bin/canaryd (image.sh warns when it is missing).
probe=$("$CANARYD" -check-config "$T/none" 2>&1 || true)
if [[ $probe == *"flag provided but not defined"* ]]; then
	have_check=0
	echo "note: $CANARYD has no -check-config yet: the config validation checks are skipped"
else
	have_check=1
	mkdir -p "$T/etcdir"
	for f in canaryd.toml lan-admin.toml admin.token; do e2cat "$O" "/etc/canaryd/$f" >"$T/etcdir/$f"; done
	check "/etc/canaryd as written validates (canaryd -check-config)" "$CANARYD" -check-config "$T/etcdir"
fi

# --- 2: NO_LAN_ADMIN=1, over the image of run 1 (what it added goes) -------------
echo "--- NO_LAN_ADMIN=1"
rc=0
NO_LAN_ADMIN=1 bash "$IMAGE" --base "$O" --out "$T/nolan.img" --arch arm64 --deb "$DEB" >"$T/nolan.out" 2>"$T/nolan.err" || rc=$?
check "NO_LAN_ADMIN=1: exits 0" test $rc -eq 0
N=$T/nolan.img
check "NO_LAN_ADMIN=1: no /etc/canaryd/lan-admin.toml" test -z "$(e2type "$N" /etc/canaryd/lan-admin.toml)"
check "NO_LAN_ADMIN=1: no /etc/canaryd/admin.token" test -z "$(e2type "$N" /etc/canaryd/admin.token)"
check "NO_LAN_ADMIN=1: no FAT canaryd/lan-admin.toml" test "$(mdir -b -i "$(fat "$N")" ::canaryd | sed 's|.*/||' | paste -sd' ')" = canaryd.toml
check "NO_LAN_ADMIN=1: config in /etc/canaryd" grep -q '^\[proxy\]' <(e2cat "$N" /etc/canaryd/canaryd.toml)
check "NO_LAN_ADMIN=1: no token printed" test -z "$(grep -i 'bearer' "$T/nolan.out")"
check "NO_LAN_ADMIN=1: gpio group not added twice" test "$(e2cat "$N" /etc/group | grep -c '^gpio:')" -eq 1
check "NO_LAN_ADMIN=1: canaryctl group not added twice" test "$(e2cat "$N" /etc/group | grep -c '^canaryctl:')" -eq 1
check "NO_LAN_ADMIN=1: still one enable link, e2fsck clean" e2fsck -fn "$(ext "$N")"

# --- 2b: again over the image of run 1, LAN admin: the existing gpio group used --
rc=0
bash "$IMAGE" --base "$O" --out "$T/again.img" --arch arm64 --deb "$DEB" >"$T/again.out" 2>"$T/again.err" || rc=$?
A=$T/again.img
check "again: exits 0" test $rc -eq 0
check "again: /etc/group as run 1 left it" cmp -s <(e2cat "$A" /etc/group) "$T/group"
check "again: admin.token owner root:gpio (the existing gid)" test "$(e2owner "$A" /etc/canaryd/admin.token)" = "0:${gid:-x}"
check "again: a new token" test "$(e2cat "$A" /etc/canaryd/admin.token)" != "$token"
check "again: e2fsck -fn clean" e2fsck -fn "$(ext "$A")"
rm -f "$A"

# --- 2c: without e2fsprogs' ?offset= (the dd-out-and-back path) -----------------
rc=0
IMAGE_NO_OFFSET=1 bash "$IMAGE" --base "$T/base.img" --out "$T/dd.img" --arch arm64 --deb "$DEB" >"$T/dd.out" 2>"$T/dd.err" || rc=$?
check "without ?offset=: exits 0" test $rc -eq 0
check "without ?offset=: /usr/bin/canaryd 0755, arm64" bash -c '[ "$1" = 0755 ] && grep -q "ARM aarch64" <<<"$2"' _ \
	"$(e2mode "$T/dd.img" /usr/bin/canaryd)" "$(e2cat "$T/dd.img" /usr/bin/canaryd | file -b -)"
check "without ?offset=: e2fsck -fn clean" e2fsck -fn "$(ext "$T/dd.img")"
check "without ?offset=: no copy of the root partition left" test -z "$(ls "$T" | grep -e '\.rootfs$' -e '\.partial$')"
rm -f "$T/dd.img"

# --- 3: CONFIG -------------------------------------------------------------
echo "--- CONFIG"
cat >"$T/my.toml" <<'EOF'
# my services
[proxy]
listen = ":80"

[[upstream]]
name = "prod"
url = "http://192.168.1.20:8080"
weight = 9
role = "stable"

[[upstream]]
name = "next"
url = "http://192.168.1.21:8080"
weight = 1
role = "canary"

[canary]
version = "2026.12"
EOF
run cfg --base "$T/base.img" --out "$T/cfg.img" --arch arm64 --deb "$DEB" --config "$T/my.toml"
check "CONFIG: exits 0" test $rc -eq 0
check "CONFIG: /etc/canaryd/canaryd.toml is CONFIG" cmp -s <(e2cat "$T/cfg.img" /etc/canaryd/canaryd.toml) "$T/my.toml"
check "CONFIG: FAT canaryd/canaryd.toml is CONFIG" cmp -s <(fatcat "$T/cfg.img" canaryd/canaryd.toml) "$T/my.toml"
check "CONFIG: no demo backends enabled" test -z "$(e2type "$T/cfg.img" /etc/systemd/system/multi-user.target.wants/canaryd-demo@pong-v1.service)"
rm -f "$T/cfg.img" "$T/nolan.img"
printf '\n[admin]\nlisten = "127.0.0.1:9999"\n' | cat "$T/my.toml" - >"$T/listen.toml"
run listen --base "$T/base.img" --out "$T/listen.img" --arch arm64 --deb "$DEB" --config "$T/listen.toml"
check "CONFIG with admin.listen: refused" test $rc -ne 0
check "CONFIG with admin.listen: one line naming admin.listen and NO_LAN_ADMIN=1" \
	bash -c 'grep -c "" "$1" | grep -qx 1 && grep -q "admin.listen" "$1" && grep -q NO_LAN_ADMIN=1 "$1"' _ "$T/listen.err"
check "CONFIG with admin.listen: no OUT" test ! -e "$T/listen.img"
NO_LAN_ADMIN=1 bash "$IMAGE" --base "$T/base.img" --out "$T/listen.img" --arch arm64 --deb "$DEB" --config "$T/listen.toml" >/dev/null 2>&1
check "CONFIG with admin.listen and NO_LAN_ADMIN=1: accepted" test -s "$T/listen.img"
printf '\n[admin]\nlisten = "0.0.0.0:9999"\n' | cat "$T/my.toml" - >"$T/open.toml"
rc=0
NO_LAN_ADMIN=1 bash "$IMAGE" --base "$T/base.img" --out "$T/open.img" --arch arm64 --deb "$DEB" --config "$T/open.toml" >/dev/null 2>"$T/open.err" || rc=$?
check "CONFIG with admin.listen on 0.0.0.0 without a token: refused" test $rc -ne 0 -a ! -e "$T/open.img"
check "CONFIG with admin.listen on 0.0.0.0 without a token: one line naming admin.token_file" \
	bash -c 'grep -c "" "$1" | grep -qx 1 && grep -q "admin.token_file" "$1"' _ "$T/open.err"
rm -f "$T/listen.img"
if [ $have_check = 1 ]; then
	printf '[proxy]\nlisten = ":80"\nbogus_key = 1\n' >"$T/bad.toml"
	run badcfg --base "$T/base.img" --out "$T/bad.img" --arch arm64 --deb "$DEB" --config "$T/bad.toml"
	check "bad CONFIG: refused in one line" test $rc -ne 0 -a "$(grep -c '' "$T/badcfg.err")" -eq 1
	check "bad CONFIG: the line names the file" grep -q 'bad.toml\|canaryd.toml' "$T/badcfg.err"
	check "bad CONFIG: no OUT" test ! -e "$T/bad.img"
else
	skip=$((skip + 3))
fi

# --- 4: refusals ------------------------------------------------------------
echo "--- refusals"
refused() { # refused NAME PATTERN args...: non-zero, one line on stderr matching PATTERN, no OUT
	local name=$1 pat=$2; shift 2
	run "$name" "$@"
	if [ $rc -ne 0 ] && lines "$T/$name.err" 1 && grep -q -- "$pat" "$T/$name.err" && [ ! -e "$T/$name.img" ] && [ ! -e "$T/$name.img.partial" ]; then
		ok "$name refused: $(cat "$T/$name.err")"
	else
		bad "$name refused in one line matching '$pat' (rc $rc): $(head -3 "$T/$name.err" | paste -sd'|')"
	fi
}
# One partition, Linux.
truncate -s 40M "$T/one.base"
echo 'start=2048, type=83' | sfdisk -q "$T/one.base" >/dev/null
truncate -s 38M "$T/one.ext" && mkfs.ext4 -q -F "$T/one.ext" && dd if="$T/one.ext" of="$T/one.base" bs=512 seek=2048 conv=notrunc status=none
refused one 'found 1 partition (type 83)' --base "$T/one.base" --out "$T/one.img" --arch arm64 --deb "$DEB"
# Two partitions, both ext4.
truncate -s 80M "$T/two.base"
printf 'label: dos\nstart=2048, size=77824, type=83\nstart=79872, type=83\n' | sfdisk -q "$T/two.base" >/dev/null
truncate -s 38M "$T/two.ext" && mkfs.ext4 -q -F "$T/two.ext" && dd if="$T/two.ext" of="$T/two.base" bs=512 seek=2048 conv=notrunc status=none
dd if="$T/two.ext" of="$T/two.base" bs=512 seek=79872 conv=notrunc status=none
refused two-ext4 'found 2 partitions (types 83, 83)' --base "$T/two.base" --out "$T/two-ext4.img" --arch arm64 --deb "$DEB"
# FAT then Linux in the table, but no file systems in them.
truncate -s $(((EXT_START + 20480) * 512)) "$T/blank.base"
printf 'label: dos\nstart=%d, size=%d, type=c\nstart=%d, type=83\n' "$FAT_START" "$FAT_SECTORS" "$EXT_START" | sfdisk -q "$T/blank.base" >/dev/null
refused blank 'partition 1 (type c) without a FAT' --base "$T/blank.base" --out "$T/blank.img" --arch arm64 --deb "$DEB"
# Not an image at all.
head -c 3000000 /dev/urandom >"$T/notimg.base"
refused not-an-image 'found no partition table' --base "$T/notimg.base" --out "$T/not-an-image.img" --arch arm64 --deb "$DEB"
refused text-file 'found no partition table' --base "$ROOT/README.md" --out "$T/text-file.img" --arch arm64 --deb "$DEB"
refused missing-base 'no such file' --base "$T/nope.img" --out "$T/missing-base.img" --arch arm64 --deb "$DEB"
truncate -s 15T "$T/huge.base" # sparse: a base no disk here has room to unpack
refused no-room 'the image needs about .* GB there' --base "$T/huge.base" --out "$T/no-room.img" --arch arm64 --deb "$DEB"
refused check-no-base 'no base image' --check --out "$T/check-no-base.img" --arch arm64
rm -f "$T/huge.base"
refused wrong-arch 'armhf' --base "$T/base.img" --out "$T/wrong-arch.img" --arch arm64 --deb "$T/wrong-armhf.deb"
refused bad-arch 'arm64 or armhf' --base "$T/base.img" --out "$T/bad-arch.img" --arch amd64 --deb "$DEB"
refused out-is-base 'never modified' --base "$T/base.img" --out "$T/base.img" --arch arm64 --deb "$DEB"
# A root file system too small for the package.
mkbase "$T/small.base" 6 && debugfs -w -R "write $T/pkg/usr/bin/canaryd /filler" "$(ext "$T/small.base")" >/dev/null 2>&1
refused too-full 'too full' --base "$T/small.base" --out "$T/too-full.img" --arch arm64 --deb "$DEB"
check "BASE still unchanged after all runs" test "$(sha256sum <"$T/base.img")" = "$basesum"

# --- 5: .img.xz in, .img.xz out -----------------------------------------------
echo "--- .xz"
xz -T0 -0 -c "$T/base.img" >"$T/base.img.xz"
XZ_OPT=-0 run xz --base "$T/base.img.xz" --out "$T/xz.img.xz" --arch arm64 --deb "$DEB"
check ".img.xz base and .img.xz OUT: exits 0" test $rc -eq 0
xz -dc "$T/xz.img.xz" >"$T/xz.img" 2>/dev/null
check ".img.xz: arm64 canaryd in the root fs" grep -q 'ARM aarch64' <(e2cat "$T/xz.img" /usr/bin/canaryd | file -b -)
check ".img.xz: e2fsck -fn clean" e2fsck -fn "$(ext "$T/xz.img")"
check ".img.xz: FAT canaryd/canaryd.toml" fathas "$T/xz.img" canaryd/canaryd.toml
printf 'not xz' >"$T/broken.img.xz"
refused broken-xz 'cannot decompress' --base "$T/broken.img.xz" --out "$T/broken-xz.img" --arch arm64 --deb "$DEB"

echo "image-test: $pass passed, $fail failed$([ $skip -eq 0 ] || echo ", $skip skipped (no -check-config)") in $((SECONDS - start)) s"
[ $fail -eq 0 ]
