#!/usr/bin/env bash
# Makes sure `cargo xtask fuzz` can run: a nightly toolchain (libFuzzer's sanitizer flags need it)
# and cargo-fuzz at a pinned version, installed into ~/.cargo/bin when missing or different. Quick
# when both are there.
. "$(dirname "$0")/lib.sh"
need rustup

CARGO_FUZZ_VERSION=0.13.1

rustup toolchain list | grep -q '^nightly' || { log "adding the nightly toolchain"; rustup toolchain install nightly --profile minimal; }
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
