# pipefn — `make run` starts the control plane locally and runs an example;
# `make test` runs every suite. Both install what they need where it is missing.
SHELL := /bin/bash
GO ?= go
# Heavy tools (servers the tests start) are cached outside the repo.
PIPEFN_CACHE ?= $(HOME)/.cache/pipefn
BIN := $(CURDIR)/bin
export PATH := $(PIPEFN_CACHE)/bin:$(PATH)

.PHONY: all build run test test-deps deps-redis deps-s3 deps-chromium deps-curl deps-kube deps-controllers e2e fmt vet bench

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/pipefn ./cmd/pipefn
	CGO_ENABLED=0 $(GO) build -o $(BIN)/launcher ./cmd/launcher

# run starts pipefn up, runs an example to completion and leaves the server up.
run: build deps-curl
	./scripts/run-local.sh

deps-curl:
	@command -v curl >/dev/null || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }

# deps-redis installs redis-server from Debian where it is missing.
deps-redis:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (apt-get)"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# deps-s3 installs versitygw (an S3-compatible server) into $(PIPEFN_CACHE)/bin once.
deps-s3:
	@command -v versitygw >/dev/null || ./scripts/install-versitygw.sh

# deps-chromium installs Debian's chromium for the web UI's browser tests (tests/browser).
deps-chromium:
	@./scripts/install-chromium.sh >/dev/null

# deps-kube builds kube-apiserver and etcd (for tests/k8s) into $(PIPEFN_CACHE)/kube/bin
# once; the first build takes many minutes, later runs find the binaries and return.
deps-kube:
	@PIPEFN_CACHE=$(PIPEFN_CACHE) ./scripts/install-kube.sh >/dev/null

# deps-controllers builds the real Tekton controller and Argo workflow-controller (for
# tests/controllers) into $(PIPEFN_CACHE)/ctrl/bin once, from the Go module proxy.
deps-controllers:
	@PIPEFN_CACHE=$(PIPEFN_CACHE) ./scripts/install-controllers.sh

test-deps: deps-redis deps-s3 deps-chromium deps-kube deps-controllers

# e2e runs only the end-to-end suite: pipelines through the real Tekton and Argo
# controllers on a real API server, with a stand-in kubelet (tests/controllers).
e2e: deps-kube deps-controllers
	PIPEFN_REQUIRE_CONTROLLERS=1 KUBEBUILDER_ASSETS=$(PIPEFN_CACHE)/kube/bin $(GO) test -count=1 -timeout 20m -v ./tests/controllers

test: test-deps
	$(GO) vet ./...
	PIPEFN_REQUIRE_S3=1 PIPEFN_REQUIRE_KUBE=1 PIPEFN_REQUIRE_CONTROLLERS=1 KUBEBUILDER_ASSETS=$(PIPEFN_CACHE)/kube/bin $(GO) test -count=1 -timeout 40m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -l -w .
