//! Step 5 of a run: what to change so the task's UserGroups match the snapshot. Pure: the planner
//! under the task's checked settings.

use std::sync::Arc;

use kube::ResourceExt;

use super::validate::Checked;
use crate::api::SHARD_OF_LABEL;
use crate::api::{GroupName, PlannedChange, Preview, UserGroup, UserSynchronization};
use crate::directory::dn;
use crate::directory::snapshot::{Snapshot, Unreadable};
use crate::planner::current::{ClusterState, cluster_state, owned_by};
use crate::planner::desired::Identity;
use crate::planner::desired::{DesiredGroup, desired_groups};
use crate::planner::in_place::{plan_in_place, touched};
use crate::planner::plan::{Held, Naming, Plan, Policies, plan};

/// Changes a preview lists one by one; the counts cover all of them.
const PREVIEW_SAMPLE: usize = 20;
/// The reason of the removals a preview lists that the deletion brake holds back.
pub const HELD_BACK: &str = "HeldByMaxDeletions";

/// The groups the snapshot asks for under the task's settings.
pub fn desired_of(task: &UserSynchronization, snapshot: &Snapshot) -> Vec<DesiredGroup> {
    let spec = &task.spec;
    desired_groups(
        snapshot,
        &spec.target_group,
        spec.description.as_deref(),
        spec.directory.nested_groups,
    )
}

/// The plan for the task's namespace, whose UserGroups are `objects`, and the state it was made
/// against (which the apply step writes over). What stands for the `unreadable` entries is held.
pub fn plan_changes<'a>(
    objects: &'a [Arc<UserGroup>],
    task: &UserSynchronization,
    checked: &Checked,
    (desired, unreadable): (Vec<DesiredGroup>, &Unreadable),
    deletions_approved: bool,
) -> (Plan, ClusterState<'a>) {
    let spec = &task.spec;
    let state = cluster_state(objects.iter().map(|g| &**g), task);
    let naming = Naming {
        root: spec.target_group.clone(),
        chosen: chosen_names(&spec.group_names, &desired),
    };
    let policies = Policies {
        task: task.name_any(),
        naming,
        collision: spec.collision_policy,
        user_extinction: spec.user_extinction_policy,
        group_extinction: spec.group_extinction_policy,
        max_deletions: checked.max_deletions,
        deletions_approved,
        held: Held::new(
            unreadable.ids.iter().cloned(),
            unreadable.dns.iter().cloned(),
            unreadable.unnamed > 0,
        ),
    };
    (plan(desired, &state.groups, &policies), state)
}

/// The plan of a run whose `changed` users (indices into the snapshot) changed in place since the
/// task's last run, whose plan was exact and whose objects nobody changed since (the caller knows
/// both): the objects that list them, and no others, are looked at.
pub fn plan_in_place_changes<'a>(
    objects: &'a [Arc<UserGroup>],
    task: &UserSynchronization,
    snapshot: &Snapshot,
    changed: &[usize],
) -> (Plan, ClusterState<'a>) {
    let touched = touched(snapshot, changed);
    let owned = owned_by(task);
    let mut bases = 0;
    let mut names = hashbrown::HashSet::new();
    for g in objects.iter().filter(|g| owned(&g.metadata)) {
        if g.labels().contains_key(SHARD_OF_LABEL) {
            continue;
        }
        bases += 1;
        if touched.of(&g.spec).is_some() {
            names.insert(g.name_any());
        }
    }
    let of_touched = |g: &&Arc<UserGroup>| match g.labels().get(SHARD_OF_LABEL) {
        Some(base) => names.contains(base),
        None => names.contains(g.metadata.name.as_deref().unwrap_or_default()),
    };
    let state = cluster_state(objects.iter().filter(of_touched).map(|g| &**g), task);
    (
        plan_in_place(&state.groups, snapshot, &touched, bases),
        state,
    )
}

/// `groupNames` matched to the desired groups: by directory id, or by DN compared as a DN. An
/// entry that matches no group names nothing (the group may be out of scope this run).
fn chosen_names(
    chosen: &[GroupName],
    desired: &[DesiredGroup],
) -> hashbrown::HashMap<Identity, String> {
    let mut out = hashbrown::HashMap::new();
    if chosen.is_empty() {
        return out;
    }
    let by_key: hashbrown::HashMap<String, &str> = chosen
        .iter()
        .flat_map(|c| {
            let dn = dn::key_of(&c.group).ok().map(|k| (k, c.name.as_str()));
            dn.into_iter().chain([(c.group.clone(), c.name.as_str())])
        })
        .collect();
    for d in desired {
        let Some(source) = &d.source else { continue };
        let by_dn = dn::key_of(&source.dn).ok().and_then(|k| by_key.get(&k));
        if let Some(name) = by_key.get(&source.id).or(by_dn) {
            out.insert(d.identity.clone(), (*name).to_owned());
        }
    }
    out
}

/// The plan in brief, as a dry-run task shows it on its status, and a task whose run the deletion
/// brake held back (with the removals held back, reason [`HELD_BACK`]).
pub fn preview(plan: &Plan) -> Preview {
    let change =
        |action: &str, name: &str, display: Option<&str>, reason: Option<String>| PlannedChange {
            action: action.to_owned(),
            name: name.to_owned(),
            display_name: display.map(str::to_owned),
            reason,
        };
    let written = |action: &'static str| {
        move |w: &crate::planner::plan::Write| {
            change(action, &w.name, Some(&w.spec.display_name), None)
        }
    };
    let mut changes: Vec<PlannedChange> = Vec::new();
    changes.extend(plan.create.iter().map(written("Create")));
    changes.extend(plan.update.iter().map(written("Update")));
    changes.extend(plan.remove.iter().map(|n| change("Remove", n, None, None)));
    // What maxDeletions holds back, which an approval lets through.
    let held = || Some(HELD_BACK.to_owned());
    if let Some(brake) = &plan.brake {
        changes.extend(
            brake
                .groups
                .iter()
                .map(|n| change("Remove", n, None, held())),
        );
        changes.extend(
            brake
                .users
                .iter()
                .map(|n| change("RemoveUser", n, None, held())),
        );
    }
    changes.extend(
        plan.skipped
            .iter()
            .map(|s| change("Skip", &s.name, None, Some(format!("{:?}", s.reason)))),
    );
    let truncated = changes.len() > PREVIEW_SAMPLE;
    changes.truncate(PREVIEW_SAMPLE);
    let held_back = plan
        .brake
        .as_ref()
        .map_or(0, |b| b.groups.len() + b.users.len());
    Preview {
        create: plan.create.len() as i64,
        update: plan.update.len() as i64,
        remove: (plan.remove.len() + held_back) as i64,
        skip: plan.skipped.len() as i64,
        changes,
        truncated,
    }
}
