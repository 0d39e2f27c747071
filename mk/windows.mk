# Windows (issue 9): the programs agents install, cross-built from Linux for 64-bit Windows with
# Debian's mingw-w64, and proven by running the real Windows programs under Wine.
# Included by the Makefile; `make test` runs lint-windows and test-windows, `make bench`
# bench-windows, when this file exists.
#   make windows        release vicifast-cli.exe, vicifast-tray.exe, vicifast.exe and
#                       WebView2Loader.dll in dist/windows/
#   make msi            dist/windows/VICIfast-<version>.msi from those
#   make lint-windows   clippy -D warnings for the Windows target, every crate that ships there
#   make test-windows   under Wine: the core, engine, accounts and CLI unit tests as Windows
#                       programs; vicifast-cli.exe against Kamailio; the MSI (install, upgrade,
#                       uninstall); vicifast.exe without WebView2; vicifast-tray.exe
#   make bench-windows  start to `registered` and memory of vicifast-cli.exe and
#                       vicifast-tray.exe under Wine
# Wine runs in a private prefix and Xvfb display per run (tests/windows/run-under-wine.sh).

WINDOWS_TARGET := x86_64-pc-windows-gnu
WINDOWS_PACKAGES := gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 binutils-mingw-w64-x86-64 \
  wine wine64 xvfb xauth x11-utils imagemagick
WINDOWS_CRATES := vicifast-core vicifast-engine vicifast-accounts vicifast-cli vicifast-tray vicifast-app \
  vicifast-win32 vicifast-ipc
WINDOWS_UNIT_TEST_CRATES := vicifast-core vicifast-engine vicifast-accounts vicifast-cli vicifast-ipc
WINDOWS_DIST := dist/windows
WINDOWS_OUT := $(TARGET_DIR)/$(WINDOWS_TARGET)
export VICIFAST_CLI_EXE := $(WINDOWS_OUT)/debug/vicifast-cli.exe

.PHONY: windows-deps windows lint-windows test-windows test-windows-unit test-windows-e2e

windows-deps:
	@scripts/ensure-packages.sh $(WINDOWS_PACKAGES)
	@rustup target list --installed | grep -qx $(WINDOWS_TARGET) || rustup target add $(WINDOWS_TARGET)

# The window embeds ui/dist; its release build serves it from the exe (custom-protocol).
windows: windows-deps $(if $(wildcard mk/app.mk),app-deps)
	$(call windows_programs,release,$(WINDOWS_DIST))

# The same programs for the tests under Wine, in the unoptimised windows-test profile
# (Cargo.toml): `make test` proves the code that ships without paying for its optimisation.
WINDOWS_TEST_DIST := $(WINDOWS_OUT)/test-dist
.PHONY: windows-test-programs
windows-test-programs: windows-deps $(if $(wildcard mk/app.mk),app-deps)
	$(call windows_programs,windows-test,$(WINDOWS_TEST_DIST))
	@# The Wine harness also runs the debug CLI (VICIFAST_CLI_EXE) to prepare accounts.
	$(CARGO) build --target $(WINDOWS_TARGET) -p vicifast-cli

# $(1): cargo profile, $(2): where the programs go.
define windows_programs
	$(CARGO) build --profile $(1) --target $(WINDOWS_TARGET) -p vicifast-cli -p vicifast-tray
	$(CARGO) build --profile $(1) --target $(WINDOWS_TARGET) -p vicifast-app --features vicifast-app/custom-protocol
	mkdir -p $(2)
	@# webview2-com-sys puts the loader DLL the window needs beside it.
	cp $(addprefix $(WINDOWS_OUT)/$(1)/,vicifast-cli.exe vicifast-tray.exe vicifast.exe \
	  WebView2Loader.dll) $(2)/
	@ls -l $(2)
endef

lint-windows: windows-deps $(if $(wildcard mk/app.mk),app-deps)
	$(CARGO) clippy --target $(WINDOWS_TARGET) $(addprefix -p ,$(WINDOWS_CRATES)) --all-targets -- -D warnings

test-windows: test-windows-unit test-windows-e2e test-windows-msi test-windows-window test-windows-tray

# Unit tests built for Windows (debug) and run by Wine, one private prefix for the run.
test-windows-unit: windows-deps
	$(CARGO) test --target $(WINDOWS_TARGET) $(addprefix -p ,$(WINDOWS_UNIT_TEST_CRATES)) --no-run
	tests/windows/run-under-wine.sh $(CARGO) test --target $(WINDOWS_TARGET) \
	  $(addprefix -p ,$(WINDOWS_UNIT_TEST_CRATES)) --no-fail-fast

# vicifast-cli.exe under Wine against a real Kamailio; the tests run only when asked
# (VICIFAST_WINDOWS_E2E=1), so the Linux e2e run does not start Wine a second time.
test-windows-e2e: windows-deps deps-engine
	$(CARGO) build --target $(WINDOWS_TARGET) -p vicifast-cli
	$(CARGO) build -p vicifast-e2e --tests
	VICIFAST_WINDOWS_E2E=1 tests/windows/run-under-wine.sh \
	  $(CARGO) test -p vicifast-e2e --test windows_cli --no-fail-fast

# The MSI (wixl from msitools; installer/windows/): per user by default, per machine with
# ALLUSERS=1, upgrades in place. Built from the release programs of `make windows`.
MSI_PACKAGES := wixl msitools
WINDOWS_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
WINDOWS_MSI := $(WINDOWS_DIST)/VICIfast-$(WINDOWS_VERSION).msi
.PHONY: msi test-windows-msi

msi: windows
	@scripts/ensure-packages.sh $(MSI_PACKAGES)
	installer/windows/build-msi.sh $(WINDOWS_DIST) $(WINDOWS_VERSION) $(WINDOWS_MSI)
	@ls -l $(WINDOWS_MSI)

# Install, upgrade (from the same programs packaged as 0.0.1) and uninstall under Wine.
WINDOWS_TEST_MSI := $(WINDOWS_OUT)/test-msi/VICIfast-$(WINDOWS_VERSION).msi
test-windows-msi: windows-test-programs deps-engine
	@scripts/ensure-packages.sh $(MSI_PACKAGES)
	mkdir -p $(WINDOWS_OUT)/test-msi $(WINDOWS_OUT)/msi-older
	installer/windows/build-msi.sh $(WINDOWS_TEST_DIST) $(WINDOWS_VERSION) $(WINDOWS_TEST_MSI)
	installer/windows/build-msi.sh $(WINDOWS_TEST_DIST) 0.0.1 $(WINDOWS_OUT)/msi-older/VICIfast-0.0.1.msi
	$(CARGO) build --target $(WINDOWS_TARGET) -p vicifast-cli
	VICIFAST_WINDOWS_E2E=1 VICIFAST_MSI=$(WINDOWS_TEST_MSI) \
	  VICIFAST_MSI_OLDER=$(WINDOWS_OUT)/msi-older/VICIfast-0.0.1.msi \
	  tests/windows/run-under-wine.sh $(CARGO) test -p vicifast-e2e --test windows_msi --no-fail-fast

# bench-register's figures for the release vicifast-cli.exe under Wine (start to `registered`,
# and the resident memory of the Wine process that runs it); then the release vicifast-tray.exe's
# (start to its binding, memory once registered, `quit` to the binding gone).
.PHONY: bench-windows
bench-windows: windows deps-engine
	$(CARGO) build --release -p vicifast-e2e --bins
	$(CARGO) build --release --target $(WINDOWS_TARGET) -p vicifast-tray --example tray_call
	printf '#!/bin/sh\nexec wine "%s" "$$@"\n' "$(CURDIR)/$(WINDOWS_DIST)/vicifast-cli.exe" \
	  > $(WINDOWS_OUT)/vicifast-cli-under-wine
	chmod +x $(WINDOWS_OUT)/vicifast-cli-under-wine
	VICIFAST_CLI=$(WINDOWS_OUT)/vicifast-cli-under-wine \
	  tests/windows/run-under-wine.sh $(TARGET_DIR)/release/bench_register 10
	VICIFAST_WINDOWS_E2E=1 VICIFAST_CLI_EXE=$(CURDIR)/$(WINDOWS_DIST)/vicifast-cli.exe \
	  VICIFAST_TRAY_EXE=$(CURDIR)/$(WINDOWS_DIST)/vicifast-tray.exe \
	  VICIFAST_TRAY_CALL_EXE=$(WINDOWS_OUT)/release/examples/tray_call.exe \
	  tests/windows/run-under-wine.sh $(TARGET_DIR)/release/bench_tray_windows 5

# vicifast.exe (beside WebView2Loader.dll) under Wine, which has no WebView2.
.PHONY: test-windows-window
test-windows-window: windows-test-programs deps-engine
	VICIFAST_WINDOWS_E2E=1 VICIFAST_WINDOW_EXE=$(WINDOWS_TEST_DIST)/vicifast.exe \
	  tests/windows/run-under-wine.sh $(CARGO) test -p vicifast-e2e --test windows_window --no-fail-fast

# vicifast-tray.exe under Wine: registers the saved account with no window; its named pipe
# (get_state, quit, an access list for the current user only, through the test helper
# tray_call.exe); the end of the session; a second launch. Before it, the Win32 wrappers' own
# tests as Windows programs.
.PHONY: test-windows-tray
test-windows-tray: windows-test-programs deps-engine
	$(CARGO) build --profile windows-test --target $(WINDOWS_TARGET) -p vicifast-tray --example tray_call
	$(CARGO) test --target $(WINDOWS_TARGET) -p vicifast-win32 --no-run
	$(CARGO) build -p vicifast-e2e --tests
	tests/windows/run-under-wine.sh $(CARGO) test --target $(WINDOWS_TARGET) -p vicifast-win32
	VICIFAST_WINDOWS_E2E=1 VICIFAST_TRAY_EXE=$(WINDOWS_TEST_DIST)/vicifast-tray.exe \
	  VICIFAST_DIST_CLI_EXE=$(WINDOWS_TEST_DIST)/vicifast-cli.exe \
	  VICIFAST_TRAY_CALL_EXE=$(WINDOWS_OUT)/windows-test/examples/tray_call.exe \
	  tests/windows/run-under-wine.sh $(CARGO) test -p vicifast-e2e --test windows_tray --no-fail-fast
