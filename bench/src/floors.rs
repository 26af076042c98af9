//! The floors usersync is held against: a bare paged dump of the same entries (A), a minimal
//! parallel server-side-apply loop writing the same final UserGroup objects (B), and, for the scale
//! command's growth, a plain loop creating the objects usersync stored.

use std::process::Command;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, Patch, PatchParams};
use usersync::api::UserGroup;
use usersync::run::apply::METADATA_ONLY;

use crate::measure::{Sample, time_command};
use crate::target::Target;

/// Floor A: `ldapsearch` with paged results, output thrown away (after counting entries).
pub fn dump(target: &Target) -> Result<Sample, String> {
    let (filter, attrs) = target.dump_query();
    let mut entries = 0u64;
    let mut sample = time_command(
        Command::new("ldapsearch")
            .args(["-LLL", "-x", "-o", "ldif-wrap=no", "-H", &target.url])
            .args(["-D", &target.bind, "-w", &target.password])
            .args(["-b", &target.base_dn(), "-E", "pr=1000/noprompt", &filter])
            .args(&attrs)
            .env("LDAPTLS_CACERT", &target.ca_file),
        |line| {
            if line.starts_with("dn:") {
                entries += 1;
            }
        },
    )?;
    sample.entries_read = Some(entries);
    Ok(sample)
}

/// Floor B: the objects usersync ended with in `from`, written again into `to` by a plain loop of
/// server-side applies, `concurrency` at a time: one per object, its count included, or
/// (`two_requests`) the object and then its count, under a field manager of its own.
pub async fn apply_loop(
    client: &kube::Client,
    from: &str,
    to: &str,
    concurrency: usize,
    two_requests: bool,
) -> Result<Sample, String> {
    let source: Api<UserGroup> = Api::namespaced(client.clone(), from);
    let objects = source
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list: {e}"))?
        .items;
    let target: Api<UserGroup> = Api::namespaced(client.clone(), to);
    let params = PatchParams::apply("floor-b").force();
    let count_params = PatchParams::apply("floor-b-count").force();
    let writes = objects.into_iter().map(|object| {
        let (target, params, count_params) = (&target, &params, &count_params);
        async move {
            let name = object.metadata.name.clone().unwrap_or_default();
            let mut body = serde_json::json!({
                "apiVersion": "usersync.io/v1alpha1",
                "kind": "UserGroup",
                "metadata": {"name": name, "labels": object.metadata.labels},
                "spec": object.spec,
            });
            if !two_requests {
                body["status"] = serde_json::json!(object.status);
            }
            target
                .patch(&name, params, &Patch::Apply(&body))
                .await
                .map_err(|e| format!("apply {name}: {e}"))?;
            if two_requests {
                let count = serde_json::json!({
                    "apiVersion": "usersync.io/v1alpha1",
                    "kind": "UserGroup",
                    "metadata": {"name": name},
                    "status": object.status,
                });
                target
                    .patch(&name, count_params, &Patch::Apply(&count))
                    .await
                    .map_err(|e| format!("apply count {name}: {e}"))?;
            }
            Ok::<_, String>(())
        }
    });
    timed(writes, concurrency).await
}

/// The objects usersync stored in `namespace`, as the bodies a plain writer of the same objects
/// would create: name, labels, annotations, spec and count, without owner references (the owning
/// task is not in the cluster [`create_loop`] writes to) or anything the apiserver sets.
pub async fn stored_bodies(
    client: &kube::Client,
    namespace: &str,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let api: Api<UserGroup> = Api::namespaced(client.clone(), namespace);
    let mut bodies = Vec::new();
    let mut params = ListParams::default().limit(1000);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| format!("list {namespace}: {e}"))?;
        for object in page.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            let body = serde_json::json!({
                "apiVersion": "usersync.io/v1alpha1",
                "kind": "UserGroup",
                "metadata": {
                    "name": name,
                    "labels": object.metadata.labels,
                    "annotations": object.metadata.annotations,
                },
                "spec": object.spec,
                "status": object.status,
            });
            bodies.push((name, serde_json::to_vec(&body).map_err(|e| e.to_string())?));
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(bodies),
        }
    }
}

/// The floor of a full sync's growth: `bodies` created into `namespace` by plain POSTs,
/// `concurrency` at a time, each answered with the object's metadata only, as usersync asks.
pub async fn create_loop(
    client: &kube::Client,
    namespace: &str,
    bodies: &[(String, Vec<u8>)],
    concurrency: usize,
) -> Result<Sample, String> {
    let api: Api<UserGroup> = Api::namespaced(client.clone(), namespace);
    let params = kube::api::PostParams {
        field_manager: Some("floor-create".to_owned()),
        ..Default::default()
    };
    let writes = bodies.iter().map(|(name, body)| {
        let (api, params) = (&api, &params);
        async move {
            let mut request = kube::core::Request::new(api.resource_url())
                .create(params, body.clone())
                .map_err(|e| format!("create {name}: {e}"))?;
            request.headers_mut().insert(
                http::header::ACCEPT,
                http::HeaderValue::from_static(METADATA_ONLY),
            );
            client
                .request_text(request)
                .await
                .map_err(|e| format!("create {name}: {e}"))?;
            Ok::<_, String>(())
        }
    });
    timed(writes, concurrency).await
}

/// Runs `writes`, `concurrency` at a time, and times them.
async fn timed(
    writes: impl Iterator<Item = impl Future<Output = Result<(), String>>>,
    concurrency: usize,
) -> Result<Sample, String> {
    let started = Instant::now();
    futures::stream::iter(writes)
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(Sample {
        wall_seconds: started.elapsed().as_secs_f64(),
        ..Default::default()
    })
}
