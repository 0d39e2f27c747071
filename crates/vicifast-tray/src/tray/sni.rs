//! Linux: the tray icon as a StatusNotifierItem on the session bus (`ksni`). Desktops show it
//! through their StatusNotifierWatcher (KDE Plasma, GNOME with the AppIndicator extension, XFCE,
//! Cinnamon, MATE, LXQt). When none is running yet (the app started before the panel at login),
//! the item waits and appears as soon as the watcher does.

use super::{handle_actions, icon, TrayAction, OPEN_WINDOW, QUIT, REGISTER, UNREGISTER};
use crate::app::App;
use crate::state::TrayView;
use ksni::menu::StandardItem;
use ksni::TrayMethods;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Runs `main` on `runtime` with the tray beside it; returns when `main` does.
pub fn run_main_loop(
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
    main: impl Future<Output = ()> + Send + 'static,
) {
    runtime.block_on(async move {
        let (actions, requests) = mpsc::unbounded_channel();
        tokio::spawn(handle_actions(Arc::clone(&app), requests));
        tokio::spawn(show(app.tray_views(), actions));
        main.await;
    });
}

async fn show(mut views: watch::Receiver<TrayView>, actions: mpsc::UnboundedSender<TrayAction>) {
    let tray = StatusItem {
        view: views.borrow_and_update().clone(),
        actions,
    };
    let handle = match tray.assume_sni_available(true).spawn().await {
        Ok(handle) => handle,
        Err(e) => {
            tracing::error!("no tray icon: {e}");
            return;
        }
    };
    while views.changed().await.is_ok() {
        let view = views.borrow_and_update().clone();
        if handle.update(move |item| item.view = view).await.is_none() {
            break;
        }
    }
}

fn menu_item(label: &str, enabled: bool, action: TrayAction) -> ksni::MenuItem<StatusItem> {
    StandardItem {
        label: label.to_owned(),
        enabled,
        activate: Box::new(move |item: &mut StatusItem| item.ask(action)),
        ..Default::default()
    }
    .into()
}

#[derive(Debug)]
struct StatusItem {
    view: TrayView,
    actions: mpsc::UnboundedSender<TrayAction>,
}

impl StatusItem {
    fn ask(&self, action: TrayAction) {
        let _ = self.actions.send(action);
    }
}

impl ksni::Tray for StatusItem {
    fn id(&self) -> String {
        "vicifast".to_owned()
    }

    fn title(&self) -> String {
        "VICIfast".to_owned()
    }

    fn category(&self) -> ksni::Category {
        ksni::Category::Communications
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        icon(self.view.look)
            .map(|icon| {
                // ARGB32 in network byte order.
                let data = icon
                    .rgba
                    .chunks_exact(4)
                    .flat_map(|p| [p[3], p[0], p[1], p[2]])
                    .collect();
                vec![ksni::Icon {
                    width: icon.width as i32,
                    height: icon.height as i32,
                    data,
                }]
            })
            .unwrap_or_default()
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: self.view.tooltip.clone(),
            ..Default::default()
        }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.ask(TrayAction::OpenWindow);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        vec![
            menu_item(OPEN_WINDOW, true, TrayAction::OpenWindow),
            menu_item(REGISTER, self.view.can_register, TrayAction::Register),
            menu_item(UNREGISTER, self.view.can_unregister, TrayAction::Unregister),
            ksni::MenuItem::Separator,
            menu_item(QUIT, true, TrayAction::Quit),
        ]
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        // Keep the item: it registers again when the panel comes back.
        tracing::warn!("no tray to show the icon in right now ({reason:?})");
        true
    }
}
