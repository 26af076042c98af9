//! Helpers shared by the integration tests: clients for the real servers of the test bed.
#![allow(dead_code)] // each test binary uses its own subset

pub mod e2e;
pub mod logical;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};

/// A TLS client configuration that trusts only the PEM CA in `ca_file`.
pub fn tls_config(ca_file: &str) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("CA file is readable") {
        roots
            .add(cert.expect("CA file holds PEM certificates"))
            .expect("CA certificate is valid");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Opens an LDAP connection; `starttls` upgrades a plain `ldap://` one.
pub async fn ldap_connect(url: &str, ca_file: &str, starttls: bool) -> Ldap {
    let settings = LdapConnSettings::new()
        .set_config(tls_config(ca_file))
        .set_starttls(starttls)
        .set_conn_timeout(Duration::from_secs(10));
    let (conn, ldap) = LdapConnAsync::with_settings(settings, url)
        .await
        .expect("LDAP server answers");
    ldap3::drive!(conn);
    ldap
}

/// An admin client for the test bed's apiserver.
pub async fn kube_client() -> kube::Client {
    usersync_testbed::env::kube();
    kube::Client::try_default()
        .await
        .expect("KUBECONFIG from the test bed works")
}

/// Installs the CRDs from `crds/` by server-side apply and waits until they are served.
pub async fn install_crds(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/usersync.io.yaml");
    let text = std::fs::read_to_string(path).expect("crds/ is readable");
    let params = PatchParams::apply("usersync-tests").force();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let crd: CustomResourceDefinition =
            serde::Deserialize::deserialize(doc).expect("crds/ holds CRDs");
        let name = crd.metadata.name.clone().expect("CRD has a name");
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .expect("CRD applies");
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .expect("CRD is established within 30s")
            .expect("CRD watch works");
    }
}

/// A fresh namespace for one test, deleted when the guard drops.
pub struct TestNamespace {
    pub name: String,
    client: kube::Client,
}

impl TestNamespace {
    pub async fn new(client: &kube::Client, prefix: &str) -> TestNamespace {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!("{prefix}-{nanos:08x}");
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
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

/// Polls `check` every 200 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not true after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a command to completion; panics with its stderr unless it succeeds. Returns its stdout.
pub fn run_ok(command: &mut std::process::Command) -> String {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{shown} cannot run: {e}"));
    assert!(
        out.status.success(),
        "{shown}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Settings for a simple bind as `username` to `url`, trusting only the PEM CA in `ca_file`.
pub fn bind_settings(
    url: &str,
    tls_mode: usersync::api::TlsMode,
    ca_file: impl AsRef<std::path::Path>,
    username: &str,
    password: &str,
    timeout: Duration,
) -> usersync::directory::connect::ServerSettings {
    usersync::directory::connect::ServerSettings {
        auth: usersync::api::BindMethod::Simple,
        urls: vec![url.to_owned()],
        tls_mode,
        trust: usersync::directory::tls::Trust::CaBundle(
            std::fs::read(ca_file).expect("CA file is readable"),
        ),
        timeout,
        credentials: Some(usersync::directory::connect::Credentials {
            username: username.to_owned(),
            password: secrecy::SecretString::from(password),
        }),
    }
}
