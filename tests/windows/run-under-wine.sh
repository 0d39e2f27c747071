#!/usr/bin/env bash
# Runs a command with a private, throwaway Wine set up for VICIfast's Windows programs:
#   tests/windows/run-under-wine.sh <command> [args...]
# A fresh WINEPREFIX (wine-prefix.sh) and an Xvfb display of their own, so runs on the same
# machine never share a wineserver, a registry or a desktop. Exported to the command:
#   WINEPREFIX, VICIFAST_WINEPREFIX   the prefix
#   CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER   wine, so `cargo test --target
#                                     x86_64-pc-windows-gnu` runs the tests as Windows programs
#   DISPLAY                           the private Xvfb (Wine's system tray is drawn there)
# The prefix, its wineserver and the display are removed when the command ends.
set -euo pipefail
# Every step of the set-up says where it failed; the command's own failure is its to report.
trap 'echo "error: run-under-wine.sh: line $LINENO failed" >&2' ERR
[ $# -gt 0 ] || { echo "usage: run-under-wine.sh <command> [args...]" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in wine wineserver x86_64-w64-mingw32-gcc Xvfb; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (make windows-deps)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vicifast-wine.XXXXXX")
xvfb_pid=
cleanup() {
  WINEPREFIX=$work/prefix wineserver -k 2>/dev/null || true
  [ -z "$xvfb_pid" ] || kill "$xvfb_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A free display: Xvfb picks one itself and writes its number to the given descriptor.
exec {display_fd}<> <(:)
Xvfb -displayfd "$display_fd" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
read -r -t 30 -u "$display_fd" display_number || { echo "error: Xvfb did not start" >&2; exit 1; }
exec {display_fd}>&-
export DISPLAY=:$display_number

export WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
"$here/wine-prefix.sh" "$work/prefix"
export WINEPREFIX=$work/prefix VICIFAST_WINEPREFIX=$work/prefix
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
trap - ERR
"$@"
