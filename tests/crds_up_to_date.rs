//! `crds/` is generated from the Rust types; this fails when someone changes one without the other.

#[test]
fn checked_in_crds_match_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/usersync.io.yaml");
    let checked_in = std::fs::read_to_string(path).expect("crds/usersync.io.yaml is readable");
    let generated = usersync::api::crds_yaml().expect("CRDs render");
    assert!(
        checked_in == generated,
        "crds/usersync.io.yaml is stale; regenerate it with `cargo run -- crd -o crds/usersync.io.yaml`"
    );
}
