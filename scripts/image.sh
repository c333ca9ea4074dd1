#!/usr/bin/env bash
# image.sh: a Raspberry Pi OS image with canaryd installed and enabled.
#
#   bash scripts/image.sh --base raspios-lite.img[.xz] --out canary-pi.img[.xz] \
#       --arch arm64|armhf --deb dist/canaryd_<version>_<arch>.deb [--config FILE.toml]
#
# No root and no loop mounts: the partition offsets come from the image's MBR
# (sfdisk -d on the file), the ext4 root is edited with `debugfs -w` through
# e2fsprogs' offset= io option, and the FAT boot partition with mtools at an
# offset (-i FILE@@OFFSET). BASE is only read; OUT is written next to itself
# as OUT.partial and renamed when everything, e2fsck included, is fine.
#
# What it writes:
#   root fs: every file of the package (binaries 0755, the rest 0644, root:root),
#            the enable link systemctl enable makes, the config in /etc/canaryd,
#            the gpio and canaryctl groups when missing, and (unless NO_LAN_ADMIN=1) an admin
#            token (0640 root:gpio) and lan-admin.toml putting the status page
#            on the LAN at port 9090.
#   FAT:     canaryd/ with the same *.toml files (never the token). Every other
#            file there (cmdline.txt, config.txt, firstrun.sh, user-data, ...)
#            is left as it was, so Raspberry Pi Imager's customisation works.
#
# Needs: sfdisk (fdisk), debugfs/e2fsck/dumpe2fs (e2fsprogs), mtools, dpkg-deb,
# xz (xz-utils) for .xz files; fsck.vfat (dosfstools) is used when present.
set -euo pipefail

me=image.sh
die() { echo "$me: $*" >&2; exit 1; }

BASE= OUT= ARCH= DEB= CONFIG= CHECK=
while [ $# -gt 0 ]; do
	case $1 in
	--base) BASE=${2-}; shift 2 || die "--base needs a value" ;;
	--out) OUT=${2-}; shift 2 || die "--out needs a value" ;;
	--arch) ARCH=${2-}; shift 2 || die "--arch needs a value" ;;
	--deb) DEB=${2-}; shift 2 || die "--deb needs a value" ;;
	--config) CONFIG=${2-}; shift 2 || die "--config needs a value" ;;
	--check) CHECK=1; shift ;; # the arguments and the free space only, before make builds anything
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CANARYD=${CANARYD:-$ROOT/bin/canaryd}
NO_LAN_ADMIN=${NO_LAN_ADMIN:-0}

# --- the arguments ----------------------------------------------------------
[ -n "$BASE" ] || die "no base image: make image BASE=raspios-lite.img.xz (a Raspberry Pi OS Lite image as downloaded)"
[ -n "$OUT" ] || die "no output: --out FILE.img (or FILE.img.xz)"
case $ARCH in arm64 | armhf) ;; *) die "--arch must be arm64 or armhf, not '${ARCH}'" ;; esac
[ -e "$BASE" ] || die "$BASE: no such file"
[ -f "$BASE" ] || die "$BASE: not a regular file"
[ -r "$BASE" ] || die "$BASE: cannot read it (permissions)"
if [ -n "$CONFIG" ]; then
	[ -f "$CONFIG" ] && [ -r "$CONFIG" ] || die "$CONFIG: no such config file"
fi

export MTOOLS_SKIP_CHECK=1 DEBUGFS_PAGER=__none__ PAGER=cat
export PATH=$PATH:/usr/sbin:/sbin # sfdisk, debugfs, e2fsck: not in a user's PATH on Debian

for t in sfdisk debugfs e2fsck dumpe2fs mdir mcopy mmd mdel dpkg-deb; do
	command -v "$t" >/dev/null || die "needs $t (apt-get install fdisk e2fsprogs mtools dpkg)"
done
case $BASE$OUT in *.xz*) command -v xz >/dev/null || die "needs xz (apt-get install xz-utils)" ;; esac

# OUT must not be BASE (BASE is never modified).
outdir=$(cd "$(dirname "$OUT")" 2>/dev/null && pwd) || die "$OUT: its directory does not exist"
outabs=$outdir/$(basename "$OUT")
baseabs=$(cd "$(dirname "$BASE")" && pwd)/$(basename "$BASE")
[ "$outabs" != "$baseabs" ] || die "--out is the base image itself; the base is never modified: pick another name"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/canary-image.XXXXXX")
chmod 700 "$tmp"
trap 'rm -rf "$tmp"' EXIT

# The space OUT needs beside it: the whole unpacked image (a Raspberry Pi
# OS Lite image unpacks to about 2.7 GB), and its .xz while it is written.
case $BASE in
*.xz)
	list=$(xz --robot --list -- "$BASE" 2>"$tmp/err") || list=
	size=$(awk '$1 == "totals" { print $5 }' <<<"$list")
	;;
*) size=$(stat -c %s -- "$BASE") ;;
esac
[ -n "$size" ] || die "$(basename "$BASE"): cannot decompress: $(grep -v '^[[:space:]]*$' "$tmp/err" | head -1)"
need=$((size + 64 * 1024 * 1024))
case $OUT in *.xz) need=$((need + size / 2)) ;; esac
free=$(df -B1 --output=avail -- "$outdir" | tail -n 1 | tr -d ' ')
gb() { awk -v b="$1" 'BEGIN { printf "%.1f GB", b / 1e9 }'; }
[ "$free" -ge "$need" ] ||
	die "$outdir has $(gb "$free") free; the image needs about $(gb "$need") there (the base unpacks to $(gb "$size")): free some space, or write OUT elsewhere"
[ -z "$CHECK" ] || exit 0

[ -n "$DEB" ] || die "no package: --deb dist/canaryd_<version>_$ARCH.deb"
[ -f "$DEB" ] && [ -r "$DEB" ] || die "$DEB: no such package (make deb builds it)"

case $OUT in *.xz) img=${outabs%.xz}.partial ;; *) img=$outabs.partial ;; esac
ok=0
rootcopy=$img.rootfs # the root partition, only without ?offset= support
cleanup() {
	rm -rf "$tmp" "$rootcopy"
	if [ "$ok" != 1 ]; then rm -f "$img" "$img.xz"; fi
}
trap cleanup EXIT

# --- the package ------------------------------------------------------------
debarch=$(dpkg-deb -f "$DEB" Architecture 2>/dev/null) || die "$DEB: not a Debian package (dpkg-deb cannot read it)"
[ "$debarch" = "$ARCH" ] || die "$DEB: package is for $debarch, the image is for $ARCH (make image ARCH=$debarch, or the ${ARCH} package)"
debname=$(dpkg-deb -f "$DEB" Package 2>/dev/null)
debver=$(dpkg-deb -f "$DEB" Version 2>/dev/null)
pkg=$tmp/pkg
mkdir "$pkg"
dpkg-deb -x "$DEB" "$pkg" 2>"$tmp/err" || die "$DEB: cannot unpack: $(head -1 "$tmp/err")"
[ -f "$pkg/usr/bin/canaryd" ] || die "$DEB: has no /usr/bin/canaryd"
[ -f "$pkg/usr/lib/systemd/system/canaryd.service" ] || die "$DEB: has no /usr/lib/systemd/system/canaryd.service"
if bad=$(cd "$pkg" && find . -name '*[[:space:]\"\\]*' | head -1) && [ -n "$bad" ]; then
	die "$DEB: a path with a space or quote, not supported: ${bad#.}"
fi

# --- the base image, inspected read-only -------------------------------------
# An .img is read where it is; an .img.xz is decompressed into OUT.partial
# first (removed again on any failure).
bname=$(basename "$BASE")
case $BASE in
*.xz)
	xz -dc -- "$BASE" >"$img" 2>"$tmp/err" || die "$bname: cannot decompress: $(grep -v '^[[:space:]]*$' "$tmp/err" | head -1)"
	src=$img
	;;
*) src=$baseabs ;;
esac

# The partition table, read from the file: exactly what Raspberry Pi OS has,
# partition 1 FAT (type c, b or e) and partition 2 Linux (83) with ext4.
want="want Raspberry Pi OS (partition 1 FAT, partition 2 ext4)"
ln -s "$src" "$tmp/img"
if ! (cd "$tmp" && sfdisk -d img) >"$tmp/table" 2>/dev/null; then
	die "$bname: $want; found no partition table"
fi
label=$(sed -n 's/^label: *//p' "$tmp/table")
[ "$label" = dos ] || die "$bname: $want; found a ${label:-unknown} partition table, not an MBR (dos) one"
secsize=$(sed -n 's/^sector-size: *//p' "$tmp/table")
secsize=${secsize:-512}
# "img1 : start=        8192, size=      131072, type=c[, bootable]"
sed -n 's/^img\([0-9][0-9]*\) *: *start= *\([0-9][0-9]*\), *size= *\([0-9][0-9]*\), *type=\([0-9a-fA-F]*\).*/\1 \2 \3 \4/p' \
	"$tmp/table" >"$tmp/parts"
nparts=$(wc -l <"$tmp/parts")
if [ "$nparts" -eq 0 ]; then
	die "$bname: $want; found an empty partition table"
fi
found="found $nparts partition$([ "$nparts" -eq 1 ] || echo s) (type$([ "$nparts" -eq 1 ] || echo s) $(awk '{print $4}' "$tmp/parts" | paste -sd, | sed 's/,/, /g'))"
[ "$nparts" -eq 2 ] || die "$bname: $want; $found"
read -r n1 s1 z1 t1 < <(sed -n 1p "$tmp/parts")
read -r n2 s2 z2 t2 < <(sed -n 2p "$tmp/parts")
[ "$n1" = 1 ] && [ "$n2" = 2 ] || die "$bname: $want; found partitions $n1 and $n2"
case ${t1,,} in c | b | e) ;; *) die "$bname: $want; $found" ;; esac
[ "$t2" = 83 ] || die "$bname: $want; $found"
imgsize=$(stat -c %s "$src")
for p in "1 $s1 $z1" "2 $s2 $z2"; do
	set -- $p
	[ $((($2 + $3) * secsize)) -le "$imgsize" ] || die "$bname: partition $1 ends past the end of the file ($imgsize bytes): a truncated download?"
done
fatoff=$((s1 * secsize))
extoff=$((s2 * secsize))
fat="$src@@$fatoff"
ext="$src?offset=$extoff"
mdir -i "$fat" :: >/dev/null 2>&1 || die "$bname: $want; found partition 1 (type $t1) without a FAT file system"
# e2fsprogs' unix io manager takes ?offset=BYTES (1.42 and later); without
# it, the root partition is copied out, edited, and copied back.
use_offset=1
if [ "${IMAGE_NO_OFFSET:-0}" = 1 ] || ! dumpe2fs -h "$ext" >/dev/null 2>&1; then
	dd if="$src" of="$rootcopy" bs=1M iflag=skip_bytes,count_bytes skip="$extoff" count=$((z2 * secsize)) conv=sparse status=none ||
		die "$bname: cannot read partition 2"
	use_offset=0
	ext=$rootcopy
fi
dumpe2fs -h "$ext" >"$tmp/sb" 2>/dev/null || die "$bname: $want; found partition 2 (type 83) without an ext2/3/4 file system"
grep -q '^Filesystem features:.*extent' "$tmp/sb" ||
	die "$bname: $want; found partition 2 with an ext2/ext3 file system, not ext4"
if ! e2fsck -fn "$ext" >"$tmp/fsck" 2>&1; then
	die "$bname: the root file system (partition 2) has errors before any change (e2fsck -fn); re-download the image"
fi

# --- the config set, validated before anything is written --------------------
conf=$tmp/conf
mkdir "$conf"
if [ -n "$CONFIG" ]; then
	cp "$CONFIG" "$conf/canaryd.toml"
	confsrc=$CONFIG
else
	[ -f "$pkg/etc/canaryd/canaryd.toml" ] || die "$DEB: has no /etc/canaryd/canaryd.toml and no --config was given"
	cp "$pkg/etc/canaryd/canaryd.toml" "$conf/canaryd.toml"
	confsrc="the package's example"
fi

# admin_listen FILE: prints the line number of an admin.listen in FILE (a
# `listen =` in the [admin] section, or `admin.listen =` at the top level).
admin_listen() {
	awk '
		/^[ \t]*\[/ { s = $0; gsub(/[ \t]/, "", s); sub(/\].*/, "]", s); sec = s; next }
		sec == "[admin]" && /^[ \t]*"?listen"?[ \t]*=/ { print NR; exit }
		sec == "" && /^[ \t]*admin[ \t]*\.[ \t]*listen[ \t]*=/ { print NR; exit }
	' "$1"
}

# The validator: canaryd -check-config DIR (exit 0 and one line when DIR's
# *.toml validate, 1 and the one-line error otherwise).
have_check=1
if [ ! -x "$CANARYD" ]; then
	echo "$me: warning: $CANARYD missing (make build): the config is not validated" >&2
	have_check=0
else
	probe=$("$CANARYD" -check-config "$tmp/none" 2>&1 || true)
	if [[ $probe == *"flag provided but not defined"* ]]; then
		echo "$me: warning: $CANARYD has no -check-config yet: the config is not validated" >&2
		have_check=0
	fi
fi
# check_config DIR: prints the validator's error in one line and fails.
check_config() {
	[ $have_check = 1 ] || return 0
	local out rc=0
	out=$("$CANARYD" -check-config "$1" 2>&1) || rc=$?
	[ $rc -ne 0 ] || return 0
	out=$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | head -1)
	out=${out#canaryd: }
	out=${out//"$1/"/}
	printf '%s\n' "$out"
	return 1
}

# A CONFIG that sets admin.listen clashes with lan-admin.toml's (a key set
# in two files is an error): said first, in words, rather than as a clash.
if [ "$NO_LAN_ADMIN" != 1 ] && [ -n "$CONFIG" ] && l=$(admin_listen "$conf/canaryd.toml") && [ -n "$l" ]; then
	die "$CONFIG:$l sets admin.listen, and the LAN status page sets its own in lan-admin.toml: remove admin.listen from $CONFIG, or keep the page on loopback with NO_LAN_ADMIN=1"
fi
if ! err=$(check_config "$conf"); then
	[ -z "$CONFIG" ] || err=${err//canaryd.toml:/$CONFIG:}
	die "$confsrc does not validate: $err"
fi

token=
if [ "$NO_LAN_ADMIN" != 1 ]; then
	token=$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)
	[ ${#token} -eq 40 ] || die "could not generate an admin token"
	cat >"$conf/lan-admin.toml" <<'EOF'
# Written by `make image`: the status page and /metrics on the LAN, port 9090,
# so a headless Pi can be watched and driven from a laptop:
#   http://<hostname>.local:9090/
# The page, /metrics and every change (rollback, resume, promote, reload,
# button) need the token from admin.token in /etc/canaryd (printed once by
# make image, never copied to the SD card's boot partition) as
# "Authorization: Bearer <token>"; the page asks for it once.
# public_read = true would leave the status and /metrics open to the LAN.
# Names other than the Pi's own that it is reached by go in hosts = [...].
# Delete this file to keep the status page on loopback (127.0.0.1:9090).

[admin]
listen = "0.0.0.0:9090"
token_file = "admin.token"
EOF
	(umask 077 && printf '%s\n' "$token" >"$conf/admin.token")
	if ! err=$(check_config "$conf"); then
		[ -z "$CONFIG" ] || err=${err//canaryd.toml:/$CONFIG:}
		die "$confsrc with lan-admin.toml does not validate: $err (if admin.listen is set twice: remove it from the config, or NO_LAN_ADMIN=1 keeps the status page on loopback)"
	fi
fi

# --- the image: OUT.partial, a copy of BASE --------------------------------
if [ "$src" != "$img" ]; then
	cp --sparse=always -- "$BASE" "$img" 2>"$tmp/err" || die "$bname: cannot copy to $img: $(head -1 "$tmp/err")"
fi
chmod u+w "$img"
fat="$img@@$fatoff"
[ $use_offset = 0 ] || ext="$img?offset=$extoff"
[ "$(stat -c %s "$img")" = "$imgsize" ] || die "$bname: the copy in $img is not the same size (disk full?)"

# --- debugfs helpers --------------------------------------------------------
# run_debugfs CMDFILE WHAT: runs the batch read-write; any message on stderr
# but the version banner is a failure, reported in one line.
run_debugfs() {
	debugfs -w -f "$1" "$ext" >"$tmp/dbg.out" 2>"$tmp/dbg.err" || true
	local e
	e=$(grep -v '^debugfs [0-9]' "$tmp/dbg.err" | head -1 || true)
	if [ -n "$e" ]; then
		case $e in
		*"Could not allocate"* | *"No free space"* | *"inode"*"full"* | *"Could not allocate inode"*)
			die "the root file system of $bname is too full for $2: $e" ;;
		*) die "debugfs failed on $2: $e" ;;
		esac
	fi
}
# e2type PATH: regular, directory, symlink, ... or nothing when PATH is absent.
e2type() {
	debugfs -R "stat \"$1\"" "$ext" 2>/dev/null | sed -n '1s/.*Type: *\([a-z]*\).*/\1/p'
}
# e2stat PATH: "MODE UID GID" (octal permission bits) of an existing PATH.
e2stat() {
	debugfs -R "stat \"$1\"" "$ext" 2>/dev/null | awk '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == "Mode:") m = $(i + 1) }
		/^User:/ { u = $2; g = $4 }
		END { print m, u, g }'
}
e2cat() { debugfs -R "cat \"$1\"" "$ext" 2>/dev/null; }

cmds=$tmp/cmds
: >"$cmds"
declare -A made=()
# need_dir DIR: mkdir DIR and its missing parents (0755 root:root).
need_dir() {
	local d=$1
	[ "$d" = / ] && return 0
	[ -n "${made[$d]:-}" ] && return 0
	need_dir "$(dirname "$d")"
	case $(e2type "$d") in
	directory) ;;
	"") printf 'mkdir "%s"\nsif "%s" mode 040755\nsif "%s" uid 0\nsif "%s" gid 0\n' "$d" "$d" "$d" "$d" >>"$cmds" ;;
	symlink) ;; # e.g. a merged-/usr link: debugfs follows it
	*) die "$bname: $d in the root file system is a $(e2type "$d"), not a directory" ;;
	esac
	made[$d]=1
}
# clear_for DEST WHAT: a place for a new WHAT (file or link) at DEST: its
# directory made, a file or link there removed, anything else refused.
clear_for() {
	local dst=$1 what=$2 ty
	need_dir "$(dirname "$dst")"
	ty=$(e2type "$dst")
	case $ty in
	"") ;;
	regular | symlink) printf 'rm "%s"\n' "$dst" >>"$cmds" ;;
	*) die "$bname: $dst in the root file system is a $ty, cannot replace it with a $what" ;;
	esac
}
# put_file SRC DEST MODE [UID GID]: DEST replaced by SRC's contents.
put_file() {
	local src=$1 dst=$2 mode uid=${4:-0} gid=${5:-0}
	mode=$(printf '%04o' $((8#$3)))
	clear_for "$dst" file
	printf 'write "%s" "%s"\nsif "%s" mode 010%s\nsif "%s" uid %s\nsif "%s" gid %s\n' \
		"$src" "$dst" "$dst" "$mode" "$dst" "$uid" "$dst" "$gid" >>"$cmds"
}
# put_link TARGET DEST: the symlink DEST -> TARGET, replacing what was there.
put_link() {
	local target=$1 dst=$2
	clear_for "$dst" link
	printf 'symlink "%s" "%s"\nsif "%s" uid 0\nsif "%s" gid 0\n' "$dst" "$target" "$dst" "$dst" >>"$cmds"
}
# rm_if PATH: removes a regular file or link left by an earlier run.
rm_if() {
	case $(e2type "$1") in regular | symlink) printf 'rm "%s"\n' "$1" >>"$cmds" ;; esac
}

written=()

# --- the package's files ----------------------------------------------------
while IFS= read -r rel; do
	p=${rel#.}
	[ -n "$p" ] || continue
	src=$pkg$p
	if [ -L "$src" ]; then
		put_link "$(readlink "$src")" "$p"
	elif [ -d "$src" ]; then
		need_dir "$p"
	elif [ -f "$src" ]; then
		[ "$p" = /etc/canaryd/canaryd.toml ] && continue # the config, below
		if [ -x "$src" ]; then put_file "$src" "$p" 755; else put_file "$src" "$p" 644; fi
		written+=("$p")
	fi
done < <(cd "$pkg" && find . | LC_ALL=C sort)

put_link /usr/lib/systemd/system/canaryd.service /etc/systemd/system/multi-user.target.wants/canaryd.service
written+=("/etc/systemd/system/multi-user.target.wants/canaryd.service -> /usr/lib/systemd/system/canaryd.service")
# With the package's example config, its demo backends too, as the package's
# postinst enables them: the first boot answers GET /ping, never 502s to
# nothing. With a CONFIG of your own they are left out (and their
# ExecCondition would keep them off anyway).
for b in pong-v1 pong-v2; do
	link=/etc/systemd/system/multi-user.target.wants/canaryd-demo@$b.service
	if [ -z "$CONFIG" ]; then
		put_link /usr/lib/systemd/system/canaryd-demo@.service "$link"
		written+=("$link -> /usr/lib/systemd/system/canaryd-demo@.service")
	else
		rm_if "$link"
	fi
done

# --- the gpio and canaryctl groups -----------------------------------------
# canaryd.service runs in both (Group=canaryctl, SupplementaryGroups=gpio): gpio
# drives the pins, canaryctl owns the admin socket and is for the people who
# run canaryctl. systemd refuses to start a unit whose group does not exist.
[ "$(e2type /etc/group)" = regular ] || die "$bname: no /etc/group in the root file system"
e2cat /etc/group >"$tmp/group"
group_gid() { awk -F: -v n="$1" '$1 == n { print $3; exit }' "$tmp/group"; }
added=()
# add_group NAME: a system group NAME in $tmp/group with the highest free gid
# below 1000, unless it has one.
add_group() {
	local name=$1 id
	[ -z "$(group_gid "$name")" ] || return 0
	for ((id = 999; id >= 100; id--)); do
		awk -F: -v g=$id '$3 == g { f = 1 } END { exit !f }' "$tmp/group" || break
	done
	[ $id -ge 100 ] || die "$bname: no free system group id below 1000 for the $name group"
	[ -z "$(tail -c1 "$tmp/group")" ] || echo >>"$tmp/group"
	echo "$name:x:$id:" >>"$tmp/group"
	added+=("$name")
	written+=("/etc/group: $name group added (gid $id)")
}
add_group gpio
add_group canaryctl
gpiogid=$(group_gid gpio)
if [ ${#added[@]} -gt 0 ]; then
	read -r m u g < <(e2stat /etc/group)
	put_file "$tmp/group" /etc/group "${m:-0644}" "${u:-0}" "${g:-0}"
	if [ "$(e2type /etc/gshadow)" = regular ]; then
		e2cat /etc/gshadow >"$tmp/gshadow"
		changed=
		for name in "${added[@]}"; do
			! grep -q "^$name:" "$tmp/gshadow" || continue
			[ -z "$(tail -c1 "$tmp/gshadow")" ] || echo >>"$tmp/gshadow"
			echo "$name:!::" >>"$tmp/gshadow"
			changed=1
			written+=("/etc/gshadow: $name group added")
		done
		if [ -n "$changed" ]; then
			read -r m u g < <(e2stat /etc/gshadow)
			put_file "$tmp/gshadow" /etc/gshadow "${m:-0640}" "${u:-0}" "${g:-0}"
		fi
	fi
fi

# --- the config -------------------------------------------------------------
put_file "$conf/canaryd.toml" /etc/canaryd/canaryd.toml 644
written+=("/etc/canaryd/canaryd.toml (from $confsrc)")
if [ -n "$token" ]; then
	put_file "$conf/lan-admin.toml" /etc/canaryd/lan-admin.toml 644
	put_file "$conf/admin.token" /etc/canaryd/admin.token 640 0 "$gpiogid"
	written+=("/etc/canaryd/lan-admin.toml (status page on 0.0.0.0:9090)" "/etc/canaryd/admin.token (0640 root:gpio)")
else
	rm_if /etc/canaryd/lan-admin.toml
	rm_if /etc/canaryd/admin.token
fi

run_debugfs "$cmds" "installing $debname $debver"

# Every file written is read back and compared.
for p in /usr/bin/canaryd /etc/canaryd/canaryd.toml; do
	src=$pkg$p
	[ "$p" = /etc/canaryd/canaryd.toml ] && src=$conf/canaryd.toml
	e2cat "$p" | cmp -s - "$src" || die "$p in the root file system differs from what was written"
done

# --- the FAT boot partition ------------------------------------------------
if mdir -i "$fat" ::canaryd >/dev/null 2>&1; then :; else
	mmd -i "$fat" ::canaryd 2>"$tmp/err" || die "cannot make canaryd/ on the boot partition: $(head -1 "$tmp/err")"
fi
fatfiles=(canaryd.toml)
[ -n "$token" ] && fatfiles+=(lan-admin.toml)
for f in "${fatfiles[@]}"; do
	mcopy -o -m -i "$fat" "$conf/$f" "::canaryd/$f" 2>"$tmp/err" ||
		die "cannot write canaryd/$f on the boot partition (full?): $(head -1 "$tmp/err")"
	written+=("boot partition: canaryd/$f")
done
if [ -z "$token" ]; then
	mdel -i "$fat" ::canaryd/lan-admin.toml >/dev/null 2>&1 || true
fi

# --- checks -----------------------------------------------------------------
if ! e2fsck -fn "$ext" >"$tmp/fsck" 2>&1; then
	die "e2fsck -fn finds errors in the root file system after writing: $(grep -v '^e2fsck [0-9]\|^Pass ' "$tmp/fsck" | head -1)"
fi
if command -v fsck.vfat >/dev/null; then
	dd if="$img" of="$tmp/fat.img" bs=1M iflag=skip_bytes,count_bytes skip="$fatoff" count=$((z1 * secsize)) status=none
	fsck.vfat -n "$tmp/fat.img" >"$tmp/fsckfat" 2>&1 ||
		die "fsck.vfat -n finds errors in the boot partition after writing: $(sed -n 2p "$tmp/fsckfat")"
	rm -f "$tmp/fat.img"
fi

if [ $use_offset = 0 ]; then
	dd if="$rootcopy" of="$img" bs=1M oflag=seek_bytes seek="$extoff" conv=notrunc status=none ||
		die "cannot write the root partition back into $img"
	rm -f "$rootcopy"
fi

# --- OUT --------------------------------------------------------------------
case $OUT in
*.xz)
	xz -T0 -c "$img" >"$img.xz" || die "cannot compress to $OUT"
	mv -f "$img.xz" "$outabs"
	rm -f "$img"
	;;
*) mv -f "$img" "$outabs" ;;
esac
ok=1

host=$(e2cat /etc/hostname | head -1 | tr -d '[:space:]')
host=${host:-raspberrypi}
echo "$me: wrote $OUT from $bname: $debname $debver ($ARCH), enabled in multi-user.target"
for w in "${written[@]}"; do echo "  $w"; done
echo "  (cmdline.txt, config.txt and the rest of the boot partition: untouched; e2fsck -fn: clean)"
if [ -n "$token" ]; then
	cat <<EOF

The status page is on the LAN, port 9090. Admin token (printed only this once;
it is in /etc/canaryd/admin.token on the Pi, not on the SD card's boot partition):

    CANARY_TOKEN=$token

  open  http://$host.local:9090/   (or the hostname you set in Raspberry Pi Imager; it asks for the token)
  then  curl -X POST -H "Authorization: Bearer \$CANARY_TOKEN" http://$host.local:9090/v1/rollback
EOF
else
	echo "NO_LAN_ADMIN=1: the status page stays on loopback (127.0.0.1:9090 on the Pi)."
fi
