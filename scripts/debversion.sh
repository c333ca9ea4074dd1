#!/usr/bin/env bash
# Prints the Debian package version of this checkout (a native version: no
# Debian revision, so no "-").
#   newest v* tag on HEAD:          v1.2.3            -> 1.2.3
#   commits after it:               v1.2.3, 4 more    -> 1.2.3+git4.abc1234
#   a pre-release tag:              v1.3.0-rc1        -> 1.3.0~rc1 (sorts before 1.3.0)
#   no tag at all:                  0.0~git<commit date, UTC>.<short hash>
# A dirty tree adds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo 0.0
	exit 0
fi
hash=$(git rev-parse --short=7 HEAD)

if desc=$(git describe --tags --long --match 'v[0-9]*' HEAD 2>/dev/null); then
	# v1.2.3-rc1-4-gabc1234: the tag, the commits since, the hash.
	rest=${desc%-g*}
	n=${rest##*-}
	tag=${rest%-*}
	v=${tag#v}
	v=${v//-/\~}                          # Debian: "-" is the revision separator
	v=$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~\n' '.')
	if [ "$n" = 0 ]; then
		echo "$v"
	else
		echo "$v+git$n.$hash"
	fi
	exit 0
fi

date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d HEAD)
echo "0.0~git$date.$hash"
