# The desktop app (issue 4): two processes. crates/vicifast-tray/ is VICIfast in the tray
# (`vicifast-tray`: registration, tray icon, notifications; no web engine), src-tauri/ the window
# (`vicifast`: Tauri 2, web UI in ui/, started on demand, gone when closed); icons in icons/.
# Included by the Makefile; `make test` runs app-deps and app-test when this file exists.
#   make run        build the UI and the app (debug), then open its window (which starts the
#                   tray process if it is not running)
#   make app-test   UI checks and tests, the app's unit tests, then the real app end to end
#   make bench-app  memory (PSS) of the whole app while registered: tray only, window open, closed
#                   (BENCH_APP_RELEASE=1 measures a release build instead of the debug one)
#   make package    .deb and AppImage (release build; not part of `make test`)

APP_PACKAGES := libwebkit2gtk-4.1-dev build-essential pkg-config file \
  librsvg2-dev libssl-dev \
  xvfb xauth x11-utils imagemagick webkit2gtk-driver dbus-x11 gnome-keyring libsecret-tools \
  chromium fonts-dejavu-core python3-xlib baresip-core
export VICIFAST_APP := $(TARGET_DIR)/debug/vicifast

.PHONY: app-deps ui-build app-build app-test app-e2e run package bench-app icons

# src-tauri embeds ui/dist at compile time, so any workspace build (make lint, test-engine)
# needs it: build it here once if it is missing.
app-deps:
	@scripts/ensure-packages.sh $(APP_PACKAGES)
	@# npm install, not npm ci: see ui/README.md.
	@[ -d ui/node_modules ] || (cd ui && npm install --no-audit --no-fund)
	@[ -f ui/dist/index.html ] || (cd ui && npm run build)

ui-build: app-deps
	cd ui && npm run build

app-build: ui-build
	$(CARGO) build -p vicifast-app -p vicifast-tray -p vicifast-cli

# The real app end to end needs Kamailio too (the engine's packages).
app-test: app-deps deps-engine app-build
	cd ui && npm run lint && npm run typecheck && npm run format:check && npm test && npm run test:e2e
	$(CARGO) test -p vicifast-app
	$(MAKE) --no-print-directory app-e2e

# The real-app tests run only when asked (VICIFAST_APP_E2E=1), so `cargo test --workspace`
# does not start desktops and registrars a second time.
app-e2e:
	VICIFAST_APP_E2E=1 $(CARGO) test -p vicifast-app-e2e --no-fail-fast -- --nocapture

run: app-build
	$(VICIFAST_APP)

# Bundles need a release build and the Tauri CLI (from npm, with its own binary). The tray
# process goes in beside the window binary (tauri.conf.json: bundle.linux.*.files).
package: ui-build
	$(CARGO) build --release -p vicifast-tray
	mkdir -p src-tauri/bundle-extra
	cp $(TARGET_DIR)/release/vicifast-tray src-tauri/bundle-extra/vicifast-tray
	cd src-tauri && npx --yes @tauri-apps/cli@^2 build --bundles deb,appimage

bench-app: app-deps deps-engine app-build
ifeq ($(BENCH_APP_RELEASE),1)
	$(CARGO) build --release -p vicifast-app -p vicifast-tray
	VICIFAST_APP=$(TARGET_DIR)/release/vicifast $(CARGO) run -q -p vicifast-app-e2e --bin bench_app
else
	$(CARGO) run -q -p vicifast-app-e2e --bin bench_app
endif

# Redraw the tray and app icons (Python standard library only).
icons:
	python3 icons/generate.py
