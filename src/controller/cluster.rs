//! The task's UserGroups in the cluster: reading them for the planner and writing the plan with
//! server-side apply under one field manager.

use std::collections::BTreeMap;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use super::error::{ControllerError, kube};
use crate::api::{
    EXTINCT_SINCE_ANNOTATION, FIELD_MANAGER, SYNCHRONIZATION_LABEL, UserGroup, UserGroupSpec,
    UserGroupStatus, UserSynchronization,
};
use crate::planner::plan::{CurrentGroup, Plan};

/// Every UserGroup of the namespace: the task's own ones, and the others that names may collide with.
pub async fn current_groups(
    api: &Api<UserGroup>,
    task: &UserSynchronization,
) -> Result<Vec<CurrentGroup>, ControllerError> {
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube("listing UserGroups"))?;
    let uid = task.uid();
    Ok(list
        .items
        .into_iter()
        .map(|g| {
            let labelled = g.labels().get(SYNCHRONIZATION_LABEL).map(String::as_str)
                == Some(task.name_any().as_str());
            let owner = g
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref());
            CurrentGroup {
                name: g.name_any(),
                owned: labelled && owner,
                marked_extinct: g.annotations().contains_key(EXTINCT_SINCE_ANNOTATION),
                spec: g.spec,
            }
        })
        .collect())
}

/// Counts of what a plan's application wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
    pub marked: usize,
}

pub async fn apply(
    api: &Api<UserGroup>,
    task: &UserSynchronization,
    plan: &Plan,
    current: &[CurrentGroup],
    now: &str,
) -> Result<Applied, ControllerError> {
    let mut applied = Applied::default();
    for write in &plan.create {
        put(api, task, &write.name, &write.spec, None).await?;
        applied.created += 1;
    }
    for write in &plan.update {
        put(api, task, &write.name, &write.spec, None).await?;
        applied.updated += 1;
    }
    for name in &plan.mark_extinct {
        if let Some(c) = current.iter().find(|c| &c.name == name) {
            put(api, task, name, &c.spec, Some(now)).await?;
            applied.marked += 1;
        }
    }
    for name in &plan.remove {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => applied.removed += 1,
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(e) => return Err(kube("removing a UserGroup")(e)),
        }
    }
    Ok(applied)
}

/// Applies the whole object as this task wants it. Fields usersync applied before and leaves out now
/// (such as the extinct-since annotation) are removed by the apiserver.
async fn put(
    api: &Api<UserGroup>,
    task: &UserSynchronization,
    name: &str,
    spec: &UserGroupSpec,
    extinct_since: Option<&str>,
) -> Result<(), ControllerError> {
    let mut group = UserGroup::new(name, spec.clone());
    group.metadata.labels = Some(BTreeMap::from([(
        SYNCHRONIZATION_LABEL.to_owned(),
        task.name_any(),
    )]));
    group.metadata.owner_references = task.controller_owner_ref(&()).map(|r| vec![r]);
    if let Some(since) = extinct_since {
        group.metadata.annotations = Some(BTreeMap::from([(
            EXTINCT_SINCE_ANNOTATION.to_owned(),
            since.to_owned(),
        )]));
    }
    // Force: this task is the only writer of these fields, and Overwrite takes objects over.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(&group))
        .await
        .map_err(kube("applying a UserGroup"))?;
    let status = serde_json::json!({
        "apiVersion": UserGroup::api_version(&()),
        "kind": UserGroup::kind(&()),
        "status": UserGroupStatus { user_count: spec.users.len() as i64 },
    });
    api.patch_status(name, &params, &Patch::Apply(&status))
        .await
        .map_err(kube("applying a UserGroup status"))?;
    Ok(())
}
