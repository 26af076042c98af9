//! The test bed's directories through plain ldap3: connections, and the entries tests add, change,
//! rename and delete in subtrees of their own.

use std::cell::Cell;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use usersync_testbed::env;

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

/// Which of the test bed's shared directories a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Samba,
    OpenLdap,
}

impl Server {
    /// Bound as the directory's administrator, over LDAPS.
    pub async fn admin(self) -> Ldap {
        let (url, ca) = (self.ldaps_url(), self.ca_file());
        let (user, password) = self.credentials();
        let mut ldap = ldap_connect(&url, &ca, false).await;
        ldap.simple_bind(&user, &password)
            .await
            .and_then(|r| r.success())
            .expect("admin bind");
        ldap
    }

    pub fn ldaps_url(self) -> String {
        match self {
            Server::Samba => env::samba().ldaps_url,
            Server::OpenLdap => env::slapd().ldaps_url,
        }
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(self) -> String {
        match self {
            Server::Samba => env::samba().ca_file,
            Server::OpenLdap => env::slapd().ca_file,
        }
    }

    /// The administrator's login (as a task's Secret gives it) and password.
    pub fn credentials(self) -> (String, String) {
        match self {
            Server::Samba => {
                let samba = env::samba();
                // Lower case on purpose: the operator normalises DOMAIN\user.
                (
                    format!("{}\\administrator", samba.domain.to_lowercase()),
                    samba.admin_password,
                )
            }
            Server::OpenLdap => {
                let slapd = env::slapd();
                (slapd.admin_dn, slapd.admin_password)
            }
        }
    }

    pub fn base_dn(self) -> String {
        match self {
            Server::Samba => env::samba().base_dn,
            Server::OpenLdap => env::slapd().base_dn,
        }
    }

    pub fn preset(self) -> &'static str {
        match self {
            Server::Samba => "ActiveDirectory",
            Server::OpenLdap => "OpenLDAP",
        }
    }

    /// The relative DN of a group named `name`.
    pub fn group_rdn(self, name: &str) -> String {
        match self {
            Server::Samba => format!("CN={name}"),
            Server::OpenLdap => format!("cn={name}"),
        }
    }

    /// The DN of a group named `name` directly under `base`.
    pub fn group_dn(self, base: &str, name: &str) -> String {
        format!("{},{base}", self.group_rdn(name))
    }

    /// The relative DN of a user named `name`.
    pub fn user_rdn(self, name: &str) -> String {
        match self {
            Server::Samba => format!("CN={name}"),
            Server::OpenLdap => format!("uid={name}"),
        }
    }

    pub fn user_dn(self, base: &str, name: &str) -> String {
        format!("{},{base}", self.user_rdn(name))
    }

    /// Adds the group `name` below `parent` with these member DNs; returns its DN.
    pub async fn add_group(
        self,
        ldap: &mut Ldap,
        parent: &str,
        name: &str,
        members: &[&str],
    ) -> String {
        let dn = self.group_dn(parent, name);
        let class = match self {
            Server::Samba => "group",
            Server::OpenLdap => "groupOfNames",
        };
        add(
            ldap,
            &dn,
            vec![
                ("objectClass", vec![class]),
                ("cn", vec![name]),
                ("member", members.to_vec()),
            ],
        )
        .await;
        dn
    }

    /// Adds the user `name` (its RDN value and display name) below `parent`; `account` is its
    /// sAMAccountName on Samba (unique in the whole domain), while OpenLDAP's login is the uid, `name`.
    pub async fn add_user(
        self,
        ldap: &mut Ldap,
        parent: &str,
        name: &str,
        account: &str,
    ) -> String {
        let dn = self.user_dn(parent, name);
        let attrs = match self {
            Server::Samba => vec![
                ("objectClass", vec!["user"]),
                ("sAMAccountName", vec![account]),
                ("displayName", vec![name]),
                ("userAccountControl", vec!["544"]),
            ],
            Server::OpenLdap => vec![
                ("objectClass", vec!["inetOrgPerson"]),
                ("uid", vec![name]),
                ("cn", vec![name]),
                ("sn", vec![name]),
                ("displayName", vec![name]),
            ],
        };
        add(ldap, &dn, attrs).await;
        dn
    }
}

/// The edits below hold this for reading; [`quiet_directories`] holds it for writing.
static EDITS: RwLock<()> = RwLock::const_new(());

thread_local! {
    /// Set on the thread of the test that keeps the directories quiet, so that its own edits go
    /// ahead: each test runs on a thread of its own, in a current-thread runtime.
    static KEEPS_QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Until dropped, edits other tests make through this module wait. For tests that count what a
/// change feed returns while the other tests of their binary run at the same time: Samba's feed
/// names every object changed anywhere in the domain, and a burst of changes anywhere in slapd
/// overflows its session log, which turns the next answer into a present list.
pub async fn quiet_directories() -> Quiet {
    let guard = EDITS.write().await;
    KEEPS_QUIET.set(true);
    Quiet { _guard: guard }
}

/// The directories kept quiet; see [`quiet_directories`].
pub struct Quiet {
    _guard: RwLockWriteGuard<'static, ()>,
}

impl Drop for Quiet {
    fn drop(&mut self) {
        KEEPS_QUIET.set(false);
    }
}

/// Waits while another test keeps the directories quiet; held for the length of one edit.
async fn edit_allowed() -> Option<RwLockReadGuard<'static, ()>> {
    if KEEPS_QUIET.get() {
        None
    } else {
        Some(EDITS.read().await)
    }
}

pub async fn add(ldap: &mut Ldap, dn: &str, attrs: Vec<(&str, Vec<&str>)>) {
    let _edit = edit_allowed().await;
    let attrs = attrs
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect::<HashSet<_>>()))
        .collect();
    ldap.add(dn, attrs)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

/// OU=<name> with users alice and bob, and groups Devs (alice, bob) and Ops (bob).
pub async fn subtree_on(server: Server, ldap: &mut Ldap, name: &str) -> String {
    let base = add_ou(ldap, server.base_dn().as_str(), name).await;
    for user in ["alice", "bob"] {
        server
            .add_user(ldap, &base, user, &format!("{name}-{user}"))
            .await;
    }
    let alice = server.user_dn(&base, "alice");
    let bob = server.user_dn(&base, "bob");
    server.add_group(ldap, &base, "Devs", &[&alice, &bob]).await;
    server.add_group(ldap, &base, "Ops", &[&bob]).await;
    base
}

/// Adds the OU `name` below `parent`; returns its DN.
pub async fn add_ou(ldap: &mut Ldap, parent: &str, name: &str) -> String {
    let dn = format!("ou={name},{parent}");
    add(
        ldap,
        &dn,
        vec![
            ("objectClass", vec!["organizationalUnit"]),
            ("ou", vec![name]),
        ],
    )
    .await;
    dn
}

pub async fn modify<S: AsRef<[u8]> + Eq + Hash>(
    ldap: &mut Ldap,
    dn: &str,
    mods: Vec<ldap3::Mod<S>>,
) {
    let _edit = edit_allowed().await;
    ldap.modify(dn, mods)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("modify {dn}: {e}"));
}

/// Renames `dn` to `rdn`, below `new_parent` when given.
pub async fn rename(ldap: &mut Ldap, dn: &str, rdn: &str, new_parent: Option<&str>) {
    let _edit = edit_allowed().await;
    ldap.modifydn(dn, rdn, true, new_parent)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("rename {dn}: {e}"));
}

pub async fn delete(ldap: &mut Ldap, dn: &str) {
    let _edit = edit_allowed().await;
    ldap.delete(dn)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("delete {dn}: {e}"));
}
