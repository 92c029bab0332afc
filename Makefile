# xsell — see README.md. Every target works on a fresh clone with Go installed; PostgreSQL
# comes from $DATABASE_URL or a private cluster the tools start themselves.
GO ?= go
export GOFLAGS ?= -buildvcs=auto

.PHONY: all build run test check-fmt vet bench clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

## run: the server on $DATABASE_URL, or on a private cluster under .xsell/ that it starts and stops
run: build
	./bin/server

## test: gofmt and go vet must be clean, then every test against $DATABASE_URL or a throwaway cluster
test: check-fmt vet
	$(GO) run ./cmd/devdb exec -- $(GO) test -count=1 ./...

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
demo: build
	./scripts/demo.sh

clean:
	rm -rf bin
