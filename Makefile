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

## test: formatting and vet, Go tests with -race (PostgreSQL + SQLite), then the
## Node conformance suite driving the real npm client libraries
test: vet test-go test-conformance

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './conformance/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 -timeout 15m ./...

conformance-deps:
	cd conformance && npm ci --no-audit --no-fund --loglevel=error

test-conformance: build conformance-deps
	cd conformance && SWITCHBOARD_BIN=$(CURDIR)/$(BIN) npm test

## killtest: the durability tests alone (conformance/test/durability.test.js):
## 20 kill -9 runs per store, restart grace, second node refused
killtest: build conformance-deps
	cd conformance && DURABILITY_RUNS=20 SWITCHBOARD_BIN=$(CURDIR)/$(BIN) node --test --test-concurrency=1 test/durability.test.js

clean:
	rm -rf bin data

## bench: the benchmark scenarios of docs/bench.md (Switchboard vs a
## centrifugal/centrifuge peer), about 9 minutes on 2 cores; prints the table
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
