//! The tray icon: its look follows the registration (four shapes), its tooltip says extension,
//! state and problem, its menu opens the window, registers or unregisters, and quits.

use crate::registration::Engine;
use crate::state::{Shared, TrayLook};
use crate::window;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

const TRAY_ID: &str = "vicifast";

/// The menu item whose text follows the state (Register / Unregister).
struct ToggleItem<R: Runtime>(MenuItem<R>);

fn icon(look: TrayLook) -> Option<Image<'static>> {
    let bytes: &'static [u8] = match look {
        TrayLook::Registered => include_bytes!("../../icons/tray-registered.png"),
        TrayLook::Working => include_bytes!("../../icons/tray-working.png"),
        TrayLook::Failed => include_bytes!("../../icons/tray-failed.png"),
        TrayLook::Offline => include_bytes!("../../icons/tray-offline.png"),
    };
    Image::from_bytes(bytes).ok()
}

pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let view = app.state::<Shared>().view().tray();
    let open = MenuItem::with_id(app, "open", "Open window", true, None::<&str>)?;
    let toggle = MenuItem::with_id(
        app,
        "toggle",
        toggle_text(view.offer_register),
        true,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &toggle, &quit])?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip(&view.tooltip)
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => window::show(app),
            "toggle" => toggle_registration(app),
            "quit" => quit_app(app),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                window::show(tray.app_handle());
            }
        });
    if let Some(image) = icon(view.look) {
        builder = builder.icon(image);
    }
    builder.build(app)?;
    app.manage(ToggleItem(toggle));
    Ok(())
}

fn toggle_text(offer_register: bool) -> &'static str {
    if offer_register {
        "Register"
    } else {
        "Unregister"
    }
}

/// Brings the tray in line with the state.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let view = app.state::<Shared>().view().tray();
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        if let Err(e) = tray.set_icon(icon(view.look)) {
            tracing::warn!("tray icon not updated: {e}");
        }
        let _ = tray.set_tooltip(Some(&view.tooltip));
    }
    if let Some(item) = app.try_state::<ToggleItem<R>>() {
        let _ = item.0.set_text(toggle_text(view.offer_register));
    }
}

fn toggle_registration<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let engine = app.state::<Engine>();
        let offer_register = app.state::<Shared>().view().tray().offer_register;
        if !offer_register {
            engine.stop(&app).await;
        } else if let Err(e) = engine.register(&app).await {
            // Not set up, or no password: the window says what to do.
            tracing::warn!("register from the tray: {e}");
            window::show(&app);
        }
    });
}

/// Unregisters (waiting for the engine to finish), then exits.
pub fn quit_app<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        app.state::<Engine>().stop(&app).await;
        app.exit(0);
    });
}
