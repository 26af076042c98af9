//! The floors usersync is held against: a bare paged dump of the same entries (A), and a minimal
//! parallel server-side-apply loop writing the same final UserGroup objects (B).

use std::process::Command;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, Patch, PatchParams};
use usersync::api::UserGroup;

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
    let started = Instant::now();
    futures::stream::iter(objects.into_iter().map(|object| {
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
    }))
    .buffer_unordered(concurrency)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(Sample {
        wall_seconds: started.elapsed().as_secs_f64(),
        ..Default::default()
    })
}
