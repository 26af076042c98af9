//! `usersync sync --dry-run` against the cluster: the plan a task file would make, from a task with
//! its server and from a task naming a connection another file holds.

use kube::ResourceExt;
use kube::api::Api;
use usersync::api::{SPEC_DIGEST_ANNOTATION, UserGroup};
use usersync_testbed::env;

use crate::support::cli::{cli_dry_run, cli_dry_run_of, samba_task, samba_task_file};
use crate::support::kube::{Scenario, by_display, create_task, edit_by_hand, secrets, user_groups};
use crate::support::operator::start_operator;
use crate::support::wait::wait_for_run;

#[tokio::test]
async fn cli_sync_dry_run_prints_the_plan_against_the_cluster() {
    let Scenario {
        client,
        ns,
        ldap: _,
        base,
    } = Scenario::new("e2e-cli").await;
    let task = samba_task(&base);
    let file = samba_task_file(&ns.name, task);
    let dry_run = || cli_dry_run(&file);
    let before = dry_run();
    assert!(before.contains("create 3, update 0, remove 0"), "{before}");
    assert!(
        before
            .lines()
            .any(|l| l.starts_with("+ ") && l.contains("(Devs, 2 users)")),
        "{before}"
    );

    // Once the operator has synced, the same command finds nothing to do.
    secrets(&client, &ns.name, &env::samba().admin_password).await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    wait_for_run(&tasks, None).await;
    let after = dry_run();
    assert!(
        after.contains("create 0, update 0, remove 0, skip 0, unchanged 3"),
        "{after}"
    );
    // Every written object states the digest of its spec, so the preview downloaded none of them.
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let synced = user_groups(&groups).await;
    for g in &synced {
        assert_eq!(
            g.annotations().get(SPEC_DIGEST_ANNOTATION),
            Some(&g.spec.digest()),
            "{}",
            g.name_any()
        );
    }
    assert!(after.contains("(0 downloaded)"), "{after}");

    // The same task naming a connection that another file holds plans the same.
    let text = std::fs::read_to_string(&file).expect("task file");
    let (task_text, secret_text) = text.split_once("\n---\n").expect("a task and its Secret");
    let mut through: serde_json::Value = serde_json::from_str(task_text).expect("task");
    through["spec"]["server"] = serde_json::Value::Null;
    through["spec"]["connectionRef"] = serde_json::json!({"name": "corp"});
    let connection = serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "DirectoryConnection",
        "metadata": {"name": "corp"},
        "spec": {"urls": [env::samba().ldaps_url], "credentialsSecretRef": {"name": "bind"}},
    });
    let task_file = std::env::temp_dir().join(format!("{}-through.yaml", ns.name));
    std::fs::write(&task_file, through.to_string()).expect("task file");
    let connection_file = std::env::temp_dir().join(format!("{}-connection.yaml", ns.name));
    let connection_text = format!("{connection}\n---\n{secret_text}");
    std::fs::write(&connection_file, connection_text).expect("connection file");
    let planned = cli_dry_run_of(&[&task_file, &connection_file]);
    assert!(
        planned.contains("create 0, update 0, remove 0, skip 0, unchanged 3"),
        "{planned}"
    );
    let _ = std::fs::remove_file(&task_file);
    let _ = std::fs::remove_file(&connection_file);

    // An edit by someone else makes the digest unreliable: that object is downloaded and the
    // preview plans to put it back. The operator is stopped first: it would put it back itself.
    operator.abort();
    let devs = by_display(&synced, "Devs");
    edit_by_hand(
        &groups,
        &devs.name_any(),
        serde_json::json!({ "description": "edited by hand" }),
    )
    .await;
    let edited = dry_run();
    assert!(
        edited.contains("(1 downloaded)") && edited.contains("create 0, update 1, remove 0"),
        "{edited}"
    );
    assert!(
        edited
            .lines()
            .any(|l| l.starts_with(&format!("~ {}", devs.name_any()))),
        "{edited}"
    );
    let _ = std::fs::remove_file(&file);
}
