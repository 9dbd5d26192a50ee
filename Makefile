# clab: the two entry points README.md promises, plus the pieces they use.
# Run as root on Debian/Ubuntu with a Swift 6 toolchain on PATH (or in /opt/swift).
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

# What clab needs to build and run; what the tests compare it against; what the benchmarks do.
DEBS := busybox-static gcc libc6-dev util-linux uidmap iproute2 procps libbpf-dev libelf-dev zlib1g-dev pkg-config nftables libseccomp-dev
TEST_DEBS := strace skopeo umoci chromium-headless-shell runc crun python3 podman docker-registry apache2-utils curl
BENCH_DEBS := hyperfine runc crun strace bpftrace podman skopeo

.PHONY: demo test deps install-debs registry-service-off build release lint bench vm-test clean

demo: deps  # the tour needs only clab and clab-init (not clabd's NIO and BoringSSL)
	swift build -c release --product clab
	swift build -c release --product clab-init
	./.build/release/clab tour

test: deps
	@had_registry=$$(dpkg -s docker-registry >/dev/null 2>&1 && echo yes); \
	$(MAKE) --no-print-directory install-debs PKGS="$(TEST_DEBS)" && \
	if [ -z "$$had_registry" ]; then $(MAKE) --no-print-directory registry-service-off; fi
	@# The daemon's tests drive clabd with a real docker client: Debian's where none is installed.
	@command -v docker >/dev/null || $(MAKE) --no-print-directory install-debs PKGS="docker.io"
	swift build --build-tests 2>&1 | tee .build-log.txt; test $${PIPESTATUS[0]} -eq 0
	@# A dependency's manifest (CMakeLists.txt beside its sources) is not ours to fix: that one
	@# SwiftPM notice is left out; every warning of clab's own code still fails the build.
	@! grep -E "warning:" .build-log.txt | grep -vE "^warning: 'swift-distributed-tracing': found [0-9]+ file\(s\) which are unhandled" \
		|| { echo "build has warnings (see above)"; exit 1; }
	swift format lint --strict $$(git ls-files '*.swift')
	swift test --parallel --skip Timing 2>&1 | tee .test-log.txt; test $${PIPESTATUS[0]} -eq 0
	@# Timing-sensitive suites (a CPU-quota ratio, the cgroup v2 VM under qemu) run alone.
	swift test --no-parallel --filter Timing 2>&1 | tee -a .test-log.txt; test $${PIPESTATUS[0]} -eq 0

deps:
	@$(MAKE) --no-print-directory install-debs PKGS="$(DEBS)"

install-debs:  # PKGS: installs those not installed yet
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# Debian's docker-registry starts a registry on :5000 (all interfaces) when it is installed,
# and enables it at boot. The tests start their own on 127.0.0.1 with a temp config: when
# `make test` installed the package, it stops and disables that one unit, and nothing else.
registry-service-off:
	@if [ -d /run/systemd/system ]; then systemctl disable --now docker-registry.service 2>/dev/null || true; \
	else invoke-rc.d docker-registry stop 2>/dev/null || true; update-rc.d docker-registry disable >/dev/null 2>&1 || true; fi

build:
	swift build

release:  # Package.swift links clab and clab-init fully static in release
	swift build -c release

bench: deps release
	@$(MAKE) --no-print-directory install-debs PKGS="$(BENCH_DEBS)"
	bench/start.sh
	bench/network.sh
	bench/trace.sh

vm-test: deps  # clab on a real cgroup v2 kernel (qemu, software emulation); see tests-vm/
	tests-vm/run-vm.sh --add tests-vm/lifecycle-cgroup-v2.sh:/root/lifecycle.sh -- 'clab check 8 && sh lifecycle.sh'

clean:
	rm -rf .build .build-vm .build-log.txt .test-log.txt
