#!/usr/bin/env bash
# Installs the Debian packages named as arguments that are not installed yet.
# Fast when everything is present (no apt call at all), so `make test` can always run it.
set -euo pipefail
missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: packages missing (${missing[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
apt_get=($SUDO apt-get -o DPkg::Lock::Timeout=600)
# A fresh machine's package lists may be empty or stale.
"${apt_get[@]}" update -q || true
"${apt_get[@]}" install -y --no-install-recommends "${missing[@]}"
