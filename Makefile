# Zongzi: the library and its kv1 example.
#   make test    every test, with the race detector, and every benchmark once (what CI runs)
#   make run     a local 3-node kv1 cluster in the background; make stop ends it
#   make bench   kv1 under load, next to a trivial net/http server
#   make gen     regenerate the message bus's gRPC code

GO       ?= go
TESTTIME ?= 15m
RUN_DIR  ?= $(or $(TMPDIR),/tmp)/zongzi-run
# make bench writes until this many writes in all before it measures
# memory and disk (the issue's data dir after 1M writes).
BENCH_FILL ?= 1000000
# ./... skips directories starting with "_", so the example is named too.
PKGS     := ./... ./_examples/kv1

.PHONY: test test-short vet lint gen run stop bench chaos kv1

# Every benchmark also runs once, so that a broken one fails here and not
# only when someone measures with it.
test: vet
	$(GO) test -race -count=1 -timeout $(TESTTIME) $(PKGS)
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 $(PKGS)

test-short: vet
	$(GO) test -race -short -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

gen:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	cd internal/bus/pb && PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative bus.proto

kv1:
	$(GO) build -o bin/kv1 ./_examples/kv1

run:
	$(GO) run ./cmd/kv1cluster -dir $(RUN_DIR) start

stop:
	$(GO) run ./cmd/kv1cluster -dir $(RUN_DIR) stop

# kv1 under load next to the ceiling (bench/results.json), then ShardClient
# next to raw Dragonboat on an in-process cluster, 6 runs of each call
# (bench/shardclient.txt) compared by benchstat. About 8 minutes.
bench:
	$(GO) run ./cmd/kv1bench -fill $(BENCH_FILL) -out bench/results.json
	$(GO) test -run '^$$' -bench BenchmarkShardClient -benchtime 1s -count 6 . > bench/shardclient.txt \
		|| { cat bench/shardclient.txt; exit 1; }
	$(GO) tool benchstat -col /via -filter '.unit:ops/s' bench/shardclient.txt

# The linearizability checker with faults, CHAOS_DURATION of workload per
# scenario (make test runs a few seconds of each). CHAOS_SUMMARY=file also
# writes the summary as JSON; failing histories are saved under
# CHAOS_ARTIFACTS.
CHAOS_DURATION ?= 60s
chaos:
	CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -count=1 -run 'Chaos|Linear' -v -timeout 60m ./test/

# The example's by-hand targets work from the repository root too.
NODES := test-node-1 test-node-2 test-node-3 test-node-4 test-node-5 test-node-6
.PHONY: clean-data $(NODES)
clean-data $(NODES):
	$(MAKE) -C _examples/kv1 $@
