//! A 50,000-member group read from a slapd of its own: stored as a base object plus shard objects,
//! each well under the apiserver's object size limit, joined back complete; a re-run writes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use kube::ResourceExt;
use kube::api::{Api, PostParams};
use usersync::api::{UserGroup, UserSynchronization};
use usersync_testbed::fixture::{FixtureSpec, generate, names};
use usersync_testbed::ldif::{self, Layout, OpenLdap};

use crate::support::audit::{audit_write_lines, audit_writes};
use crate::support::command::run_ok;
use crate::support::kube::{
    allow_servers, base_and_shards, bind_and_ca_secrets, install_crds, joined_member_ids,
    kube_client, run_now, user_groups,
};
use crate::support::namespace::TestNamespace;
use crate::support::operator::{free_local_addr, metric, start_operator_with, take_turn};
use crate::support::wait::{assert_synced, wait_for_run};

const MEMBERS: usize = 50_000;
/// etcd's default request limit is 1.5 MiB; an object must stay clearly below it.
const OBJECT_LIMIT: usize = 1024 * 1024;

/// A slapd with the fixture loaded, stopped when dropped.
struct Slapd {
    dir: PathBuf,
}

impl Slapd {
    fn start(spec: FixtureSpec) -> (Slapd, usersync_testbed::fixture::Fixture) {
        let dir = std::env::temp_dir().join(format!("usersync-big-group-{}", std::process::id()));
        let slapd = Slapd { dir };
        slapd.script("start", &[]);
        let fixture = generate(spec);
        let ldif_path = slapd.dir.join("fixture.ldif");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&ldif_path).expect("ldif"));
        ldif::write_openldap(&fixture, true, &mut out).expect("ldif written");
        drop(out);
        slapd.script("load", &[&ldif_path]);
        (slapd, fixture)
    }

    fn script(&self, command: &str, extra: &[&Path]) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/slapd.sh");
        run_ok(
            Command::new("bash")
                .arg(script)
                .arg(command)
                .arg(&self.dir)
                .args(extra),
        );
    }

    /// Applies an LDIF change as the directory's administrator.
    fn modify(&self, ldif: &str) {
        use std::io::Write;
        let url = self.url();
        let mut child = Command::new("ldapmodify")
            .args([
                "-x",
                "-H",
                &url,
                "-D",
                "cn=admin,dc=example,dc=org",
                "-w",
                "usersync-admin",
            ])
            .env("LDAPTLS_CACERT", self.dir.join("tls/ca.crt"))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("ldapmodify runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("LDIF written");
        assert!(child.wait().expect("ldapmodify ends").success());
    }

    fn url(&self) -> String {
        let port = std::fs::read_to_string(self.dir.join("tls_port")).expect("port");
        format!("ldaps://127.0.0.1:{}", port.trim())
    }

    fn ca(&self) -> String {
        std::fs::read_to_string(self.dir.join("tls/ca.crt")).expect("CA")
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.script("stop", &[]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_fifty_thousand_member_group_is_stored_in_shards_under_the_size_limit() {
    let _turn = take_turn().await;
    let (slapd, fixture) = Slapd::start(FixtureSpec {
        users: MEMBERS,
        teams: 2,
        big_group_members: MEMBERS,
    });
    let big = fixture
        .groups
        .iter()
        .find(|g| g.name == names::ALL_STAFF)
        .expect("the big group");
    assert_eq!(big.members.len(), MEMBERS);

    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-big-group").await;
    bind_and_ca_secrets(
        &client,
        &ns.name,
        "cn=admin,dc=example,dc=org",
        "usersync-admin",
        &slapd.ca(),
    )
    .await;
    allow_servers(&client, &ns.name, "bind", &[slapd.url()]).await;
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let task: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {"type": "LDAP", "urls": [slapd.url()], "credentialsSecretRef": {"name": "bind"}, "tls": {"caSecretRef": {"name": "ca"}}},
            "directory": {
                "preset": "OpenLDAP",
                "baseDN": OpenLdap.base_dn(),
                "groups": [OpenLdap.group_dn(&fixture, big)],
                "pageSize": 1000,
            },
        },
    }))
    .expect("task");
    tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task created");
    // The operator's own shard size: what a real deployment does with such a group.
    let addr = free_local_addr();
    let operator = start_operator_with(
        &client,
        &ns.name,
        usersync::planner::shard::DEFAULT_SHARD_BYTES,
        Some(addr),
    );
    let in_place = || metric(addr, "usersync_plans_total{kind=\"in_place\"}");
    let whole = || metric(addr, "usersync_plans_total{kind=\"whole\"}");

    let task = wait_for_run(&tasks, None).await;
    assert_synced(&task);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let all = user_groups(&groups).await;
    let (base, shards) = base_and_shards(&all, names::ALL_STAFF);
    assert!(!shards.is_empty(), "50,000 members need shards");
    let mut biggest = 0;
    for object in std::iter::once(base).chain(shards.iter().copied()) {
        let size = serde_json::to_vec(object).expect("serializes").len();
        biggest = biggest.max(size);
        assert!(size < OBJECT_LIMIT, "{} is {size} bytes", object.name_any());
    }
    let ids = joined_member_ids(base, &shards);
    assert_eq!(
        ids.len(),
        MEMBERS,
        "the joined list is complete, without duplicates"
    );
    assert_eq!(
        base.status.as_ref().map(|s| s.user_count),
        Some(MEMBERS as i64)
    );
    eprintln!("{} shards, largest object {biggest} bytes", shards.len());

    // One write per object, the count in the same write as the members.
    let writes = audit_writes(&ns.name);
    assert_eq!(
        writes,
        all.len(),
        "each of {} objects written once: {:?}",
        all.len(),
        audit_write_lines(&ns.name, 0)
    );
    run_now(&tasks, "again").await;
    wait_for_run(&tasks, Some("again")).await;
    assert_eq!(
        audit_writes(&ns.name),
        writes,
        "an unchanged group writes nothing: {:?}",
        audit_write_lines(&ns.name, writes)
    );

    // One member renamed: only the object that lists that member is written, once (the count is
    // the same), planned from the objects that list the member, not from the whole directory.
    let planned_in_place = in_place().await;
    let user = &fixture.users[MEMBERS - 10];
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed Member\n",
        OpenLdap.user_dn(&fixture, user)
    ));
    run_now(&tasks, "renamed").await;
    let task = wait_for_run(&tasks, Some("renamed")).await;
    let last_run = task.status.and_then(|s| s.last_run);
    assert_eq!(
        last_run.as_ref().map(|r| r.updated),
        Some(1),
        "one group updated: {last_run:?}"
    );
    assert_eq!(
        audit_writes(&ns.name),
        writes + 1,
        "one of {} objects rewritten: {:?}",
        shards.len() + 1,
        audit_write_lines(&ns.name, writes)
    );
    assert_eq!(in_place().await, planned_in_place + 1.0);

    // One member leaves: the chunk that held it (rarely its neighbour too) and the counts change;
    // the other shards are not rewritten.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n",
        OpenLdap.group_dn(&fixture, big),
        OpenLdap.user_dn(&fixture, &fixture.users[MEMBERS / 2])
    ));
    let before = audit_writes(&ns.name);
    let planned_whole = whole().await;
    run_now(&tasks, "left").await;
    wait_for_run(&tasks, Some("left")).await;
    assert_eq!(
        whole().await,
        planned_whole + 1.0,
        "a membership change is planned against the whole directory"
    );
    let written = audit_writes(&ns.name) - before;
    // At most two shards, and the base object (its total count).
    assert!(
        (2..=3).contains(&written),
        "{written} writes for one member leaving a group of {} objects: {:?}",
        shards.len() + 1,
        audit_write_lines(&ns.name, before)
    );
    operator.abort();
}
