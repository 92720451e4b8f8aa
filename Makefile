# orch — build, test, demo and bench entry points.
SHELL := /bin/bash
GO ?= go
# Tags shared by every build and test so the cgo SQLite package is compiled once.
export GOFLAGS := -tags=osusergo,netgo,sqlite_omit_load_extension
STATIC_LDFLAGS := -linkmode external -extldflags -static -s -w
LAB_DIR ?= /tmp/orch-lab

.PHONY: build test deps vet fmt-check unit demo lab-down bench soak image clean recap-compare bench-scale

build: bin/nodeagent bin/orch

bin/nodeagent: FORCE
	CGO_ENABLED=1 $(GO) build -ldflags '$(STATIC_LDFLAGS)' -o $@ ./nodeagent/cmd/nodeagent

bin/orch: FORCE
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $@ ./orchestrator/cmd/orch

FORCE:

# deps installs the system tools the tests drive (sshd, LXC, btrfs, dnsmasq, nftables) when root.
deps:
	@scripts/install-deps.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

# test: everything, including the integration tests on real test hosts (they skip when not root).
test: deps build vet fmt-check
	$(GO) test -count=1 -timeout 40m ./...

unit:
	$(GO) test -count=1 -short ./...

demo: deps build
	@scripts/demo.sh $(LAB_DIR)

lab-down:
	@scripts/lab-down.sh --all

# bench: orch side by side with scp, Ansible and LXD (installed by scripts/bench-peers.sh);
# prints a Markdown table and writes integration/bench/results.json.
bench: deps build
	@scripts/bench-peers.sh
	set -o pipefail; $(GO) test -run '^$$' -bench SideBySide -benchtime 1x -timeout 30m ./integration/bench/ | tee bench.out

# bench-scale: what does not fit bench's 20 minutes (issue 19): 200 namespace-host members
# (ORCH_BENCH_MEMBERS) and raft over a 100 ms RTT link; prints its table and writes
# integration/bench/results-scale.json.
bench-scale: deps build
	set -o pipefail; $(GO) test -run '^$$' -bench Scale -benchtime 1x -timeout 60m ./integration/bench/ | tee bench-scale.out

# soak: the long Jepsen-style run (integration/jepsen); SOAK_DURATION, SOAK_SEED, SOAK_MEMBERS;
# porcupine's visualisation of a failed window goes to SOAK_OUT, and the whole output with the
# lab's log dumps (which the terminal is spared) to SOAK_OUT/soak.log. SOAK_SEED 0 picks a random
# seed and prints it; pass it back as SOAK_SEED to repeat a run. SOAK_FAULT runs one fault.
SOAK_DURATION ?= 10m
SOAK_SEED ?= 0
SOAK_FAULT ?=
SOAK_MEMBERS ?= 3
SOAK_OUT ?= /tmp/orch-soak
soak: deps
	mkdir -p $(SOAK_OUT)
	set -o pipefail; $(GO) test -count=1 -v -timeout 0 -run '^TestSoak$$' ./integration/jepsen -soak.duration $(SOAK_DURATION) -soak.seed $(SOAK_SEED) -soak.members $(SOAK_MEMBERS) -jepsen.out $(SOAK_OUT) -jepsen.fault '$(SOAK_FAULT)' 2>&1 | tee $(SOAK_OUT)/soak.log | grep -v '^    testing.go'

# recap-compare: every corpus playbook that can run on lab hosts (playbooks/testdata/corpus/LAB)
# runs for real with ansible-playbook on fresh Debian 12 hosts and with orch on their twins;
# the per-host PLAY RECAPs are compared and written to playbooks/testdata/corpus/RECAP-LAB.
# Needs root, debootstrap, LXC and ansible-playbook (make deps); about 40 minutes on a busy 2-core
# machine (each playbook 40 s to 8 min: fresh hosts get apt lists, python3 and sudo first).
# RECAP_ONLY=regexp runs the matching playbooks only and replaces their lines in RECAP-LAB.
RECAP_PARALLEL ?= 3
RECAP_ONLY ?=
recap-compare: deps
	set -o pipefail; ORCH_RECAP_LAB=1 ORCH_RECAP_WRITE=1 ORCH_RECAP_ONLY='$(RECAP_ONLY)' $(GO) test -count=1 -v -timeout 120m -parallel $(RECAP_PARALLEL) -run '^TestCorpusRecapOnLab$$' ./integration/playrecap/ 2>&1 | grep -v '^    testing.go'

# image: a tiny busybox container image from the host's busybox-static, for tests and the demo.
image:
	@scripts/mkimage.sh

clean:
	rm -rf bin
