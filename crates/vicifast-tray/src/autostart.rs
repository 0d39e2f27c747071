//! "Start VICIfast when I log in": a login item (XDG autostart entry, macOS launch agent,
//! Windows Run key) that starts the tray process, which registers without opening a window.

use auto_launch::AutoLaunchBuilder;

pub fn apply(enabled: bool) {
    if let Err(e) = try_apply(enabled) {
        tracing::warn!("start at login not applied: {e}");
    }
}

fn try_apply(enabled: bool) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let launcher = AutoLaunchBuilder::new()
        .set_app_name("VICIfast")
        .set_app_path(&exe.to_string_lossy())
        .build()?;
    if enabled {
        launcher.enable()?;
    } else if launcher.is_enabled()? {
        launcher.disable()?;
    }
    Ok(())
}
