//! Generates the app's per-command permissions (`allow-get-state`, …) from the command list.

fn main() {
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "get_state",
            "save_settings",
            "register",
            "unregister",
            "take_over",
            "clear_trace",
        ]),
    ))
    .unwrap_or_else(|e| panic!("tauri build script: {e:#}"));
}
