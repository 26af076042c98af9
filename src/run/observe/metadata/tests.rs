use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    FieldsV1, ManagedFieldsEntry, OwnerReference,
};
use kube::core::PartialObjectMetaExt;

use super::*;
use crate::api::{NestedGroups, SYNCHRONIZATION_LABEL};
use crate::directory::snapshot::{Group, Snapshot, User};
use crate::planner::current::cluster_state;
use crate::planner::desired::desired_groups;
use crate::planner::plan::{MaxDeletions, Plan, Policies, plan};
use crate::planner::shard::{DEFAULT_SHARD_BYTES, parts};

const UID: &str = "5d3c1a2e-0000-4000-8000-000000000001";

fn task() -> UserSynchronization {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp", "namespace": "identity", "uid": UID},
        "spec": {
            "targetGroup": "all-users",
            "server": {"urls": ["ldaps://dc.example.org"], "credentialsSecretRef": {"name": "bind"}},
            "directory": {"baseDN": "dc=example,dc=org"},
        },
    }))
    .expect("task")
}

fn user(name: &str) -> Arc<User> {
    Arc::new(User {
        id: format!("uid-{name}"),
        dn: format!("uid={name},dc=example,dc=org"),
        name: name.into(),
        ..Default::default()
    })
}

fn group(name: &str, users: &[usize], groups: &[usize]) -> Group {
    Group {
        id: format!("gid-{name}"),
        dn: format!("cn={name},dc=example,dc=org"),
        name: name.into(),
        users: users.to_vec(),
        groups: groups.to_vec(),
        ..Default::default()
    }
}

/// Eng (zed, amy; with Ops nested below it), Ops (bob); loner in no group.
fn snapshot() -> Snapshot {
    Snapshot {
        base_dn: "dc=example,dc=org".into(),
        users: vec![user("zed"), user("amy"), user("bob"), user("loner")],
        groups: vec![group("Eng", &[0, 1], &[1]), group("Ops", &[2], &[])],
        ..Default::default()
    }
}

fn desired(s: &Snapshot) -> Vec<DesiredGroup> {
    desired_groups(s, "all-users", None, NestedGroups::Preserve)
}

fn policies() -> Policies {
    Policies {
        task: "corp".into(),
        naming: crate::planner::plan::Naming {
            root: "all-users".into(),
            ..Default::default()
        },
        collision: crate::api::CollisionPolicy::Skip,
        user_extinction: crate::api::ExtinctionPolicy::Remove,
        group_extinction: crate::api::ExtinctionPolicy::Remove,
        max_deletions: MaxDeletions::percent(100),
        deletions_approved: false,
        held: Default::default(),
    }
}

fn entry(manager: &str, operation: &str, fields: serde_json::Value) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some(operation.into()),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(FieldsV1(fields)),
        ..Default::default()
    }
}

fn applied_fields() -> serde_json::Value {
    serde_json::json!({
        "f:metadata": {"f:annotations": {"f:usersync.io/spec-digest": {}}},
        "f:spec": {"f:displayName": {}, "f:users": {}},
    })
}

/// The metadata of an object usersync applied with `spec`.
fn applied(name: &str, spec: &UserGroupSpec) -> PartialObjectMeta<UserGroup> {
    let mut status = entry(FIELD_MANAGER, "Apply", serde_json::json!({"f:status": {}}));
    status.subresource = Some("status".into());
    ObjectMeta {
        name: Some(name.into()),
        labels: Some(BTreeMap::from([(
            SYNCHRONIZATION_LABEL.to_owned(),
            "corp".to_owned(),
        )])),
        annotations: Some(BTreeMap::from([(
            SPEC_DIGEST_ANNOTATION.to_owned(),
            spec.digest(),
        )])),
        owner_references: Some(vec![OwnerReference {
            uid: UID.into(),
            name: "corp".into(),
            kind: "UserSynchronization".into(),
            api_version: "usersync.io/v1alpha1".into(),
            ..Default::default()
        }]),
        managed_fields: Some(vec![
            entry(FIELD_MANAGER, "Apply", applied_fields()),
            status,
        ]),
        ..Default::default()
    }
    .into_request_partial::<UserGroup>()
}

/// What a first run writes for `s`, as metadata listed afterwards.
fn written(s: &Snapshot) -> (Plan, Vec<PartialObjectMeta<UserGroup>>) {
    written_in_shards(s, DEFAULT_SHARD_BYTES)
}

/// The same, with groups split into shards of `shard_bytes`.
fn written_in_shards(
    s: &Snapshot,
    shard_bytes: usize,
) -> (Plan, Vec<PartialObjectMeta<UserGroup>>) {
    let first = plan(desired(s), &[], &policies());
    let mut metas = Vec::new();
    for w in &first.create {
        for (n, part) in parts(&w.name, &w.spec, shard_bytes).iter().enumerate() {
            if n == 0 {
                metas.push(applied(&w.name, part));
            } else {
                let mut shard = applied(&shard_name(&w.name, n), part);
                shard
                    .metadata
                    .labels
                    .get_or_insert_default()
                    .insert(SHARD_OF_LABEL.to_owned(), w.name.clone());
                metas.push(shard);
            }
        }
    }
    (first, metas)
}

fn listing(vouched: Vec<PartialObjectMeta<UserGroup>>) -> Listing {
    let mut shards = HashMap::new();
    for base in vouched
        .iter()
        .filter_map(|m| m.metadata.labels.as_ref()?.get(SHARD_OF_LABEL))
    {
        *shards.entry(base.clone()).or_default() += 1;
    }
    Listing {
        downloaded: Vec::new(),
        vouched,
        shards,
    }
}

#[test]
fn usersync_vouches_for_what_it_alone_applied() {
    let spec = UserGroupSpec {
        display_name: "Eng".into(),
        ..Default::default()
    };
    let meta = applied("corp-eng-000001", &spec).metadata;
    assert_eq!(vouched_digest(&meta), Some(spec.digest().as_str()));

    // Labels or annotations of its own set by others do not matter.
    let mut labelled = meta.clone();
    labelled.managed_fields.get_or_insert_default().push(entry(
        "kubectl-label",
        "Update",
        serde_json::json!({"f:metadata": {"f:labels": {"f:team": {}}}}),
    ));
    assert!(vouched_digest(&labelled).is_some());

    let edited = |fields: serde_json::Value| {
        let mut m = meta.clone();
        m.managed_fields
            .get_or_insert_default()
            .push(entry("kubectl-edit", "Update", fields));
        vouched_digest(&m).map(str::to_owned)
    };
    assert_eq!(edited(serde_json::json!({"f:spec": {"f:users": {}}})), None);
    assert_eq!(
        edited(
            serde_json::json!({"f:metadata": {"f:annotations": {"f:usersync.io/spec-digest": {}}}})
        ),
        None
    );

    let mut unmanaged = meta.clone();
    unmanaged.managed_fields = None;
    assert_eq!(vouched_digest(&unmanaged), None, "managedFields were reset");
    let mut created = meta.clone();
    created.managed_fields = Some(vec![entry(FIELD_MANAGER, "Update", applied_fields())]);
    assert!(vouched_digest(&created).is_some(), "created by usersync");
    let mut bare = meta;
    bare.annotations = None;
    assert_eq!(vouched_digest(&bare), None, "written before digests");
}

#[test]
fn objects_in_sync_are_rebuilt_without_a_download() {
    let s = snapshot();
    let (first, metas) = written(&s);
    assert_eq!(first.create.len(), 3, "{first:?}");
    let (objects, differing) = rebuild(listing(metas), &desired(&s), &task(), DEFAULT_SHARD_BYTES);
    assert!(differing.is_empty(), "{differing:?}");
    for w in &first.create {
        let object = objects
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some(&w.name))
            .expect("rebuilt");
        assert_eq!(object.spec, w.spec, "{}", w.name);
    }
    // The planner finds nothing to do against them, as against the downloaded objects.
    let state = cluster_state(objects.iter().map(|g| &**g), &task());
    let again = plan(desired(&s), &state.groups, &policies());
    assert!(again.is_noop(), "{again:?}");
    assert_eq!(again.unchanged, 3);
}

#[test]
fn objects_that_differ_are_downloaded() {
    let s = snapshot();
    let (first, metas) = written(&s);
    let name_of = |display: &str| {
        first
            .create
            .iter()
            .find(|w| w.spec.display_name == display)
            .map(|w| w.name.clone())
            .expect("written")
    };
    // bob renamed in the directory: Ops lists him; its parent Eng and the target group are as
    // written.
    let mut changed = snapshot();
    changed.users[2] = Arc::new(User {
        display_name: Some("Bob".into()),
        ..(*changed.users[2]).clone()
    });
    let (objects, differing) = rebuild(
        listing(metas.clone()),
        &desired(&changed),
        &task(),
        DEFAULT_SHARD_BYTES,
    );
    assert_eq!(differing, vec![name_of("Ops")]);
    assert_eq!(objects.len(), 2);

    // Eng gone from the directory: its object has nothing to match, Ops hangs below the target
    // group now, and Eng's users are listed in the target group.
    let mut without_eng = snapshot();
    without_eng.groups.remove(0);
    without_eng.groups[0].groups.clear();
    let (_, mut differing) = rebuild(
        listing(metas),
        &desired(&without_eng),
        &task(),
        DEFAULT_SHARD_BYTES,
    );
    differing.sort();
    let mut expected = vec![name_of("all-users"), name_of("Eng"), name_of("Ops")];
    expected.sort();
    assert_eq!(differing, expected);
}

#[test]
fn downloaded_shards_do_not_stand_for_a_group() {
    let s = snapshot();
    let (first, mut metas) = written(&s);
    // Eng was downloaded whole, with a shard object continuing its members (which has no source).
    let eng = metas.remove(
        metas
            .iter()
            .position(|m| {
                m.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.contains("eng"))
            })
            .expect("Eng"),
    );
    let eng_name = eng.metadata.name.clone().expect("name");
    let eng_spec = &first
        .create
        .iter()
        .find(|w| w.name == eng_name)
        .expect("written")
        .spec;
    let whole = |metadata: ObjectMeta, spec: UserGroupSpec| {
        Arc::new(UserGroup {
            metadata,
            spec,
            status: None,
        })
    };
    let mut shard_meta = eng.metadata.clone();
    shard_meta.name = Some(format!("{eng_name}-s1"));
    shard_meta
        .labels
        .get_or_insert_default()
        .insert(SHARD_OF_LABEL.to_owned(), eng_name.clone());
    let shard = UserGroupSpec {
        display_name: "Eng".into(),
        parent: Some(eng_name.clone()),
        ..Default::default()
    };
    let listing = Listing {
        downloaded: vec![
            whole(eng.metadata, eng_spec.clone()),
            whole(shard_meta, shard),
        ],
        vouched: metas,
        shards: HashMap::from([(eng_name.clone(), 1)]),
    };
    let (objects, differing) = rebuild(listing, &desired(&s), &task(), DEFAULT_SHARD_BYTES);
    assert!(differing.is_empty(), "{differing:?}");
    assert_eq!(objects.len(), 4);
}

#[test]
fn sharded_groups_are_rebuilt_when_every_part_matches() {
    // About one member per shard.
    const TINY: usize = 16;
    let s = snapshot();
    let (_, metas) = written_in_shards(&s, TINY);
    let shard_count = metas.iter().filter(|m| is_shard_meta(m)).count();
    assert!(shard_count >= 1, "{shard_count} shards");
    let (objects, differing) = rebuild(listing(metas.clone()), &desired(&s), &task(), TINY);
    assert!(differing.is_empty(), "{differing:?}");
    assert_eq!(objects.len(), metas.len());
    let state = cluster_state(objects.iter().map(|g| &**g), &task());
    let again = plan(desired(&s), &state.groups, &policies());
    assert!(again.is_noop(), "{again:?}");

    // Written with other shard sizes: the parts do not match and are downloaded, shards included.
    let (_, differing) = rebuild(
        listing(metas.clone()),
        &desired(&s),
        &task(),
        DEFAULT_SHARD_BYTES,
    );
    for m in metas.iter().filter(|m| is_shard_meta(m)) {
        let labels = m.metadata.labels.as_ref().expect("labels");
        assert!(differing.contains(&labels[SHARD_OF_LABEL]), "{differing:?}");
        assert!(
            differing.contains(m.metadata.name.as_ref().expect("name")),
            "{differing:?}"
        );
    }

    // A shard not vouched for (listed, but downloaded): its group is downloaded too.
    let mut listed = listing(metas);
    let i = listed
        .vouched
        .iter()
        .position(is_shard_meta)
        .expect("a shard");
    let shard = listed.vouched.remove(i);
    let base = shard.metadata.labels.as_ref().expect("labels")[SHARD_OF_LABEL].clone();
    let (_, differing) = rebuild(listed, &desired(&s), &task(), TINY);
    assert!(differing.contains(&base), "{differing:?}");
}

fn is_shard_meta(m: &PartialObjectMeta<UserGroup>) -> bool {
    m.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(SHARD_OF_LABEL))
}

#[test]
fn work_split_between_cores_keeps_its_order() {
    let items: Vec<u32> = (0..10_000).collect();
    let doubled = on_every_core(&items, |i| i * 2);
    assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    assert_eq!(on_every_core(&[] as &[u32], |i| *i), Vec::<u32>::new());
}
