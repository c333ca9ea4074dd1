#!/usr/bin/env bash
# scripts/deb.sh VERSION: the Debian packages, built with nfpm (a Go tool
# dependency in go.mod: go tool nfpm), into ${DIST:-dist}/:
#   canaryd_VERSION_arm64.deb  from bin/linux_arm64 (Pi 3, 4, 5 on a 64-bit OS)
#   canaryd_VERSION_armhf.deb  from bin/linux_armv6 (GOARM=6: every 32-bit Pi)
#   canaryd_VERSION_amd64.deb  from bin/ if static, else a static build into
#                              bin/linux_amd64 (for tests on this machine)
# `make deb` builds the binaries first. DEB_ARCHES="amd64" builds a subset;
# DEB_CONFIG=file ships another /etc/canaryd/canaryd.toml (scripts/deb-test.sh
# makes an older package with it); DIST=dir writes elsewhere.
# Every binary must be static (CGO_ENABLED=0): it is checked, not assumed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

version=${1:-}
if [ -z "$version" ]; then
	echo "usage: scripts/deb.sh VERSION   (make deb passes scripts/debversion.sh)" >&2
	exit 2
fi
# A native package's version: starts with a digit, no "-" (no revision).
if ! [[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
	echo "deb.sh: $version is not a valid native Debian version (digits first; letters, digits, . + ~)" >&2
	exit 2
fi
dist=${DIST:-dist}
arches=${DEB_ARCHES:-arm64 armhf amd64}
GO=${GO:-go}

# The commit's time for the files and the changelog: the same tree gives
# the same packages.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# is_static BINARY GOARCH [GOARM]: built by Go with CGO off for that target.
is_static() {
	local info
	info=$($GO version -m "$1" 2>/dev/null) || return 1
	grep -Eq "^[[:space:]]+build[[:space:]]+CGO_ENABLED=0$" <<<"$info" || return 1
	grep -Eq "^[[:space:]]+build[[:space:]]+GOARCH=$2$" <<<"$info" || return 1
	if [ -n "${3:-}" ]; then
		grep -Eq "^[[:space:]]+build[[:space:]]+GOARM=$3$" <<<"$info" || return 1
	fi
}

bindir_for() {
	case $1 in
	arm64) echo bin/linux_arm64 ;;
	armhf) echo bin/linux_armv6 ;;
	amd64)
		if is_static bin/canaryd amd64 && is_static bin/canaryctl amd64; then
			echo bin
		else
			echo bin/linux_amd64
		fi
		;;
	*) echo "deb.sh: unknown architecture $1 (arm64, armhf, amd64)" >&2; return 1 ;;
	esac
}

# make build makes bin/ static; a bin/ built otherwise (a plain go build,
# with cgo on) gets a static copy, with the version string make build uses.
for arch in $arches; do
	if [ "$arch" = amd64 ] && [ "$(bindir_for amd64)" = bin/linux_amd64 ]; then
		gitversion=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
		echo "deb.sh: bin/canaryd is not static; building a static amd64 copy into bin/linux_amd64/"
		CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $GO build -trimpath \
			-ldflags "-s -w -X main.version=$gitversion" -o bin/linux_amd64/ ./cmd/canaryd ./cmd/canaryctl
	fi
done

# A native package needs /usr/share/doc/canaryd/changelog.gz.
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
commit=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
cat >"$stage/changelog" <<CHANGELOG
canaryd ($version) unstable; urgency=medium

  * Package built from canary-pi commit $commit. The project's history is
    its git log.

 -- canary-pi maintainers <maintainers@canary-pi.invalid>  $date
CHANGELOG
gzip -9n "$stage/changelog"
touch -d "@$SOURCE_DATE_EPOCH" "$stage/changelog.gz"

# The manual pages, as make docs generates them into docs/man/: compressed
# as Debian's policy wants (gzip -9, without a name or a time in the header).
mkdir -p "$stage/man"
for page in canaryd.8 canaryctl.8 canaryd.toml.5; do
	if [ ! -f "docs/man/$page" ]; then
		echo "deb.sh: docs/man/$page missing: run make docs" >&2
		exit 1
	fi
	gzip -9n <"docs/man/$page" >"$stage/man/$page.gz"
	touch -d "@$SOURCE_DATE_EPOCH" "$stage/man/$page.gz"
done

# One snapshot of the packaged files for all three packages, in the repo's
# layout (nfpm.yaml's paths are relative to it): an edit in the working tree
# during the build cannot make them differ or break nfpm's copy.
mkdir -p "$stage/tree/systemd" "$stage/tree/packaging/deb" "$stage/tree/docs"
cp README.md "$stage/tree/"
cp docs/*.md "$stage/tree/docs/"
cp systemd/canaryd.service systemd/canaryd.socket systemd/canaryd-demo@.service "$stage/tree/systemd/"
cp packaging/nfpm.yaml packaging/60-canaryd-gpio.rules "$stage/tree/packaging/"
cp "${DEB_CONFIG:-packaging/canaryd.toml}" "$stage/tree/packaging/canaryd.toml"
cp packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm \
	packaging/deb/copyright packaging/deb/lintian-overrides "$stage/tree/packaging/deb/"
chmod 0755 "$stage/tree/packaging/deb/postinst" "$stage/tree/packaging/deb/prerm" "$stage/tree/packaging/deb/postrm"
find "$stage/tree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
for arch in $arches; do
	bindir=$(bindir_for "$arch")
	case $arch in
	arm64) goarch=arm64 goarm= ;;
	armhf) goarch=arm goarm=6 ;;
	amd64) goarch=amd64 goarm= ;;
	esac
	for b in canaryd canaryctl; do
		if [ ! -x "$bindir/$b" ]; then
			echo "deb.sh: $bindir/$b missing: run make build arm (or make deb)" >&2
			exit 1
		fi
		if ! is_static "$bindir/$b" "$goarch" $goarm; then
			echo "deb.sh: $bindir/$b is not a static (CGO_ENABLED=0) GOARCH=$goarch${goarm:+ GOARM=$goarm} Go binary" >&2
			exit 1
		fi
	done
	out="$dist/canaryd_${version}_${arch}.deb"
	rm -f "$out"
	# nfpm reports its errors on stdout: show them only when it fails. It
	# writes a temporary name, renamed when complete, so that a failed run
	# leaves no truncated package behind. go tool runs in the module (here),
	# nfpm in the snapshot.
	nfpm=$($GO tool -n nfpm)   # builds it into the Go cache when needed
	if ! log=$(cd "$stage/tree" && CANARYD_VERSION=$version CANARYD_ARCH=$arch \
		CANARYD_BIN=$repo/$bindir CANARYD_STAGE=$stage \
		"$nfpm" package --config packaging/nfpm.yaml --packager deb --target "$out.tmp" 2>&1); then
		rm -f "$out.tmp"
		echo "deb.sh: nfpm failed for $arch:" >&2
		echo "$log" >&2
		exit 1
	fi
	mv "$out.tmp" "$out"
	echo "deb.sh: $out ($(du -k "$out" | cut -f1) KiB, from $bindir)"
done
