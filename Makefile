# vibekit-pipe: make demo runs the main job on an embedded sample; make test runs every test.
GO ?= go
BIN := bin

.PHONY: all build demo test bench fixtures vet fmt clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/vibekit-pipe ./cmd/vibekit

# Pipe a sample agent session through vibekit-pipe into a fresh database, then dump it.
demo: build
	@rm -rf $(BIN)/demo && mkdir -p $(BIN)/demo
	@echo '== vibekit-pipe (the input passes through to stdout):'
	$(BIN)/vibekit-pipe --db $(BIN)/demo/telemetry.db --session demo-1 --agent claude --mode code \
		--prompt "fix the failing test" --stats < testdata/demo/session.txt
	@echo '== vibekit telemetry dump:'
	$(BIN)/vibekit telemetry dump --db $(BIN)/demo/telemetry.db
	@echo '== vibekit telemetry dump --jq:'
	$(BIN)/vibekit telemetry dump --db $(BIN)/demo/telemetry.db --jq '{s: .sessionId, t: .eventType, data: .streamData}'

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Micro-benchmarks (decoding, commits, redaction, the preset mapper, stdin against
# --follow), then 1M seeded events: ingest, dump, dump --jq, rotation, --follow, the
# claude preset and redaction, beside the sqlite3 CLI, zstd and jq; then usage reports
# over 200,000 Claude Code transcript lines beside ccusage (installed from npm).
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s . ./sqlite ./reader ./redact ./jq ./internal/cli
	tools/capture/capture.sh --install-only || echo "bench: ccusage could not be installed: the usage figures go without it"
	$(GO) run ./tools/vkbench -bin $(BIN) -n 1000000 -out docs/BENCHMARKS.md

# Run the real agent CLIs (npm) offline against tools/modelstub and keep their output,
# transcripts and ccusage's reports as fixtures in testdata/agents/real/.
fixtures:
	tools/capture/capture.sh

fmt:
	gofmt -w .

clean:
	rm -rf $(BIN)
