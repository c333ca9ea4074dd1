# scripts/e2e/lib.sh: what make e2e (scripts/e2e.sh) and make e2e-pi
# (scripts/e2e-pi.sh; scripts/e2e-pi0.sh takes stage and need_tools) share: progress lines, the base image
# and make image on it, the test units added with debugfs, and the QEMU guest
# with its command channel to canary-e2e (scripts/e2e/guest).
#
# The sourcing script sets: repo, outdir, E2E_NAME (the progress prefix) and
# calls e2e_init. Globals it reads afterwards: work, img, fat, rootfs, token,
# qemu_pid, console, reply.

t0=$(date +%s)
tl=$t0
stage() {
	local now
	now=$(date +%s)
	printf '::: %s: %s (+%ss, %ss total)\n' "$E2E_NAME" "$1" $((now - tl)) $((now - t0))
	tl=$now
}
note() { echo "$E2E_NAME: $*"; }

qemu_pid=
reader_pid=
console=
work=
ready=
cleanup() {
	[[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
	[[ -n $reader_pid ]] && kill "$reader_pid" 2>/dev/null
	if [[ -n $work && -z ${E2E_KEEP:-} ]]; then rm -rf "$work"; fi
	[[ -n $work && -n ${E2E_KEEP:-} ]] && note "kept $work"
	return 0
}

fail() {
	echo "$E2E_NAME: FAIL: $*" >&2
	if [[ -n $console && -s $console ]]; then
		echo "$E2E_NAME: ----- last 80 lines of the guest console ($console) -----" >&2
		tail -n 80 "$console" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' >&2
		echo "$E2E_NAME: ----- end of the guest console -----" >&2
	fi
	# If the guest still listens, have it write its diagnostics and power off.
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null && [[ -n $ready ]]; then
		send "collect failed" && wait_reply collect 60 &&
			send poweroff && wait_qemu 60 >/dev/null 2>&1 || true
	fi
	if [[ -n ${img:-} && -f ${img:-} ]]; then
		fetch_out "$outdir/guest-after-failure" >/dev/null 2>&1 || true
	fi
	[[ -n $console && -s $console ]] && cp "$console" "$outdir/" 2>/dev/null
	echo "$E2E_NAME: what there is is in $outdir" >&2
	exit 1
}

# need_tools COMMAND:PACKAGE...: installs the packages of the commands missing.
need_tools() {
	local need=() t
	for t in "$@"; do
		command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
	done
	if ((${#need[@]})); then
		note "installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
}

# e2e_init [KEEP...]: root, the tools, a fresh $outdir (but for the entries
# KEEP in it) and a work directory.
e2e_init() {
	[[ $(id -u) == 0 ]] || { echo "$E2E_NAME: run as root (the base image is built in a chroot under qemu-user)" >&2; exit 1; }
	need_tools qemu-system-aarch64:qemu-system-arm mcopy:mtools sfdisk:fdisk debugfs:e2fsprogs \
		curl:curl jq:jq mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static \
		mkfs.vfat:dosfstools arch-test:arch-test xz:xz-utils
	export MTOOLS_SKIP_CHECK=1
	# A fresh $outdir, but for the other tests' results in it (KEEP).
	local keep=() k
	for k in "$@"; do keep+=(! -name "$k"); done
	mkdir -p "$outdir"
	find "$outdir" -mindepth 1 -maxdepth 1 "${keep[@]}" -exec rm -rf {} +
	work=$(mktemp -d /var/tmp/canary-e2e.XXXXXX)
	trap cleanup EXIT
	stage "tools; work dir $work, results in $outdir"
}

# Partition offsets from the MBR, as image.sh finds them.
part_start() { sfdisk -J "$1" | jq -r ".partitiontable.partitions[$(($2 - 1))].start // 0"; } # IMG N
debugfs_cmd() { debugfs -R "$1" "$rootfs" 2>/dev/null; }

# e2e_image: the stand-in Raspberry Pi OS (cached), make image on it as a
# user runs it, the token it wrote, and the test units added to it. Sets img,
# fat (mtools' IMG@@OFFSET), rootfs (debugfs's IMG?offset=OFFSET), token.
e2e_image() {
	# "if !": under set -e and pipefail a failing pipeline would end the
	# script before fail could say why.
	if ! bash scripts/e2e-base.sh "$work/base.img" 2>&1 | sed -u 's/^/  /'; then
		fail "scripts/e2e-base.sh failed"
	fi
	stage "base image"

	img=$work/canary-pi.img
	if ! ${MAKE:-make} --no-print-directory image BASE="$work/base.img" OUT="$img" ARCH=arm64 2>&1 | tee "$outdir/make-image.log" | sed -u 's/^/  /' ||
		[[ ! -s $img ]]; then
		fail "make image BASE=$work/base.img OUT=$img ARCH=arm64 failed (make-image.log)"
	fi
	stage "make image"

	local boot_off root_off f
	boot_off=$(($(part_start "$img" 1) * 512))
	root_off=$(($(part_start "$img" 2) * 512))
	[[ $boot_off -gt 0 && $root_off -gt 0 ]] || fail "no partitions 1 and 2 in $img"
	fat="$img@@$boot_off"
	rootfs="$img?offset=$root_off"

	# Raspberry Pi Imager's files on the FAT partition are as they were.
	for f in cmdline.txt config.txt firstrun.sh user-data network-config; do
		cmp -s <(mtype -i "$work/base.img@@$(($(part_start "$work/base.img" 1) * 512))" "::$f") <(mtype -i "$fat" "::$f") ||
			fail "make image changed $f on the FAT partition"
	done

	token=$(debugfs_cmd "cat /etc/canaryd/admin.token" | tr -d '[:space:]')
	[[ -n $token ]] || fail "no /etc/canaryd/admin.token in the image (make image puts the status page on the LAN with a token)"
	grep -qF "$token" "$outdir/make-image.log" || fail "make image did not print the admin token it wrote"
	note "admin token from make image: ${token:0:4}…"

	# The report unit and its script. The demo backends are make image's:
	# with the package's example config it enables them, so the first boot
	# serves.
	local wants=/etc/systemd/system/multi-user.target.wants
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
}

free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 30000))
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
	return 1
}

# start_qemu N ARGS...: qemu-system-aarch64 with ARGS in the background, boot
# N. The command channel is the chardev "ctl" (a pipe at $work/ctl), which
# ARGS hand to the guest as a virtio-serial port or a USB serial adapter;
# the console is $work/console-bootN.log, which ARGS name in their -serial.
ctl=
replies=
start_qemu() {
	local n=$1
	shift
	ctl=$work/ctl
	replies=$work/ctl.replies
	console=$work/console-boot$n.log
	rm -f "$ctl.in" "$ctl.out"
	mkfifo "$ctl.in" "$ctl.out"
	: >"$replies"
	seen=0
	ready=
	qemu-system-aarch64 "$@" -chardev "pipe,id=ctl,path=$ctl" -display none -no-reboot \
		>"$work/qemu-boot$n.log" 2>&1 &
	qemu_pid=$!
	exec 4<>"$ctl.in" # read-write: a write never blocks, even after QEMU is gone
	cat "$ctl.out" >>"$replies" &
	reader_pid=$!
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
# The guest's ports, forwarded to 127.0.0.1:$http_port (:80) and
# $admin_port (:9090) by the script's QEMU netdev; boot_timeout in seconds.
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
# finish_boot N: the guest's report collected, powered off, its e2e-out/
# fetched into $outdir/guest.
finish_boot() {
	send collect "boot$1"
	wait_reply collect 120 || fail "boot $1: the guest did not collect its report"
	send poweroff
	wait_qemu 120 || fail "boot $1: the guest did not power off within 120 s"
	cp "$work/console-boot$1.log" "$outdir/"
	rm -rf "$outdir/guest"
	fetch_out "$outdir/guest" || fail "no e2e-out/ on the FAT partition after boot $1"
}
