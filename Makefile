# clinicgate — see README.md. `make help` lists the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/clinicgate
DATA    ?= .run/data
export CGO_ENABLED := 0

.PHONY: help build build-all run test test-short test-deps bench fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

build: ## build bin/clinicgate for this machine
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

build-all: ## build dist/clinicgate-linux-amd64 and -arm64 (Raspberry Pi)
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/clinicgate-linux-amd64 .
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/clinicgate-linux-arm64 .

run: build ## start the appliance on loopback with a demo client and user, and print how to log in
	$(BIN) serve --demo --data $(DATA) --radius-auth 127.0.0.1:1812 --radius-acct 127.0.0.1:1813 --http 127.0.0.1:9812

test-deps: ## install what the tests need (Debian packages, Go modules)
	@sh .ci/install-test-deps

test: test-deps ## run every test, against the real peers (radclient, oathtool)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short: ## the fast unit tests only
	$(GO) test -short ./...

bench: test-deps ## measure: RADIUS logins per second, latency, daemon memory (see docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m . | tee bench.out

FUZZTIME ?= 5m
fuzz: ## fuzz the RADIUS request path for FUZZTIME (default 5m)
	$(GO) test -run '^$$' -fuzz FuzzAccessRequest -fuzztime $(FUZZTIME) ./radius/

clean: ## remove build output and the demo data directory
	rm -rf bin dist .run bench.out
