//! The tray icon: its look follows the registration (four shapes, so colour is not needed to
//! tell them apart), its tooltip says extension, state and problem, its menu opens the window,
//! registers or unregisters, and quits.
//!
//! Two platform front ends follow the same [`TrayView`] stream and report the same
//! [`TrayAction`]s: `sni` on Linux (a StatusNotifierItem over D-Bus with `ksni`, no GTK, so the
//! process that stays running all day does not carry a GUI toolkit) and `native` on macOS and
//! Windows (`tray-icon` on the main thread's event loop, which those systems require).

#[cfg(not(target_os = "linux"))]
mod native;
#[cfg(target_os = "linux")]
mod sni;

#[cfg(not(target_os = "linux"))]
pub use native::run_main_loop;
#[cfg(target_os = "linux")]
pub use sni::run_main_loop;

use crate::app::App;
use crate::state::TrayLook;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// What the tray's menu or a click asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    OpenWindow,
    Register,
    Unregister,
    Quit,
}

pub const OPEN_WINDOW: &str = "Open window";
pub const REGISTER: &str = "Register";
pub const UNREGISTER: &str = "Unregister";
pub const QUIT: &str = "Quit";

/// An icon as 8-bit RGBA rows.
#[derive(Debug, Clone)]
pub struct Icon {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

/// The icon for `look`, decoded once from the PNGs in icons/.
pub fn icon(look: TrayLook) -> Option<&'static Icon> {
    static ICONS: OnceLock<[Option<Icon>; 4]> = OnceLock::new();
    let icons = ICONS.get_or_init(|| {
        [
            decode(include_bytes!("../../../../icons/tray-registered.png")),
            decode(include_bytes!("../../../../icons/tray-working.png")),
            decode(include_bytes!("../../../../icons/tray-failed.png")),
            decode(include_bytes!("../../../../icons/tray-offline.png")),
        ]
    });
    let index = match look {
        TrayLook::Registered => 0,
        TrayLook::Working => 1,
        TrayLook::Failed => 2,
        TrayLook::Offline => 3,
    };
    icons[index].as_ref()
}

fn decode(png_bytes: &[u8]) -> Option<Icon> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let mut buffer = vec![0; reader.output_buffer_size()?];
    let frame = reader.next_frame(&mut buffer).ok()?;
    buffer.truncate(frame.buffer_size());
    let rgba = match frame.color_type {
        png::ColorType::Rgba => buffer,
        png::ColorType::Rgb => buffer
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        _ => return None,
    };
    Some(Icon {
        width: frame.width,
        height: frame.height,
        rgba,
    })
}

/// Carries out what the tray asks, until the channel closes.
pub async fn handle_actions(app: Arc<App>, mut actions: mpsc::UnboundedReceiver<TrayAction>) {
    while let Some(action) = actions.recv().await {
        match action {
            TrayAction::OpenWindow => app.open_window(),
            TrayAction::Register => {
                let app = Arc::clone(&app);
                tokio::spawn(async move { app.register_from_tray().await });
            }
            TrayAction::Unregister => {
                let app = Arc::clone(&app);
                tokio::spawn(async move { app.unregister().await });
            }
            TrayAction::Quit => {
                let app = Arc::clone(&app);
                tokio::spawn(async move { app.quit().await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn quit_from_the_menu_ends_the_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let app = App::new(
            Ok(vicifast_accounts::ConfigStore::new(
                dir.path().join("config.toml"),
            )),
            Arc::new(vicifast_accounts::MemoryKeychain::default()),
            crate::window::Launcher::disabled(),
            false,
        );
        let (actions, requests) = mpsc::unbounded_channel();
        tokio::spawn(handle_actions(Arc::clone(&app), requests));
        assert!(!app.has_quit());
        assert!(actions.send(TrayAction::Quit).is_ok());
        app.quit_requested().await;
        assert!(app.has_quit());
    }

    #[test]
    fn every_look_has_its_own_icon() {
        let looks = [
            TrayLook::Registered,
            TrayLook::Working,
            TrayLook::Failed,
            TrayLook::Offline,
        ];
        let icons: Vec<&Icon> = looks.iter().filter_map(|l| icon(*l)).collect();
        assert_eq!(icons.len(), 4);
        for icon in &icons {
            assert_eq!(icon.rgba.len(), (icon.width * icon.height * 4) as usize);
        }
        for (i, a) in icons.iter().enumerate() {
            for b in &icons[i + 1..] {
                assert_ne!(a.rgba, b.rgba);
            }
        }
    }
}
