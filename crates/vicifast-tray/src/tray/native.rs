//! macOS and Windows: the native tray icon (`tray-icon`), which must live on the main thread and
//! needs that thread's event loop (`tao`). The async side runs on the tokio runtime's threads and
//! talks to the loop through its proxy.

use super::{handle_actions, icon, TrayAction, OPEN_WINDOW, QUIT, REGISTER, UNREGISTER};
use crate::app::App;
use crate::state::TrayView;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder};
use tokio::sync::mpsc;
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};

/// How long logoff or shutdown may wait for the registrar to remove the bindings. Windows ends
/// the session after a few seconds whatever the program does; the engine gives each registrar
/// at most 2 s.
const END_OF_SESSION_BUDGET: Duration = Duration::from_secs(4);

enum LoopEvent {
    Show(TrayView),
    Menu(MenuEvent),
    Icon(TrayIconEvent),
    Done,
}

fn native_icon(view: &TrayView) -> Option<tray_icon::Icon> {
    let icon = icon(view.look)?;
    tray_icon::Icon::from_rgba(icon.rgba.clone(), icon.width, icon.height).ok()
}

/// Runs `main` on `runtime` while the main thread runs the tray's event loop; the process exits
/// when `main` returns.
pub fn run_main_loop(
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
    main: impl Future<Output = ()> + Send + 'static,
) {
    let event_loop = EventLoopBuilder::<LoopEvent>::with_user_event().build();
    let proxy = event_loop.create_proxy();
    let menu_proxy = proxy.clone();
    MenuEvent::set_event_handler(Some(move |e| {
        let _ = menu_proxy.send_event(LoopEvent::Menu(e));
    }));
    let icon_proxy = proxy.clone();
    TrayIconEvent::set_event_handler(Some(move |e| {
        let _ = icon_proxy.send_event(LoopEvent::Icon(e));
    }));

    let (actions, requests) = mpsc::unbounded_channel();
    runtime.spawn(handle_actions(Arc::clone(&app), requests));
    let mut views = app.tray_views();
    let view_proxy = proxy.clone();
    runtime.spawn(async move {
        loop {
            let view = views.borrow_and_update().clone();
            if view_proxy.send_event(LoopEvent::Show(view)).is_err()
                || views.changed().await.is_err()
            {
                break;
            }
        }
    });
    runtime.spawn(async move {
        main.await;
        let _ = proxy.send_event(LoopEvent::Done);
    });

    let open = MenuItem::new(OPEN_WINDOW, true, None);
    let register = MenuItem::new(REGISTER, true, None);
    let unregister = MenuItem::new(UNREGISTER, true, None);
    let quit = MenuItem::new(QUIT, true, None);
    let mut tray: Option<TrayIcon> = None;
    #[cfg(windows)]
    let mut power_window: Option<vicifast_win32::PowerWindow> = None;
    let mut view = app.tray_views().borrow().clone();
    event_loop.run(move |event, _, control_flow| {
        // The runtime lives as long as the loop (which never returns).
        let _ = &runtime;
        *control_flow = ControlFlow::Wait;
        match event {
            // macOS wants the icon made once the loop runs.
            Event::NewEvents(StartCause::Init) => {
                let menu = Menu::new();
                let built = menu
                    .append_items(&[
                        &open,
                        &register,
                        &unregister,
                        &PredefinedMenuItem::separator(),
                        &quit,
                    ])
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        let mut builder = TrayIconBuilder::new()
                            .with_menu(Box::new(menu))
                            .with_tooltip(&view.tooltip)
                            .with_menu_on_left_click(false);
                        if let Some(icon) = native_icon(&view) {
                            builder = builder.with_icon(icon);
                        }
                        builder.build().map_err(|e| e.to_string())
                    });
                match built {
                    Ok(icon) => tray = Some(icon),
                    Err(e) => {
                        tracing::error!("no tray icon: {e}");
                        let _ = actions.send(TrayAction::OpenWindow);
                    }
                }
                register.set_enabled(view.can_register);
                unregister.set_enabled(view.can_unregister);
                // Windows says when the computer wakes (WM_POWERBROADCAST) to top-level
                // windows; tao's own does not pass it on, so a hidden one of ours listens.
                #[cfg(windows)]
                {
                    let app = Arc::clone(&app);
                    let handle = runtime.handle().clone();
                    match vicifast_win32::PowerWindow::new(move || {
                        tracing::info!("the computer woke from sleep");
                        let app = Arc::clone(&app);
                        handle.spawn(async move { app.resumed().await });
                    }) {
                        Ok(window) => power_window = Some(window),
                        Err(e) => tracing::warn!(
                            "no power notifications (sleep is still found from the clock): {e}"
                        ),
                    }
                }
            }
            Event::UserEvent(LoopEvent::Show(new)) => {
                view = new;
                if let Some(tray) = tray.as_mut() {
                    if let Err(e) = tray.set_icon(native_icon(&view)) {
                        tracing::warn!("tray icon not updated: {e}");
                    }
                    let _ = tray.set_tooltip(Some(&view.tooltip));
                }
                register.set_enabled(view.can_register);
                unregister.set_enabled(view.can_unregister);
            }
            Event::UserEvent(LoopEvent::Menu(e)) => {
                let action = if e.id == *open.id() {
                    Some(TrayAction::OpenWindow)
                } else if e.id == *register.id() {
                    Some(TrayAction::Register)
                } else if e.id == *unregister.id() {
                    Some(TrayAction::Unregister)
                } else if e.id == *quit.id() {
                    Some(TrayAction::Quit)
                } else {
                    None
                };
                if let Some(action) = action {
                    let _ = actions.send(action);
                }
            }
            Event::UserEvent(LoopEvent::Icon(TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            })) => {
                let _ = actions.send(TrayAction::OpenWindow);
            }
            Event::UserEvent(LoopEvent::Done) => {
                tray = None;
                *control_flow = ControlFlow::Exit;
            }
            // The end of the loop: after Quit (nothing left to do), or at logoff or shutdown.
            // On Windows tao's hidden window receives WM_ENDSESSION, sends this event and ends
            // the process as soon as the handler returns, so the accounts are unregistered
            // here, on the main thread, which Windows waits for (within its limits).
            Event::LoopDestroyed => {
                if !app.has_quit() {
                    tracing::info!("the session is ending: unregistering, then quitting");
                    let app = Arc::clone(&app);
                    let quit = runtime.block_on(async move {
                        tokio::time::timeout(END_OF_SESSION_BUDGET, app.quit()).await
                    });
                    if quit.is_err() {
                        tracing::warn!("the registrar did not answer before the session ended");
                    }
                }
                tray = None;
                #[cfg(windows)]
                drop(power_window.take());
            }
            _ => {}
        }
    });
}
