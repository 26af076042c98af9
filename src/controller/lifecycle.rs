//! The task's own lifecycle: the finalizer `deletionPolicy: Orphan` needs, and detaching the task's
//! UserGroups when the task is deleted, so the garbage collector leaves them.

use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::info;

use super::context::Context;
use super::error::ControllerError;
use crate::api::{
    DeletionPolicy, FIELD_MANAGER, ORPHAN_FINALIZER, ORPHANED_FROM_ANNOTATION,
    SYNCHRONIZATION_LABEL, UserGroup, UserSynchronization,
};
use crate::run::ApiError;

/// What the task's lifecycle asks of this look at it: `Some` ends the look (the task is being
/// deleted), `None` goes on to runs.
pub async fn handle(
    ctx: &Context,
    task: &UserSynchronization,
) -> Result<Option<Action>, ControllerError> {
    let held = task.finalizers().iter().any(|f| f == ORPHAN_FINALIZER);
    if task.meta().deletion_timestamp.is_some() {
        if held {
            detach_user_groups(ctx, task).await?;
            set_finalizer(ctx, task, false).await?;
        }
        return Ok(Some(Action::await_change()));
    }
    let wanted = task.spec.deletion_policy == DeletionPolicy::Orphan;
    if wanted != held {
        set_finalizer(ctx, task, wanted).await?;
    }
    Ok(None)
}

/// Adds or removes the finalizer, only on the version of the task this look saw.
async fn set_finalizer(
    ctx: &Context,
    task: &UserSynchronization,
    held: bool,
) -> Result<(), ControllerError> {
    let mut finalizers: Vec<String> = task
        .finalizers()
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER)
        .cloned()
        .collect();
    if held {
        finalizers.push(ORPHAN_FINALIZER.to_owned());
    }
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": task.resource_version(),
    }});
    let api: Api<UserSynchronization> =
        Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    api.patch(
        &task.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(ApiError::while_("updating the task's finalizers"))?;
    Ok(())
}

/// Takes the task's owner reference off each of its UserGroups (each on the version listed) and
/// says where they came from.
async fn detach_user_groups(
    ctx: &Context,
    task: &UserSynchronization,
) -> Result<(), ControllerError> {
    let namespace = task.namespace().unwrap_or_default();
    let uid = task.uid().unwrap_or_default();
    let api: Api<UserGroup> = Api::namespaced(ctx.client.clone(), &namespace);
    let listed = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(ApiError::while_("listing UserGroups to detach"))?;
    let from = format!("{namespace}/{} {uid}", task.name_any());
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let mut detached = 0;
    for group in listed.items {
        let owners = group.owner_references();
        if !owners.iter().any(|o| o.uid == uid) {
            continue;
        }
        // The task's own objects lose every owner: a root other tasks hang below (and keep alive
        // with their references) stays when they go too. Another task's root loses only this
        // task's reference.
        let own = group.labels().get(SYNCHRONIZATION_LABEL) == Some(&task.name_any());
        let others: Vec<_> = owners.iter().filter(|o| o.uid != uid && !own).collect();
        let patch = serde_json::json!({"metadata": {
            "ownerReferences": if others.is_empty() { None } else { Some(others) },
            "annotations": {ORPHANED_FROM_ANNOTATION: from},
            "resourceVersion": group.resource_version(),
        }});
        api.patch(&group.name_any(), &params, &Patch::Merge(&patch))
            .await
            .map_err(ApiError::while_("detaching a UserGroup"))?;
        detached += 1;
    }
    info!(task = %task.name_any(), detached, "task deleted; its UserGroups stay (deletionPolicy: Orphan)");
    Ok(())
}
