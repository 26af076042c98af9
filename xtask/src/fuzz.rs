//! `cargo xtask fuzz`: each cargo-fuzz target (`fuzz/`) under libFuzzer for a bounded time, with
//! nightly (its sanitizer flags need it). Each target's corpus grows in the build cache between
//! runs, seeded from `fuzz/seeds/<target>`; a crash fails the task and leaves the input that
//! caused it under `fuzz/artifacts/<target>`.

use std::path::PathBuf;
use std::process::Command;

use crate::testbed::{root, run};

/// The targets, in `fuzz/Cargo.toml`.
const TARGETS: [&str; 2] = ["entry_from_message", "dn_parse"];

/// Seconds each target runs in `cargo xtask test`.
pub const TEST_SECONDS: u64 = 30;

/// Where builds and corpora are kept: next to the main build's target directory.
fn cache() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .and_then(|target| target.parent().map(PathBuf::from))
        .unwrap_or_else(|| root().join("target"))
}

/// Runs every target for `seconds`.
pub fn fuzz(seconds: u64) -> Result<(), String> {
    run(Command::new("bash").arg(root().join("tests/env/fuzz-tools.sh")))?;
    let fuzz_dir = root().join("fuzz");
    for target in TARGETS {
        let corpus = cache().join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        eprintln!("xtask: fuzzing {target} for {seconds} s");
        run(Command::new("cargo")
            .args(["+nightly", "fuzz", "run", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg(target)
            .arg(&corpus)
            .arg(fuzz_dir.join("seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-rss_limit_mb=2048", "-max_len=65536"])
            .env("CARGO_TARGET_DIR", cache().join("fuzz-target")))?;
    }
    Ok(())
}
