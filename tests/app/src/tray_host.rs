//! A stand-in for the desktop's tray on the test's private session bus: a StatusNotifierWatcher
//! that says a host is present and records the items that register, and a client that reads an
//! item's icon, tooltip and menu and clicks it the way a panel does (StatusNotifierItem and
//! com.canonical.dbusmenu over D-Bus). Xvfb runs no panel; this is what a panel would see.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zbus::blocking::Connection;
use zbus::message::Header;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// One pixmap as the item sends it: width, height, ARGB32 in network byte order.
pub type Pixmap = (i32, i32, Vec<u8>);

#[derive(Default)]
struct Watcher {
    /// (bus name, object path) of each registered item.
    items: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: String, #[zbus(header)] header: Header<'_>) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        // The spec allows a bus name or an object path (then the sender is the bus name).
        let item = if service.starts_with('/') {
            (sender, service)
        } else {
            (service, "/StatusNotifierItem".to_owned())
        };
        if let Ok(mut items) = self.items.lock() {
            items.push(item);
        }
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .map(|items| items.iter().map(|(n, p)| format!("{n}{p}")).collect())
            .unwrap_or_default()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

#[zbus::proxy(interface = "org.kde.StatusNotifierItem", gen_async = false)]
trait StatusNotifierItem {
    #[zbus(property)]
    fn icon_pixmap(&self) -> zbus::Result<Vec<Pixmap>>;
    #[zbus(property)]
    fn tool_tip(&self) -> zbus::Result<(String, Vec<Pixmap>, String, String)>;
    #[zbus(property)]
    fn menu(&self) -> zbus::Result<OwnedObjectPath>;
    fn activate(&self, x: i32, y: i32) -> zbus::Result<()>;
}

type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

#[zbus::proxy(interface = "com.canonical.dbusmenu", gen_async = false)]
trait DBusMenu {
    fn get_layout(
        &self,
        parent_id: i32,
        recursion_depth: i32,
        property_names: &[&str],
    ) -> zbus::Result<(u32, Layout)>;
    fn event(&self, id: i32, event_id: &str, data: &Value<'_>, timestamp: u32) -> zbus::Result<()>;
}

/// One item of the tray's menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    pub id: i32,
    pub label: String,
    pub enabled: bool,
}

/// The watcher, serving on the bus for as long as this lives.
pub struct TrayHost {
    connection: Connection,
    items: Arc<Mutex<Vec<(String, String)>>>,
}

impl TrayHost {
    pub fn start(bus_address: &str) -> zbus::Result<TrayHost> {
        let watcher = Watcher::default();
        let items = Arc::clone(&watcher.items);
        let connection = zbus::blocking::connection::Builder::address(bus_address)?
            .name("org.kde.StatusNotifierWatcher")?
            .serve_at("/StatusNotifierWatcher", watcher)?
            .build()?;
        Ok(TrayHost { connection, items })
    }

    /// The newest registered item that is still on the bus.
    fn item(&self) -> Option<StatusNotifierItemProxy<'static>> {
        let items = self.items.lock().ok()?.clone();
        items.into_iter().rev().find_map(|(name, path)| {
            let proxy = StatusNotifierItemProxy::builder(&self.connection)
                .destination(name)
                .ok()?
                .path(path)
                .ok()?
                .cache_properties(CacheProperties::No)
                .build()
                .ok()?;
            proxy.icon_pixmap().ok().map(|_| proxy)
        })
    }

    /// The icon the item shows now (the largest pixmap).
    pub fn icon(&self) -> Option<Pixmap> {
        let mut pixmaps = self.item()?.icon_pixmap().ok()?;
        pixmaps.sort_by_key(|(w, h, _)| w * h);
        pixmaps.pop()
    }

    /// The tooltip's title and text.
    pub fn tooltip(&self) -> Option<String> {
        let (_, _, title, text) = self.item()?.tool_tip().ok()?;
        Some(format!("{title}{text}"))
    }

    fn menu(&self) -> Option<DBusMenuProxy<'static>> {
        let item = self.item()?;
        let path = item.menu().ok()?;
        DBusMenuProxy::builder(&self.connection)
            .destination(item.inner().destination().to_owned())
            .ok()?
            .path(path)
            .ok()?
            .cache_properties(CacheProperties::No)
            .build()
            .ok()
    }

    /// The menu's items in order: id, label (none for a separator) and whether it is enabled.
    pub fn menu_items(&self) -> Vec<MenuEntry> {
        let Some(menu) = self.menu() else {
            return Vec::new();
        };
        let Ok((_, (_, _, children))) = menu.get_layout(0, 1, &[]) else {
            return Vec::new();
        };
        children
            .into_iter()
            .filter_map(|child| {
                let (id, props, _): Layout = Value::from(child).try_into().ok()?;
                let label = props
                    .get("label")
                    .and_then(|v| String::try_from(v.clone()).ok())
                    .unwrap_or_default();
                // dbusmenu leaves out properties at their default (enabled: true).
                let enabled = props
                    .get("enabled")
                    .and_then(|v| bool::try_from(v).ok())
                    .unwrap_or(true);
                Some(MenuEntry { id, label, enabled })
            })
            .collect()
    }

    /// Clicks the enabled menu item labelled `label`; false if there is none.
    pub fn click(&self, label: &str) -> bool {
        let Some(id) = self
            .menu_items()
            .into_iter()
            .find(|e| e.label == label && e.enabled)
            .map(|e| e.id)
        else {
            return false;
        };
        self.menu()
            .is_some_and(|menu| menu.event(id, "clicked", &Value::from(0i32), 0).is_ok())
    }

    /// A left click on the icon.
    pub fn activate(&self) -> bool {
        self.item().is_some_and(|item| item.activate(0, 0).is_ok())
    }
}
