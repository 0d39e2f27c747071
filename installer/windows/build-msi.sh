#!/usr/bin/env bash
# Builds VICIfast's MSI from the cross-built programs:
#   installer/windows/build-msi.sh <dir with the exes and WebView2Loader.dll> <version x.y.z> <out.msi>
# wixl (msitools) compiles vicifast.wxs; msibuild then fixes what wixl 0.101 cannot say:
#   - HKMU registry values: wixl writes root 4, Windows Installer's "HKCU per user, HKLM per
#     machine" root is -1;
#   - per machine (ALLUSERS=1), the install folder in Program Files: a custom action (type 51,
#     before CostFinalize) in both sequences;
#   - the Start-menu shortcut's AppUserModelID (MsiShortcutProperty, Windows Installer 5), so
#     Windows notifications carry the app's name.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: build-msi.sh <dist dir> <version> <out.msi>" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dist=$(cd "$1" && pwd)
version=$2
out=$3
app_id=com.vicifast.desktop
for f in vicifast.exe vicifast-tray.exe vicifast-cli.exe WebView2Loader.dll; do
  [ -f "$dist/$f" ] || { echo "error: $dist/$f is missing (make windows)" >&2; exit 1; }
done
# wixl resolves sources relative to where it runs and refuses absolute paths.
stage=$(mktemp -d "${TMPDIR:-/tmp}/vicifast-msi.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$dist"/vicifast.exe "$dist"/vicifast-tray.exe "$dist"/vicifast-cli.exe "$dist"/WebView2Loader.dll "$stage/"
cp "$here/../../icons/icon.ico" "$stage/vicifast.ico"
cp "$here/vicifast.wxs" "$stage/"
(cd "$stage" && wixl -a x64 -D Version="$version" -D DistDir=. -D IconFile=vicifast.ico \
  -o vicifast.msi vicifast.wxs)
msibuild "$stage/vicifast.msi" -q "UPDATE Registry SET Root = -1 WHERE Root = 4"
msibuild "$stage/vicifast.msi" -q "CREATE TABLE MsiShortcutProperty (MsiShortcutProperty CHAR(72) NOT NULL, Shortcut_ CHAR(72) NOT NULL, PropertyKey CHAR(0) NOT NULL, PropVariantValue CHAR(0) NOT NULL PRIMARY KEY MsiShortcutProperty)"
msibuild "$stage/vicifast.msi" -q "INSERT INTO MsiShortcutProperty (MsiShortcutProperty, Shortcut_, PropertyKey, PropVariantValue) VALUES ('StartMenuAppUserModelId', 'StartMenuShortcut', 'System.AppUserModel.ID', '$app_id')"
for sequence in InstallExecuteSequence InstallUISequence; do
  msibuild "$stage/vicifast.msi" -q "INSERT INTO $sequence (Action, Condition, Sequence) VALUES ('InstallPerMachine', 'ALLUSERS=1', 801)"
done
msibuild "$stage/vicifast.msi" -q "INSERT INTO CustomAction (Action, Type, Source, Target) VALUES ('InstallPerMachine', 51, 'INSTALLDIR', '[ProgramFiles64Folder]VICIfast')"
mv "$stage/vicifast.msi" "$out"
