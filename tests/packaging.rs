//! The CRDs, the plain manifests and the Helm chart say the same thing.

use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_copy_of_the_crds_is_current() {
    let generated = usersync::api::crds_yaml().expect("CRDs render");
    for copy in [
        "crds/usersync.io.yaml",
        "charts/usersync/crds/usersync.io.yaml",
        "deploy/01-crds.yaml",
    ] {
        assert!(
            read(copy) == generated,
            "{copy} is stale; regenerate it with `cargo run -- crd -o {copy}`"
        );
    }
}

#[test]
fn plain_manifests_are_the_rendered_chart() {
    let out = Command::new("helm")
        .args([
            "template",
            "usersync",
            "charts/usersync",
            "--namespace",
            "usersync-system",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("helm runs (it is on PATH in the test bed)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout) == read("deploy/02-operator.yaml"),
        "deploy/02-operator.yaml is stale; regenerate it with \
         `helm template usersync charts/usersync --namespace usersync-system > deploy/02-operator.yaml`"
    );
}

#[test]
fn the_chart_lints_clean() {
    let out = Command::new("helm")
        .args(["lint", "--strict", "charts/usersync"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
