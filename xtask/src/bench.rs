//! `cargo xtask bench`: a release build of usersync and of the benchmark, the baseline's Python
//! packages in a venv under `.bench/`, then the benchmark itself (see `bench/src/main.rs`).

use std::path::PathBuf;
use std::process::Command;

use crate::testbed::{down, root, run};

pub fn bench(args: &[String]) -> Result<(), String> {
    // The benchmark starts its own servers; Samba's ports are fixed, so the test bed must be down.
    down()?;
    run(Command::new("bash").arg(root().join("tests/env/install-deps.sh")))?;
    run(Command::new("bash").arg(root().join("tests/env/build-tools.sh")))?;
    run(Command::new(env!("CARGO")).args([
        "build",
        "--release",
        "-p",
        "usersync",
        "-p",
        "usersync-bench",
    ]))?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let python = venv()?;
    run(Command::new(target.join("release/usersync-bench"))
        .arg("--usersync")
        .arg(target.join("release/usersync"))
        .arg("--python")
        .arg(python)
        .args(args)
        .current_dir(root()))
}

/// `.bench/venv` with the baseline's pinned packages.
fn venv() -> Result<PathBuf, String> {
    let dir = root().join(".bench/venv");
    let python = dir.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(root().join("bench/baseline/requirements.txt")))?;
    Ok(python)
}
