# Pando: `make run` starts the platform, `make test` runs every test.
GO      ?= go
BIN     := bin/pando
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

STACK_DIR ?= /var/lib/pando-stacks/bookworm
DEBIAN_MIRROR ?= http://deb.debian.org/debian
# The stack the end-to-end tests push to: scripts/make-stack.sh with these
# runtimes, built once per machine under /var/cache/pando/stacks.
TEST_STACK_RUNTIMES ?= node,python,ruby,java
TEST_STACK_ENV = DEBIAN_MIRROR=$(DEBIAN_MIRROR) PANDO_TEST_STACK_RUNTIMES=$(TEST_STACK_RUNTIMES)

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-short deps test-deps test-stack vet lint bench bench-router bench-docker bench-placement bench-cellloss stack clean

all: build

## build: the static, CGO-free pando binary
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pando

## deps: system packages the server and the tests need (runc, busybox)
deps:
	@$(SUDO) scripts/install-deps.sh

## test-deps: deps plus what only the tests need (docker-registry, postgresql)
test-deps:
	@$(SUDO) scripts/install-deps.sh test

## run: build and start the embedded server (SQLite + filesystem blobstore)
run: deps build
	$(SUDO) ./$(BIN) server

## test: install what the tests need, vet and lint, then run every test; the
##       stack tests wait for the stack test-stack builds meanwhile. -timeout
##       is per package: the longest, internal/buildpacks (real pip, npm,
##       javac), takes ~450 s on 2 cores at load 15
test: test-deps test-stack build vet lint
	PANDO_BIN=$(CURDIR)/$(BIN) PANDO_E2E_BUILD_STACK=1 $(TEST_STACK_ENV) $(GO) test -count=1 -timeout 20m ./...

## test-stack: start building the tests' stack in the background with the
##             script `make stack` runs (once per machine: it is kept)
test-stack:
	@$(SUDO) env $(TEST_STACK_ENV) scripts/test-stack.sh --background > /dev/null

## test-short: unit tests only (no root, no containers, no ensurepip)
test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

## lint: staticcheck (fetched through the Go module proxy)
lint:
	$(GO) run $(STATICCHECK) ./...

## bench: push-to-first-200 against the floor measured in the same run
bench: deps build
	$(SUDO) PANDO_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/push

## bench-router: the router against nginx and a direct connection, same instance, same run
bench-router: deps build
	@command -v wrk >/dev/null && command -v nginx >/dev/null || $(SUDO) apt-get install -y -qq wrk nginx-light
	$(SUDO) PANDO_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/router

## bench-docker: cold start of a ~50 MB image against pulling it by hand, and a warm scale-up
bench-docker: test-deps build
	$(SUDO) PANDO_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/docker

## bench-placement: the auction and convergence at 100k instances on 1,000 cells, beside their targets
bench-placement:
	$(GO) run ./bench/placement

## bench-cellloss: kill -9 of a joined cell -> all instances RUNNING and routable elsewhere, real runc, beside its target
bench-cellloss: deps build
	$(SUDO) PANDO_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/cellloss

## stack: a Debian bookworm root filesystem for apps, with node/npm, python3/pip/venv, ruby/bundler and a JRE
##        (use: pando server --stack bookworm=$(STACK_DIR))
stack:
	@$(SUDO) scripts/make-stack.sh $(STACK_DIR) $(DEBIAN_MIRROR)

clean:
	rm -rf bin
