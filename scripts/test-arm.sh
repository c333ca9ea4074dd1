#!/usr/bin/env bash
# Runs every package's tests as the Pi would: cross-compiled test binaries
# under qemu-user, on an ARM1176 (GOARM=6: Pi Zero and Pi 1, 32-bit) and on
# arm64 (Pi 3, 4 and 5 with a 64-bit OS).
#
# Each test binary runs in its package's directory, as `go test` would, so
# testdata/ resolves. -test.short is passed: under qemu-user a test cannot
# build and start the daemon the way it does on the host, so such
# integration tests skip themselves when testing.Short() is true.
#
# Environment: GO (default go), ARM_TEST_MINUTES (the time one package's
# tests may take, default 5).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
go=${GO:-go}
minutes=${ARM_TEST_MINUTES:-5}
out=$root/bin/test-arm

# name GOARCH GOARM emulator...
targets=(
	"armv6 arm 6 qemu-arm-static -cpu arm1176"
	"arm64 arm64 - qemu-aarch64-static"
)

pkgs=$($go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
if [ -z "$pkgs" ]; then
	echo "test-arm: no packages with tests" >&2
	exit 1
fi

failed=()
for target in "${targets[@]}"; do
	read -r name goarch goarm emu <<<"$target"
	read -ra emu <<<"$emu"
	command -v "${emu[0]}" >/dev/null || { echo "test-arm: ${emu[0]} not found (apt-get install qemu-user-static)" >&2; exit 1; }
	rm -rf "${out:?}/$name"
	mkdir -p "$out/$name"
	start=$SECONDS

	echo "== $name: building and running the test binaries under ${emu[*]}"
	for pkg in $pkgs; do
		bin=$out/$name/${pkg//\//_}.test
		log=$bin.log
		if ! env GOOS=linux GOARCH="$goarch" GOARM="${goarm/-/}" CGO_ENABLED=0 \
			$go test -c -o "$bin" "$pkg" >"$log" 2>&1; then
			printf 'FAIL  %-6s %-55s build\n' "$name" "$pkg"
			sed 's/^/    | /' "$log"
			failed+=("$name $pkg (build)")
			continue
		fi
		dir=$($go list -f '{{.Dir}}' "$pkg")
		t0=$SECONDS
		# The outer timeout is a backstop: -test.timeout fires first and
		# prints the stuck goroutines.
		if (cd "$dir" && timeout -k 10s "$((minutes + 2))m" \
			"${emu[@]}" "$bin" -test.short -test.timeout "${minutes}m") >"$log" 2>&1; then
			printf 'PASS  %-6s %-55s %4ds\n' "$name" "$pkg" $((SECONDS - t0))
		else
			printf 'FAIL  %-6s %-55s %4ds\n' "$name" "$pkg" $((SECONDS - t0))
			head -n 150 "$log" | sed 's/^/    | /'
			[ "$(wc -l <"$log")" -le 150 ] || echo "    | ... (all of it in $log)"
			failed+=("$name $pkg")
		fi
	done
	echo "== $name: $((SECONDS - start))s"
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "test-arm: FAILED:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "test-arm: all packages pass on armv6 and arm64"
