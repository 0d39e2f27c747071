//! On Windows, the version resource Explorer, installers and Task Manager show: version,
//! publisher, description and icon.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let icon = concat!(env!("CARGO_MANIFEST_DIR"), "/../../icons/icon.ico");
    println!("cargo:rerun-if-changed={icon}");
    let mut resource = winresource::WindowsResource::new();
    resource
        .set_icon(icon)
        .set("ProductName", "VICIfast")
        .set("FileDescription", "VICIfast in the tray")
        .set("CompanyName", "VICIfast")
        .set("LegalCopyright", "VICIfast contributors, MIT OR Apache-2.0");
    if let Err(err) = resource.compile() {
        panic!(
            "cannot embed the Windows version resource (is mingw-w64's windres installed?): {err}"
        );
    }
}
