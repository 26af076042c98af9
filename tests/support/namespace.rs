//! A namespace of its own for each test, on whichever cluster its client talks to.

use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

/// Namespaces this process has created: tests in one binary run at the same time, and those with
/// the same prefix still need names of their own.
static CREATED: AtomicU32 = AtomicU32::new(0);

/// A fresh namespace for one test, deleted when the guard drops.
pub struct TestNamespace {
    pub name: String,
    client: kube::Client,
}

impl TestNamespace {
    /// Named `<prefix>-` and eight hex digits (the Helm test names its release after them): the
    /// clock's nanoseconds, their low byte replaced by a count that keeps the process's first 256
    /// namespaces apart.
    pub async fn new(client: &kube::Client, prefix: &str) -> TestNamespace {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let count = CREATED.fetch_add(1, Ordering::Relaxed);
        let suffix = (nanos & !0xff) | (count & 0xff);
        let name = format!("{prefix}-{suffix:08x}");
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace is created");
        TestNamespace {
            name,
            client: client.clone(),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        // Best effort: the whole test bed is thrown away after the run anyway.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = Api::<Namespace>::all(client)
                    .delete(&name, &DeleteParams::default())
                    .await;
            });
        }
    }
}
