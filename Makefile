# canary-pi: build for this machine, cross-compile for the Pi, test.
# `make` alone lists the targets.

GO      ?= go
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
CMDS    := ./cmd/canaryd ./cmd/canaryctl
GOBUILD := $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
# Every binary is static, as the packages ship them: the Pi's run on any
# Raspberry Pi OS, old or new, and this machine's measure what ships (a cgo
# build maps libc and NSS modules too: about 2 MiB more RSS).
ARMENV  := GOOS=linux CGO_ENABLED=0

# TESTFLAGS adds go test flags to the host run: CI passes -count=1.
TESTFLAGS ?=

.DEFAULT_GOAL := help
.PHONY: help build arm demo docs test vet staticcheck fmt-check test-race test-fleet test-verdict verdict-table test-fuzz test-arm test-image bench bench-nginx soak deb image image-check e2e e2e-pi clean

# The package version: Debian's rules (it starts with a digit), from the
# newest v* tag, else 0.0 with the commit: 0.0~git20261201.fae91cf.
# Once per make: a commit made while make deb and make image run must not
# name two different packages.
ifndef DEBVERSION
DEBVERSION := $(shell bash scripts/debversion.sh)
endif
# make image: which Pi (arm64: Pi 3, 4, 5 on a 64-bit OS; armhf: every Pi on
# a 32-bit OS), from which downloaded Raspberry Pi OS Lite image, to which file.
ARCH   ?= arm64
BASE   ?=
OUT    ?= canary-pi.img
CONFIG ?=
# make demo: the proxy's address; empty, the demo's own (127.0.0.1:8080).
LISTEN ?=

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

build: ## canaryd and canaryctl for this machine, static, into bin/
	CGO_ENABLED=0 $(GOBUILD) -o bin/ $(CMDS)

arm: ## static binaries for the Pi, into bin/linux_armv6, bin/linux_armv7, bin/linux_arm64
	$(ARMENV) GOARCH=arm GOARM=6 $(GOBUILD) -o bin/linux_armv6/ $(CMDS)
	$(ARMENV) GOARCH=arm GOARM=7 $(GOBUILD) -o bin/linux_armv7/ $(CMDS)
	$(ARMENV) GOARCH=arm64 $(GOBUILD) -o bin/linux_arm64/ $(CMDS)

demo: build ## run canaryd -demo: pong-v1 and pong-v2 at 10:5 on 127.0.0.1:8080 (LISTEN=ADDR: elsewhere)
	bin/canaryd -demo$(if $(LISTEN), -listen $(LISTEN))

# Each generator is a test beside what it documents: the config's keys
# (internal/docgen), canaryd's flags, canaryctl's commands. Without -update
# the same tests fail when a file is stale; -short skips cmd/canaryd's
# build of the binaries.
docs: ## regenerate docs/configuration.md and the manual pages in docs/man/ from the code
	$(GO) test -short -count=1 -run '^(TestConfigurationReferenceIsCurrent|TestConfigManPageIsCurrentAndRenders|TestManPageIsCurrentAndRenders)$$' \
		./internal/docgen ./cmd/canaryd ./cmd/canaryctl -update

test: vet staticcheck fmt-check test-race test-verdict test-fleet test-fuzz test-arm test-image ## everything CI runs

vet: ## go vet
	$(GO) vet ./...

staticcheck: ## staticcheck, a go tool dependency (go.mod pins its version)
	$(GO) tool staticcheck ./...

fmt-check: ## fail on files that gofmt would change
	@files=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')); \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi

test-race: ## the tests on this machine, with the race detector
	$(GO) test -race -timeout 15m $(TESTFLAGS) ./...

# The race detector would make the simulation's half minute many: it has a
# build tag of its own (!race), and runs here.
test-fleet: ## the fleet: three canaryd and a three-node nats-server cluster in network namespaces (root, iproute2, nats-server)
	$(GO) test -count=1 -timeout 10m -run '^TestFleetInNetworkNamespaces$$' -v ./cmd/canaryd -args -fleet

test-verdict: ## the verdict's simulation: false alarms over 15 000 simulated release-hours, detection times, a step's power, the fleet's pooled test
	$(GO) test -count=1 -timeout 10m -run 'TestNeverRedOnNoise|TestDetectionTimes|TestASafeStepHadThePowerToSeeARegression|TestThePooledVerdictIsNeverRedOnNoise|TestTwoSmallSitesFailingAlikeAreFoundSoonerPooled' ./appliance/analysis

verdict-table: ## the verdict's detection times, every row, 1000 releases each, into docs/verdict-table.md
	$(GO) test -count=1 -timeout 30m -run '^TestDetectionTimes$$' ./appliance/analysis -args -verdict.table-runs 1000 -verdict.table $(CURDIR)/docs/verdict-table.md

# Counts, not durations: a -fuzztime of seconds races Go 1.26's fuzzing
# coordinator at the deadline and fails with a bare "context deadline
# exceeded" and no crasher (go.dev/issue/75804, fixed in Go 1.27). A config
# is kilobytes: minimizing each new input the default 60 s would take the
# whole run, hence FuzzLoad's -fuzzminimizetime. About 5 s each here.
test-fuzz: ## the proxy's request fuzzer, the config loader's and the nginx importer's, a bounded count of inputs each (corpora: appliance/*/testdata/fuzz)
	$(GO) test -run '^$$' -fuzz FuzzRequest -fuzztime 40000x -timeout 5m ./appliance/proxy
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 10000x -fuzzminimizetime 200x -timeout 5m ./appliance/config
	$(GO) test -run '^$$' -fuzz FuzzConvert -fuzztime 20000x -fuzzminimizetime 200x -timeout 5m ./appliance/nginxconf

test-arm: arm ## the tests on an ARMv6 (Pi Zero/1) and arm64 under qemu, then the ARMv6 demo
	bash scripts/test-arm.sh
	bash scripts/arm-demo-check.sh bin/linux_armv6

test-image: build arm ## make image on a small stand-in Raspberry Pi OS image, checked file by file
	bash scripts/image-test.sh

deb: build arm ## Debian packages for the Pi (arm64, armhf) and this machine (amd64), into dist/
	bash scripts/deb.sh $(DEBVERSION)

image: image-check build deb ## a Raspberry Pi OS image with canaryd: make image BASE=raspios.img.xz OUT=canary-pi.img [ARCH=arm64|armhf] [CONFIG=file.toml]
	bash scripts/image.sh --base "$(BASE)" --out "$(OUT)" --arch "$(ARCH)" \
		--deb dist/canaryd_$(DEBVERSION)_$(ARCH).deb $(if $(CONFIG),--config "$(CONFIG)")

# The arguments and the free space, before four minutes of building.
image-check:
	@bash scripts/image.sh --check --base "$(BASE)" --out "$(OUT)" --arch "$(ARCH)" $(if $(CONFIG),--config "$(CONFIG)")

e2e: build deb ## lintian, the amd64 package into a Debian root, then boot a stand-in Raspberry Pi OS image under QEMU (arm64); results in e2e-out/
	lintian --fail-on error,warning dist/canaryd_$(DEBVERSION)_*.deb
	bash scripts/deb-test.sh dist/canaryd_$(DEBVERSION)_amd64.deb
	bash scripts/e2e.sh

e2e-pi: build arm ## the image from make image as an SD card on QEMU's raspi3b, the real GPIO driver checked from the host through the SoC's registers; the ARMv6 build on raspi0; results in e2e-out/pi/ and e2e-out/pi0/
	bash scripts/e2e-pi.sh

bench: ## benchmarks of the appliance packages
	$(GO) test -run '^$$' -bench . -benchmem ./appliance/... ./gpio/...

# The long form of the fault suite; `go test` (make test-race) runs its short
# form. Without the race detector, so that the memory it measures is canaryd's.
soak: build ## the fault suite under load (reloads, crashes, SIGKILL, button storms), a few minutes; per-fault report in soak-report.txt
	$(GO) test -count=1 -timeout 30m -run '^TestSoak$$' -v ./cmd/canaryd -args -soak=long -soak.report=$(CURDIR)/soak-report.txt

bench-nginx: build ## canaryd against nginx, side by side (scripts/bench-nginx.sh)
	CANARYD=$${CANARYD:-bin/canaryd} bash scripts/bench-nginx.sh

clean: ## remove bin/ and the test binaries
	rm -rf bin/ dist/ e2e-out/ soak-report.txt
