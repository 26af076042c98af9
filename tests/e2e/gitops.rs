//! GitOps tools read a live task right: one task goes through the states of the README's "GitOps
//! health" table, and in each, kstatus (what Flux's wait uses) and the Argo CD health check say what
//! the table says.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use ldap3::Ldap;
use serde_json::{Value, json};
use usersync::api::UserSynchronization;
use usersync_testbed::env;

use crate::support::gitops::{Row, assert_verdicts, health_table};
use crate::support::kube::{Scenario, allow_servers, run_now, secrets};
use crate::support::ldap::{Server, delete};
use crate::support::operator::spawn_operator;

/// The states this test drives a live task through.
const LIVE: [&str; 9] = [
    "new",
    "running",
    "synced",
    "spec-changed",
    "transient-failure",
    "stalled",
    "braked",
    "suspended",
    "previewed",
];
/// States only the packaging test checks, on testdata: they need a status of an older spec, or a
/// task that waits for its schedule.
const TESTDATA_ONLY: [&str; 2] = ["older-generation", "waiting-for-schedule"];

#[tokio::test]
async fn kstatus_and_argo_cd_read_every_state_as_the_readme_says() {
    let rows = health_table();
    for row in &rows {
        assert!(
            LIVE.contains(&row.state.as_str()) || TESTDATA_ONLY.contains(&row.state.as_str()),
            "state `{}` of the README's table is neither driven here nor checked on testdata only",
            row.state
        );
    }
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::new("e2e-gitops").await;
    let resource = ApiResource::erase::<UserSynchronization>(&());
    let tasks: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource);
    // The real binary, members fetched 100 at a time: a run over the whole fixture lasts long enough
    // to be seen running. Rotated Secrets are noticed within a second.
    let (_operator, log_path) = spawn_operator(
        &ns.name,
        &[
            "--member-range",
            "100",
            "--listen",
            "127.0.0.1:0",
            "--reference-poll-seconds",
            "1",
        ],
        "info",
    );
    let mut journey = Journey {
        rows,
        tasks,
        checked: BTreeSet::new(),
    };
    first_run(&mut journey).await;
    failures(&mut journey, &client, &ns.name, &mut ldap, &base).await;
    journey.change_spec(json!({"suspend": true})).await;
    journey.reach("suspended", Duration::from_secs(60)).await;
    journey
        .change_spec(json!({"suspend": false, "dryRun": true, "maxDeletions": "100%"}))
        .await;
    journey.reach("previewed", Duration::from_secs(60)).await;

    let live: BTreeSet<String> = LIVE.iter().map(|s| s.to_string()).collect();
    assert_eq!(journey.checked, live, "every live state was checked");
    let _ = std::fs::remove_file(&log_path);
}

/// Created (no status yet), running, synced: the first run, over the whole standard fixture.
async fn first_run(journey: &mut Journey) {
    let corp = format!("OU=Corp,{}", env::samba().base_dn);
    let task: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {"urls": [env::samba().ldaps_url], "credentialsSecretRef": {"name": "bind"}, "tls": {"caSecretRef": {"name": "ca"}}},
            "directory": {"baseDN": corp},
        },
    }))
    .expect("task");
    // The apiserver's answer is the task as it was created: no operator has seen it.
    let created = journey
        .tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task created");
    let created = journey.check("new", &created);
    assert!(created["status"].is_null(), "{created}");
    journey.reach("running", Duration::from_secs(60)).await;
    journey.reach("synced", Duration::from_secs(300)).await;
}

/// A spec change; then a transient failure, a permanent one and the brake, on the test's own subtree.
async fn failures(
    journey: &mut Journey,
    client: &kube::Client,
    ns: &str,
    ldap: &mut Ldap,
    base: &str,
) {
    let changed = journey
        .change_spec(json!({"directory": {"baseDN": base}, "maxDeletions": "100%"}))
        .await;
    let row = journey.row("spec-changed");
    assert!(
        row.has_conditions(&changed),
        "{:?}: {changed}",
        row.conditions
    );
    journey.reach("synced", Duration::from_secs(180)).await;

    // A loopback port nothing listens on: ServerUnreachable, retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let unreachable = format!("ldaps://127.0.0.1:{closed}");
    allow_servers(client, ns, "bind", std::slice::from_ref(&unreachable)).await;
    journey
        .change_spec(json!({"server": {"urls": [unreachable]}}))
        .await;
    journey
        .reach("transient-failure", Duration::from_secs(60))
        .await;

    // A wrong password, read by the run that the reachable server starts: InvalidCredentials.
    secrets(client, ns, "not-the-password").await;
    journey
        .change_spec(json!({"server": {"urls": [env::samba().ldaps_url]}}))
        .await;
    journey.reach("stalled", Duration::from_secs(60)).await;

    // No removal allowed, a group gone from the directory, then the right password again.
    journey.change_spec(json!({"maxDeletions": 0})).await;
    delete(ldap, &Server::Samba.group_dn(base, "Ops")).await;
    secrets(client, ns, &Server::Samba.credentials().1).await;
    run_now(&Api::namespaced(client.clone(), ns), "braked").await;
    journey.reach("braked", Duration::from_secs(60)).await;
}

/// The task `corp` on its way through the table's states.
struct Journey {
    rows: Vec<Row>,
    tasks: Api<DynamicObject>,
    checked: BTreeSet<String>,
}

impl Journey {
    fn row(&self, state: &str) -> &Row {
        self.rows
            .iter()
            .find(|r| r.state == state)
            .unwrap_or_else(|| panic!("the README's GitOps health table has no `{state}`"))
    }

    /// Both readers on `task` against the row of `state`; the task as JSON.
    fn check(&mut self, state: &str, task: &DynamicObject) -> Value {
        let json = serde_json::to_value(task).expect("task serializes");
        assert_verdicts(self.row(state), &json);
        self.checked.insert(state.to_owned());
        json
    }

    /// Waits until the task is in `state` as its row describes it, then checks the readers.
    async fn reach(&mut self, state: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self.tasks.get("corp").await.expect("task");
            let json = serde_json::to_value(&task).expect("task serializes");
            if self.row(state).describes(&json) {
                self.check(state, &task);
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the task is not `{state}` ({:?}) within {timeout:?}: status {}",
                self.row(state).conditions,
                json["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Merge-patches the spec. The apiserver answers with the task before the operator saw the
    /// change, a status of the older spec: `spec-changed`.
    async fn change_spec(&mut self, spec: Value) -> Value {
        let patched = self
            .tasks
            .patch(
                "corp",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .expect("spec patched");
        let json = self.check("spec-changed", &patched);
        let (generation, observed) = (
            json["metadata"]["generation"].as_i64(),
            json["status"]["observedGeneration"].as_i64(),
        );
        assert!(
            observed < generation,
            "observedGeneration {observed:?}, generation {generation:?}"
        );
        json
    }
}
