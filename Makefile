# Switchboard — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     := bin/switchboard
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: run build test vet test-go test-conformance conformance-deps killtest bench bench-micro clean

## run: build and start the gateway on its embedded default (SQLite in ./data, :8080)
run: build
	./$(BIN) serve

## build: compile the binary into bin/
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/switchboard

## release: static linux/amd64 and linux/arm64 binaries, version stamped, in
## dist/ with their SHA-256 sums (CGO off: the SQLite driver is pure Go)
.PHONY: release
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
release:
	@rm -rf dist && mkdir -p dist
	@set -e; for p in $(RELEASE_PLATFORMS); do \
		out=dist/switchboard-$${p%/*}-$${p#*/}; \
		echo "== $$out ($(VERSION))"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath \
			-ldflags "-s -w -X main.version=$(VERSION)" -o $$out ./cmd/switchboard; \
	done
	cd dist && sha256sum switchboard-* > SHA256SUMS && cat SHA256SUMS

## test: formatting and vet, Go tests with -race (PostgreSQL + SQLite), a short
## run of every fuzz target, then the Node conformance suite driving the real
## npm client libraries
test: vet test-go fuzz-ci test-conformance

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './conformance/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 -timeout 15m ./...

## fuzz: run every Go fuzz target (func FuzzXxx in any *_test.go) for
## FUZZTIME each, one `go test -fuzz` per target (-fuzz takes one target per
## package run). Inputs that fail are written to the package's
## testdata/fuzz/FuzzXxx/, where plain `go test` replays them from then on.
## fuzz-ci: the same for FUZZTIME_CI each, for `make test`: 10s each keeps the
## fuzzing of today's 11 targets under 2 minutes.
.PHONY: fuzz fuzz-ci
FUZZTIME ?= 60s
FUZZTIME_CI ?= 10s
# Go minimizes every new interesting input for up to 60s by default; for the
# module targets (an HTTP call and database work per input) that took most
# of a short run (a 30s run of FuzzChatBodies: 6k executions and 9 new inputs
# with it, 14k and 70 with 100x).
# A failing input is still written, only less minimized.
FUZZMINIMIZETIME ?= 100x
# "./pkg:FuzzName" for every fuzz target, found rather than listed so a new
# target is fuzzed without touching this file.
FUZZ_TARGETS = $(shell grep -rEo --include='*_test.go' --exclude-dir=.git --exclude-dir=node_modules --exclude-dir=conformance \
	'^func Fuzz[A-Za-z0-9_]*' . | sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz.*)$$|\1:\2|' | sort)
# Go before 1.27 can fail a target with a bare "context deadline exceeded" when
# -fuzztime runs out (a race in its fuzz coordinator, go.dev/issue/75804), more
# often on a busy machine. That output, with no failing input and no test
# message (file.go:line), is the race and not a finding; anything else fails.
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log $$log.rc' EXIT; \
	for t in $(FUZZ_TARGETS); do \
		echo "== $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		{ rc=0; $(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) "$${t%%:*}" || rc=$$?; echo $$rc >$$log.rc; } 2>&1 | tee $$log; \
		[ "$$(cat $$log.rc)" = 0 ] && continue; \
		if grep -qE '^[[:space:]]+context deadline exceeded$$' $$log && ! grep -qE 'Failing input|\.go:[0-9]+' $$log; then \
			echo "== $${t#*:}: fuzz deadline race of Go < 1.27 (go.dev/issue/75804), no failing input: not a failure"; \
			continue; \
		fi; \
		exit 1; \
	done

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_CI)

conformance-deps:
	cd conformance && npm ci --no-audit --no-fund --loglevel=error

test-conformance: build conformance-deps
	cd conformance && SWITCHBOARD_BIN=$(CURDIR)/$(BIN) npm test

## killtest: the durability tests alone (conformance/test/durability.test.js):
## 20 kill -9 runs per store, restart grace, second node refused
killtest: build conformance-deps
	cd conformance && DURABILITY_RUNS=20 SWITCHBOARD_BIN=$(CURDIR)/$(BIN) node --test --test-concurrency=1 test/durability.test.js

clean:
	rm -rf bin data dist

## bench: the benchmark scenarios of docs/bench.md (Switchboard vs a
## centrifugal/centrifuge peer), about 13 minutes on 2 cores; prints the table
## and writes it to BENCHMARKS.md. BENCH_FLAGS adds flags, e.g.
## BENCH_FLAGS="-reps 3" for medians of three, "-only fanout" for one scenario.
BENCH_FLAGS ?=
bench: build
	$(GO) build -o bin/switchboard-bench ./cmd/switchboard-bench
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	BENCH_COMMAND="make bench BENCH_FLAGS='$(BENCH_FLAGS)'" ./bin/switchboard-bench run -switchboard $(BIN) $(BENCH_FLAGS)

## bench-micro: Go micro-benchmarks of the hot paths (frame encoding, hub
## fan-out, outbox insert on SQLite and PostgreSQL)
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/... ./domain/
