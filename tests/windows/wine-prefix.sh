#!/usr/bin/env bash
# Prepares a private, throwaway WINEPREFIX for running VICIfast's Windows programs under Wine:
#   tests/windows/wine-prefix.sh <dir>
# Headless (no Mono or Gecko prompts), 64-bit only, with the test fixture
# fixtures/bcryptprimitives.c built and copied into its system32 (Wine 8 lacks that DLL; every
# real Windows 10/11 has it). Idempotent: a prepared prefix is left as it is.
set -euo pipefail
trap 'echo "error: wine-prefix.sh: line $LINENO failed" >&2' ERR
prefix=${1:?usage: wine-prefix.sh <dir>}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
export WINEPREFIX=$prefix WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
system32=$prefix/drive_c/windows/system32
if [ ! -f "$system32/kernel32.dll" ]; then
  # wineboot waits for the wineserver it started; -i initialises the prefix.
  if ! wineboot -i >"$prefix/wineboot.log" 2>&1 || ! wineserver -w; then
    echo "error: wineboot -i could not prepare $prefix:" >&2
    tail -n 20 "$prefix/wineboot.log" >&2
    exit 1
  fi
fi
if [ ! -f "$system32/bcryptprimitives.dll" ]; then
  x86_64-w64-mingw32-gcc -O2 -shared -s -o "$prefix/bcryptprimitives.dll" \
    "$here/fixtures/bcryptprimitives.c" -lbcrypt
  cp "$prefix/bcryptprimitives.dll" "$system32/bcryptprimitives.dll"
fi
