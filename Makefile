# xsell — see README.md. Every target works on a fresh clone with Go installed; PostgreSQL
# comes from $DATABASE_URL or a private cluster the tools start themselves. Only `setup`
# installs anything (PostgreSQL, when missing and you are root; see scripts/setup.sh).
GO ?= go
export GOFLAGS ?= -buildvcs=auto

.PHONY: all setup build run test check-fmt vet bench fuzz clean

all: build

## setup: install the PostgreSQL server binaries with apt-get if missing and you are root, else print the command
setup:
	./scripts/setup.sh

build:
	$(GO) build -o bin/ ./cmd/...

## run: the server on $DATABASE_URL, or on a private cluster for .xsell/ that it starts and stops
run: setup build
	./bin/server

## setup-browser: setup, plus Debian's chromium for the console's browser tests
setup-browser:
	./scripts/setup.sh chromium

## test: gofmt and go vet must be clean, then every test (the browser tests too) against $DATABASE_URL or a throwaway cluster
test: setup-browser check-fmt vet
	$(GO) run ./cmd/devdb exec -- $(GO) test -count=1 ./...

## fuzz: the coverage-guided fuzzer on every request decoder, FUZZTIME long (docs/input.md)
FUZZTIME ?= 10m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecoders -fuzztime $(FUZZTIME) ./internal/httpapi/

check-fmt:
	@files=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$files" ]; then echo "gofmt would change these files:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...

## bench: Go benchmarks of the hot paths (figures go into docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

## demo: a whole experiment in one command: server, 50,000 simulated shoppers, report (see README)
.PHONY: demo
demo: setup build
	./scripts/demo.sh

clean:
	rm -rf bin
