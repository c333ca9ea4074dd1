#!/usr/bin/env bash
# scripts/e2e-base.sh OUT.img: a stand-in for Raspberry Pi OS Lite (arm64),
# built from Debian bookworm's packages, for make e2e.
#
# The same layout as Raspberry Pi OS: an MBR, partition 1 FAT32 "bootfs" at
# 4 MiB (type c, mounted at /boot/firmware, with the kernel, the initramfs,
# cmdline.txt, config.txt and Raspberry Pi Imager's firstrun.sh / user-data /
# network-config), partition 2 ext4 "rootfs" (/). Built without loop mounts:
# mmdebstrap into a directory, mkfs.ext4 -d and mkfs.vfat + mcopy into files,
# sfdisk and dd to put them together.
#
# The result is cached, keyed on this script and the files in scripts/e2e/base
# and scripts/e2e/bootfs, in $E2E_CACHE (default $XDG_CACHE_HOME/canary-pi, or
# /var/cache/canary-pi): a warm run is a copy. Needs root (mmdebstrap's root
# mode, the chroot under qemu-user) and the packages listed in need_tools.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: scripts/e2e-base.sh OUT.img}

# The guest's packages. Raspberry Pi OS Lite has many more; these are what the
# boot test needs: systemd as init, udev for the disks by label, a kernel with
# an initramfs, networkd (in systemd) for hostfwd, curl for the guest's checks,
# dosfstools for the FAT partition's fsck at boot, gpiod for gpioinfo (make
# e2e-pi: who holds which line of the Pi's GPIO chip).
PACKAGES=(systemd systemd-sysv udev linux-image-arm64 initramfs-tools kmod
	e2fsprogs dosfstools iproute2 curl ca-certificates gpiod)
SUITE=bookworm
MIRROR=${E2E_MIRROR:-}
BOOT_MIB=256 # Raspberry Pi OS has 512; FAT32 with 2 KiB clusters is still > 65525 clusters
ROOT_SLACK_MIB=512 # room for canaryd, its state and a journal

t0=$(date +%s)
tl=$t0
stage() {
	local now
	now=$(date +%s)
	printf '::: e2e-base: %s (+%ss, %ss total)\n' "$1" $((now - tl)) $((now - t0))
	tl=$now
}
die() { echo "e2e-base: $*" >&2; exit 1; }

# The mirror: the machine's own Debian mirror (from its apt sources), as it may
# be the only one reachable.
if [[ -z $MIRROR ]]; then
	MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 | tr -d ' ' || true)
	MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

# The cache key: the package list, the suite, the sizes and every input file.
key=$( {
	printf '%s\n' "${PACKAGES[@]}" "$SUITE" "$BOOT_MIB" "$ROOT_SLACK_MIB"
	cat "${BASH_SOURCE[0]}"
	(cd "$here/e2e" && find base bootfs -type f | LC_ALL=C sort | while read -r f; do
		echo "$f $(stat -c %a "$f")"; cat "$f"; done)
} | sha256sum | cut -c1-16)
cache=${E2E_CACHE:-${XDG_CACHE_HOME:-/var/cache}/canary-pi}
cached=$cache/e2e-base-$key.img

if [[ -s $cached ]]; then
	cp --sparse=always "$cached" "$out"
	stage "cached base $cached -> $out"
	exit 0
fi

[[ $(id -u) == 0 ]] || die "needs root to build the base image (mmdebstrap, chroot under qemu-user); cached copies are in $cache"

need_tools() {
	local missing=() t p
	for t in mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static mkfs.vfat:dosfstools \
		mcopy:mtools sfdisk:fdisk mkfs.ext4:e2fsprogs arch-test:arch-test; do
		p=${t#*:}
		command -v "${t%%:*}" >/dev/null || missing+=("$p")
	done
	if ((${#missing[@]})); then
		echo "e2e-base: installing ${missing[*]}"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}
need_tools
stage "tools"

# Running arm64 programs in the chroot: binfmt_misc with qemu-aarch64.
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
	mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
	conf=/usr/lib/binfmt.d/qemu-aarch64.conf
	[[ -r $conf ]] || die "no $conf: install qemu-user-static"
	grep -v '^#' "$conf" | head -n1 >/proc/sys/fs/binfmt_misc/register
fi
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || echo 1 >/proc/sys/fs/binfmt_misc/qemu-aarch64
arch-test arm64 >/dev/null || die "arm64 programs do not run here (arch-test arm64), although qemu-aarch64 is registered"
stage "binfmt_misc: qemu-aarch64 registered"

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# The initramfs settings (MODULES=list and a hook adding virtio and ext4) go
# in before the kernel's postinst builds the initramfs: the essential hook
# runs after the Essential packages and before --include.
echo "e2e-base: mmdebstrap $SUITE arm64 from $MIRROR (a few minutes under qemu-user)"
mmdebstrap --mode=root --variant=minbase --arch=arm64 \
	--include="$(IFS=,; echo "${PACKAGES[*]}")" \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--essential-hook="cp -rT --preserve=mode '$here/e2e/base' \"\$1\"" \
	--customize-hook='set -e
		echo raspberrypi >"$1/etc/hostname"
		printf "127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n::1\tlocalhost ip6-localhost ip6-loopback\n" >"$1/etc/hosts"
		printf "LABEL=bootfs  /boot/firmware  vfat  defaults  0  2\nLABEL=rootfs  /  ext4  defaults,noatime  0  1\n" >"$1/etc/fstab"
		mkdir -p "$1/boot/firmware" "$1/var/log/journal"
		chroot "$1" systemctl enable systemd-networkd.service
		chroot "$1" passwd -d root >/dev/null
		rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"
		chroot "$1" apt-get clean
		rm -rf "$1"/var/lib/apt/lists/*' \
	"$SUITE" "$root" "deb $MIRROR $SUITE main" >"$work/mmdebstrap.log" 2>&1 ||
	{ tail -n 60 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed (log above)"; }
stage "mmdebstrap"

kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
[[ -s $kernel && -s $initrd ]] || die "no kernel or initramfs in /boot of the chroot"

# The boot partition, as Raspberry Pi OS's: kernel8.img (a gzipped Image,
# which a Pi 4's firmware reads and which fits) and initramfs8.
fat=$work/boot.fat
mkfs.vfat -F 32 -n bootfs -C "$fat" $((BOOT_MIB * 1024)) 2>&1 | grep -v -e "^mkfs.fat" -e "lowercase labels" || true
if [[ $(head -c2 "$kernel" | od -An -tx1 | tr -d ' ') == 1f8b ]]; then
	cp "$kernel" "$work/kernel8.img"
else
	gzip -9n <"$kernel" >"$work/kernel8.img"
fi
cp "$initrd" "$work/initramfs8"
# The Pis' device trees beside the kernel, as the firmware finds them (make
# e2e-pi boots QEMU's raspi3b with the Pi 3 B's).
shopt -s nullglob
dtbs=("$root/usr/lib/linux-image-${kernel##*/vmlinuz-}"/broadcom/bcm{2837,2711}-rpi-*.dtb)
shopt -u nullglob
((${#dtbs[@]})) || die "no Raspberry Pi device trees (broadcom/bcm2837-rpi-*.dtb) in the chroot's kernel package"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$fat" "$work/kernel8.img" "$work/initramfs8" "${dtbs[@]}" "$here"/e2e/bootfs/* ::/
mdir -i "$fat" -b :: | sed 's/^/e2e-base:   bootfs /'
stage "bootfs: $(basename "$kernel") ($(du -h "$work/kernel8.img" | cut -f1) gzipped), $(basename "$initrd") ($(du -h "$initrd" | cut -f1))"

# The root partition: the chroot, with room to spare.
rootfs=$work/root.ext4
root_mib=$(($(du -sm "$root" | cut -f1) * 12 / 10 + ROOT_SLACK_MIB))
mkfs.ext4 -q -L rootfs -d "$root" "$rootfs" "${root_mib}M"
e2fsck -fn "$rootfs" >/dev/null || die "e2fsck of the new root file system failed"
stage "rootfs: ${root_mib} MiB ext4"

# The disk: MBR, 4 MiB before the first partition, as Raspberry Pi OS.
img=$work/base.img
boot_sectors=$((BOOT_MIB * 2048))
root_start=$((8192 + boot_sectors))
root_sectors=$((root_mib * 2048))
truncate -s $(((root_start + root_sectors) * 512)) "$img"
sfdisk -q "$img" <<EOF
label: dos
label-id: 0x3e7a5c1d
start=8192, size=$boot_sectors, type=c
start=$root_start, size=$root_sectors, type=83
EOF
dd if="$fat" of="$img" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$rootfs" of="$img" bs=1M seek=$((root_start / 2048)) conv=notrunc,sparse status=none
mv "$img" "$cached"
for old in "$cache"/e2e-base-*.img; do [[ $old == "$cached" ]] || rm -f "$old"; done
cp --sparse=always "$cached" "$out"
stage "base image $cached ($(du -h --apparent-size "$cached" | cut -f1)) -> $out"
