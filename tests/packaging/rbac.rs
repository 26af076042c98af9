//! Where the chart lets the operator read Secrets: the release namespace and the namespaces the
//! values list, by Roles; every namespace, by a ClusterRole, only when asked with `*`.

use std::collections::BTreeSet;

use super::helm;

/// The chart's objects rendered into `usersync-system` with `values`.
fn render(values: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "template",
        "usersync",
        "charts/usersync",
        "--namespace",
        "usersync-system",
    ];
    for value in values {
        args.extend(["--set", value]);
    }
    let out = helm(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    serde_norway::Deserializer::from_str(&text)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &serde_json::Value| v.is_object())
        .collect()
}

/// Where the rendered RBAC lets the operator read Secrets: `(kind, namespace)` of each Role or
/// ClusterRole with a rule on them.
fn secret_grants(objects: &[serde_json::Value]) -> BTreeSet<(String, String)> {
    objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Role" | "ClusterRole")))
        .filter(|o| {
            o["rules"].as_array().into_iter().flatten().any(|rule| {
                let resources = rule["resources"].as_array().into_iter().flatten();
                resources
                    .filter_map(|r| r.as_str())
                    .any(|r| r == "secrets" || r == "*")
            })
        })
        .map(|o| {
            let kind = o["kind"].as_str().unwrap_or_default().to_owned();
            let namespace = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("*")
                .to_owned();
            (kind, namespace)
        })
        .collect()
}

/// The operator's `--secret-namespace` list, as the Deployment passes it.
fn secret_namespaces_flag(objects: &[serde_json::Value]) -> String {
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env");
    env.iter()
        .find(|e| e["name"] == "USERSYNC_SECRET_NAMESPACES")
        .and_then(|e| e["value"].as_str())
        .expect("USERSYNC_SECRET_NAMESPACES")
        .to_owned()
}

fn roles_in(namespaces: &[&str]) -> BTreeSet<(String, String)> {
    namespaces
        .iter()
        .map(|ns| ("Role".to_owned(), (*ns).to_owned()))
        .collect()
}

#[test]
fn secrets_are_read_only_where_the_values_say() {
    let default = render(&[]);
    assert_eq!(secret_grants(&default), roles_in(&["usersync-system"]));
    assert_eq!(secret_namespaces_flag(&default), "usersync-system");

    // Watching namespaces lets the operator manage tasks there, not read their Secrets.
    let watching = render(&["watchNamespaces={team-a,team-b}"]);
    assert_eq!(secret_grants(&watching), roles_in(&["usersync-system"]));

    let listed = render(&["secretNamespaces={team-a,team-b}"]);
    let expected = roles_in(&["usersync-system", "team-a", "team-b"]);
    assert_eq!(secret_grants(&listed), expected);
    assert_eq!(
        secret_namespaces_flag(&listed),
        "usersync-system,team-a,team-b"
    );

    let elsewhere = render(&["connectionNamespace=directory-credentials"]);
    let expected = roles_in(&["usersync-system", "directory-credentials"]);
    assert_eq!(secret_grants(&elsewhere), expected);

    let everywhere = render(&["secretNamespaces={*}"]);
    let cluster = BTreeSet::from([("ClusterRole".to_owned(), "*".to_owned())]);
    assert_eq!(secret_grants(&everywhere), cluster);
    assert_eq!(secret_namespaces_flag(&everywhere), "*");
}

#[test]
fn connections_are_for_admins_and_tasks_for_editors() {
    let objects = render(&[]);
    let role = |name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("ClusterRole {name}"))
            .clone()
    };
    let writes = |role: &serde_json::Value, resource: &str| {
        role["rules"].as_array().into_iter().flatten().any(|rule| {
            let names = |key: &str| -> Vec<String> {
                let values = rule[key].as_array().into_iter().flatten();
                values
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            names("resources").iter().any(|r| r == resource)
                && names("verbs").iter().any(|v| v == "create")
        })
    };
    let edit = role("usersync-edit");
    assert!(writes(&edit, "usersynchronizations"));
    assert!(
        !writes(&edit, "directoryconnections"),
        "editors cannot point Secrets elsewhere"
    );
    let admin = role("usersync-admin");
    assert!(writes(&admin, "directoryconnections"));
    assert_eq!(
        admin["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"],
        "true"
    );
    assert!(admin["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"].is_null());
}
