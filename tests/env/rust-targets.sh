#!/usr/bin/env bash
# Adds the Rust targets `cargo xtask image` builds the static binaries for. Quick when they are
# there; needs rustup (the toolchain's own targets come from its distribution server).
. "$(dirname "$0")/lib.sh"
need rustup

TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
installed=$(rustup target list --installed)
missing=()
for target in "${TARGETS[@]}"; do
  grep -qx "$target" <<<"$installed" || missing+=("$target")
done
[ ${#missing[@]} -eq 0 ] && exit 0
log "adding Rust targets: ${missing[*]}"
rustup target add "${missing[@]}"
