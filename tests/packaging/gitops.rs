//! The Argo CD customization (`gitops/argocd/`) passes its tests as Argo CD runs them, the README's
//! GitOps health table is what kstatus and the health check say of its testdata, and the Argo CD
//! configuration examples in `docs/gitops/` carry the same scripts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::read;
use crate::support::gitops::{CUSTOMIZATION, assert_verdicts, health_table, helper};

#[test]
fn the_argo_cd_customization_passes_its_tests() {
    let out = Command::new(helper())
        .args(["argo-test", CUSTOMIZATION])
        .output()
        .expect("the GitOps helper runs");
    assert!(
        out.status.success(),
        "health_test.yaml or actions/action_test.yaml does not match:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each row of the table has a testdata object in that state; both readers say of it what the row
/// says, and every testdata object has its row.
#[test]
fn the_readme_table_is_what_both_readers_say_of_the_testdata() {
    let rows = health_table();
    for row in &rows {
        let path = format!("{CUSTOMIZATION}/testdata/{}.yaml", row.state);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("state `{}` has no testdata {path}: {e}", row.state));
        let object: serde_json::Value = serde_norway::from_str(&text).expect("testdata is YAML");
        // A status of the current spec is in the state the way a live task's is (the end-to-end
        // test waits with the same check); an older one only has the conditions.
        let current = object["status"]["observedGeneration"] == object["metadata"]["generation"];
        let in_state = if current && !row.conditions.is_empty() {
            row.describes(&object)
        } else {
            row.has_conditions(&object)
        };
        assert!(
            in_state,
            "{path} is not in the state the README describes for `{}`: {:?}",
            row.state, row.conditions
        );
        assert_verdicts(row, &object);
    }
    let testdata = std::fs::read_dir(Path::new(CUSTOMIZATION).join("testdata")).expect("testdata");
    for entry in testdata {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let state = name.trim_end_matches(".yaml");
        assert!(
            rows.iter().any(|r| r.state == state),
            "testdata/{name} has no row in the README's GitOps health table"
        );
    }
}

#[test]
fn the_argo_cd_configuration_examples_carry_the_customization() {
    let cm: serde_json::Value =
        serde_norway::from_str(&read("docs/gitops/argocd-cm.yaml")).expect("argocd-cm is YAML");
    let values: serde_json::Value = serde_norway::from_str(&read("docs/gitops/argocd-values.yaml"))
        .expect("Helm values are YAML");
    for (file, data) in [
        ("docs/gitops/argocd-cm.yaml", &cm["data"]),
        ("docs/gitops/argocd-values.yaml", &values["configs"]["cm"]),
    ] {
        check_settings(file, data);
    }
}

/// The argocd-cm settings in `data` hold the customization's health check and actions, and exclude
/// UserGroups.
fn check_settings(file: &str, data: &serde_json::Value) {
    let key =
        |kind: &str| format!("resource.customizations.{kind}.usersync.io_UserSynchronization");
    let customization = |part: &str| {
        read(&format!(
            "gitops/argocd/usersync.io/UserSynchronization/{part}"
        ))
    };
    let stale = format!(
        "{file} is stale: copy the scripts from gitops/argocd/usersync.io/UserSynchronization/"
    );
    assert_eq!(
        data[key("health")].as_str(),
        Some(customization("health.lua").as_str()),
        "{stale}"
    );
    let actions: serde_json::Value = serde_norway::from_str(
        data[key("actions")]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no actions")),
    )
    .expect("the actions setting is YAML");
    assert_eq!(
        actions["discovery.lua"].as_str(),
        Some(customization("actions/discovery.lua").as_str()),
        "{stale}"
    );
    let given: BTreeMap<String, String> = actions["definitions"]
        .as_array()
        .expect("action definitions")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or_default().to_owned(),
                d["action.lua"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut expected = BTreeMap::new();
    for entry in std::fs::read_dir(Path::new(CUSTOMIZATION).join("actions")).expect("actions") {
        let path = entry.expect("entry").path().join("action.lua");
        if let Ok(script) = std::fs::read_to_string(&path) {
            let name = path
                .parent()
                .and_then(Path::file_name)
                .expect("action folder");
            expected.insert(name.to_string_lossy().into_owned(), script);
        }
    }
    assert_eq!(given, expected, "{stale}");
    let exclusions = data["resource.exclusions"].as_str().unwrap_or_default();
    assert!(
        exclusions.contains("usersync.io") && exclusions.contains("UserGroup"),
        "{file}: resource.exclusions should leave out usersync.io UserGroups"
    );
}
