# hostmesh. Two commands on a fresh Debian machine:
#   make demo   the mesh on 3 simulated hypervisors (no libvirt needed)
#   make test   every test, the real libvirt lab included (root; installs its packages)
export GOFLAGS := -tags=libvirt_dlopen
GO ?= go
BIN := bin

# The build's identity, printed by `meshd --version` and `meshctl --version`
# and used as the package's version: the latest tag vX.Y.Z when there is
# one, else BASE_VERSION, with the commit appended (a Debian version must
# start with a digit). A build outside git falls back to the toolchain's VCS
# stamp (package version).
BASE_VERSION := 0.1.0
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' --abbrev=0 2>/dev/null); \
	c=$$(git rev-parse --short=12 HEAD 2>/dev/null); \
	echo "$${v:-v$(BASE_VERSION)}$${c:++git$$c}$$(git diff --quiet HEAD 2>/dev/null || echo .dirty)" | sed 's/^v//')
LDFLAGS := -X github.com/hostmesh/hostmesh/version.Version=$(VERSION) -X github.com/hostmesh/hostmesh/version.Commit=$(COMMIT)

# Debian packages the lab (real libvirt + QEMU hosts in namespaces) needs.
LAB_PKGS := qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu util-linux \
	libvirt-clients busybox-static cpio iproute2 iputils-ping curl kmod gzip

# Debian packages other tests need: promtool (package prometheus) checks the
# alert rules and the Grafana dashboard's queries; headless Chromium runs the
# web dashboard's browser test (chromedp), with a font for its screenshots;
# systemd-analyze (package systemd) verifies the packaged unit; groff
# (groff-base) renders the man pages; dbus-daemon runs the private system
# bus of the shutdown-policy tests (a fake logind on it).
TOOL_PKGS := prometheus chromium fonts-dejavu-core systemd groff-base dbus-daemon

.PHONY: all build demo test unit lab-test deps bench lab lab-down lab-smoke vet clean fuzz fuzz-short soak package

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/meshd ./cmd/meshctl

# deps installs what the tests need, only when missing. The package lists
# are always refreshed: the lab downloads the guest kernel package with
# apt-get download, which fails on missing or stale lists.
# package builds dist/hostmesh_VERSION_ARCH.deb: meshd, meshctl, the systemd
# unit, /etc/hostmesh/meshd.hcl, /var/lib/hostmesh, bash completion and man
# pages generated from the command lines (scripts/package.sh, dpkg-deb).
PKGDIR ?= dist
package:
	VERSION='$(VERSION)' LDFLAGS='$(LDFLAGS)' ./scripts/package.sh $(PKGDIR)

deps:
	apt-get update -qq
	@missing=""; for p in $(LAB_PKGS) $(TOOL_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(GO) mod download

demo: build
	./scripts/demo.sh

# -p 1: the lab's namespaces (hm-*) exist once per machine, so packages that
# use them must not run at the same time. scripts/testrun prints what go test
# prints and reruns once, with a WARNING, a test whose only failure is its lab
# guest's kernel panicking under QEMU's software emulation (lab.GuestCrashMark).
test: deps vet
	$(GO) run ./scripts/testrun -- -p 1 -timeout 75m -count=1 ./...
	$(MAKE) lab-smoke
	$(MAKE) fuzz-short

# lab-smoke runs `make lab` as an operator would and tears it down, failing
# if any of its steps (mesh up, guests seen, migrate, drain) failed.
lab-smoke:
	rc=0; $(MAKE) lab || rc=$$?; $(MAKE) lab-down; exit $$rc

# Fuzz targets (listed in scripts/fuzz-targets): a short fixed time each in
# CI, FUZZTIME each (default 60s) with make fuzz.
FUZZTIME ?= 60s
fuzz-short:
	FUZZTIME=10s ./scripts/fuzz.sh

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

unit:
	$(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e /testcluster/lab -e /testcluster/e2e -e /migrate/virt)

vet:
	$(GO) vet ./...

# The randomized fault matrix (testcluster/faults_test.go) over SEEDS
# schedules (seeds FIRST..FIRST+SEEDS-1), PARALLEL at a time; `make unit`
# runs a fixed 30. It ends with "N schedules, V violations" and the wall
# time; the full log is in soak.log, and a failing schedule's replay command
# is printed. Sim only: no lab, no heavy lock needed (run it at nice 19).
SEEDS ?= 100
FIRST ?= 1
PARALLEL ?= 4
soak:
	@start=$$(date +%s); \
	FAULT_SCHEDULES=$(SEEDS) FAULT_FIRST=$(FIRST) FAULT_PARALLEL=$(PARALLEL) $(GO) test -count=1 -timeout 0 -v -run 'TestFaultSchedules$$' ./testcluster/ > soak.log 2>&1; \
	rc=$$?; grep -E 'violation: |replay: |schedules, |refused a send' soak.log; \
	echo "seeds $(FIRST)..$$(($(FIRST)+$(SEEDS)-1)), $(PARALLEL) at a time, $$(( $$(date +%s) - start )) s wall"; exit $$rc

bench: deps build
	./scripts/bench.sh

# A real libvirt mesh to try by hand: 3 lab hosts with meshd, 3 guests on
# h1, one migrated and h1 drained with meshctl; left running (make lab-down).
lab: deps build
	$(GO) run ./testcluster/lab/labctl mesh -meshd $(BIN)/meshd -meshctl $(BIN)/meshctl

lab-down:
	$(GO) run ./testcluster/lab/labctl down

clean:
	rm -rf $(BIN)
