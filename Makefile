# VICIfast Phone Registration — build, run and test.
#   make run    build the UI and the desktop app, then launch it
#   make test   install what is missing, then run every check and test
#   make bench  print speed and memory figures
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

# A build cache outside the clone, when this machine has one; the build works without it.
ifeq ($(origin CARGO_TARGET_DIR), undefined)
  ifneq ($(wildcard /var/cache/vicifast/target),)
    export CARGO_TARGET_DIR := /var/cache/vicifast/target
  endif
endif
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
export VICIFAST_CLI := $(TARGET_DIR)/debug/vicifast-cli

ENGINE_PACKAGES := build-essential pkg-config ca-certificates openssl procps iproute2 nftables \
  kamailio kamailio-tls-modules kamailio-outbound-modules sip-tester sipsak \
  dbus-daemon dbus-bin gnome-keyring libsecret-tools

.PHONY: help deps-engine lint test test-engine test-e2e bench bench-register bench-edge
help:
	@echo "make run    build and launch the desktop app"
	@echo "make test   install what is missing, then run every check and test"
	@echo "make bench  print speed and memory figures"

deps-engine:
	@scripts/ensure-packages.sh $(ENGINE_PACKAGES)

# Tauri's generate_context! needs the built UI (ui/dist) even to type-check the app.
lint: $(if $(wildcard mk/app.mk),ui-build)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit and simulated-time tests; the end-to-end crates and the app have targets of their own.
test-engine:
	$(CARGO) test --workspace --exclude vicifast-e2e --exclude vicifast-app --exclude vicifast-app-e2e --no-fail-fast

# Every end-to-end test, the network-namespace ones (mobility_*) included: they need root and
# skip with a message without it.
test-e2e: deps-engine $(if $(wildcard mk/netns.mk),netns-deps)
	$(CARGO) build -p vicifast-cli
	$(CARGO) test -p vicifast-e2e --no-fail-fast

# Time from start to `registered` and RSS while registered, vicifast-cli on loopback UDP.
bench-register: deps-engine
	$(CARGO) build --release -p vicifast-cli -p vicifast-e2e --bins
	VICIFAST_CLI=$(TARGET_DIR)/release/vicifast-cli $(TARGET_DIR)/release/bench_register 20

-include mk/*.mk

# A test that cannot run here (not root, a program missing) appends a line to this file (see
# tests/e2e/src/skip.rs); `make test` ends by counting them.
export VICIFAST_SKIP_LOG := $(TARGET_DIR)/skipped-tests.txt

.PHONY: test-begin
test-begin:
	@mkdir -p $(dir $(VICIFAST_SKIP_LOG)) && rm -f $(VICIFAST_SKIP_LOG)

test: test-begin deps-engine $(if $(wildcard mk/app.mk),app-deps) lint test-engine test-e2e $(if $(wildcard mk/app.mk),app-test) \
  $(if $(wildcard mk/windows.mk),lint-windows test-windows)
	@if [ -s $(VICIFAST_SKIP_LOG) ]; then \
	  echo "make test: all checks and tests passed; $$(wc -l < $(VICIFAST_SKIP_LOG)) skipped on this machine:"; \
	  sed 's/^/  /' $(VICIFAST_SKIP_LOG); \
	else \
	  echo "make test: all checks and tests passed; none skipped"; \
	fi

bench: bench-register bench-flood bench-edge $(if $(wildcard mk/netns.mk),bench-mobility) $(if $(wildcard mk/app.mk),bench-app) \
  $(if $(wildcard mk/windows.mk),bench-windows)

# Time the softphone edge proxy adds relaying INVITE and 200 OK, and CPU per relayed message,
# VICIfast beside Kamailio on the same loopback path.
bench-edge: deps-engine
	$(CARGO) build --release -p vicifast-cli -p vicifast-e2e --bins
	VICIFAST_CLI=$(TARGET_DIR)/release/vicifast-cli $(TARGET_DIR)/release/bench_edge
