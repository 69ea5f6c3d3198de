#!/usr/bin/env bash
# Installs the `s3s-fs` S3-protocol server used by ember-storage's S3 integration tests.
# Idempotent: skips the build when the binary is already present. The binary is cached outside the
# clone (default $HOME/.cache/ember-tools) so later CI runs skip the build; tests find it through
# $EMBER_S3S_FS, $EMBER_TOOLS_DIR/bin/s3s-fs or PATH.
set -euo pipefail
EMBER_TOOLS_DIR="${EMBER_TOOLS_DIR:-$HOME/.cache/ember-tools}"
BIN="$EMBER_TOOLS_DIR/bin/s3s-fs"
if [ -x "$BIN" ] && "$BIN" --help >/dev/null 2>&1; then
    echo "s3s-fs already installed at $BIN"
    exit 0
fi
mkdir -p "$EMBER_TOOLS_DIR"
# s3s-fs 0.14.1 is the last release that builds on our compiler; --locked pins its dependencies.
# A private target dir keeps this build out of the workspace's target directory.
CARGO_TARGET_DIR="$EMBER_TOOLS_DIR/build" \
    cargo install s3s-fs@0.14.1 --features binary --locked --root "$EMBER_TOOLS_DIR"
rm -rf "$EMBER_TOOLS_DIR/build"
"$BIN" --help >/dev/null
echo "s3s-fs installed at $BIN"
