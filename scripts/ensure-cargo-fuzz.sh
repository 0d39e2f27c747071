#!/usr/bin/env bash
# Installs cargo-fuzz (from crates.io, the version the fuzz targets were written for) when it is
# missing. Fast when it is present, so `make fuzz` can always run it.
set -euo pipefail
VERSION=0.13.2
if cargo fuzz --version 2>/dev/null | grep -q " $VERSION\$"; then
  exit 0
fi
# libFuzzer is C++: cargo-fuzz's build of the targets needs a C++ compiler.
scripts/ensure-packages.sh build-essential
echo "Installing cargo-fuzz $VERSION"
cargo install cargo-fuzz --locked --version "$VERSION"
