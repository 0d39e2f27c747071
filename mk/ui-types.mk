# The window's TypeScript types in ui/src/generated/ are generated from the Rust types that
# cross to it (ts-rs). `cargo test` fails when the committed files differ from the Rust types;
#   make ui-types   writes them again (then commit ui/src/generated/)

.PHONY: ui-types
ui-types:
	VICIFAST_WRITE_UI_TYPES=1 $(CARGO) test -p vicifast-tray --lib ui_types
