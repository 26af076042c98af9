//! Addresses and credentials of the servers `tests/env/testbed.sh up` started, from its environment.
//! A test that needs a server fails with a clear message when the test bed is not up; it never skips.

use crate::fixture::FixtureSpec;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through `cargo xtask test`, which starts the real servers")
    })
}

/// The Samba AD domain controller.
pub struct Samba {
    pub url: String,
    pub ldaps_url: String,
    pub base_dn: String,
    pub domain: String,
    pub realm: String,
    pub admin_password: String,
    pub ca_file: String,
    /// The provisioned directory (private/sam.ldb lives below it).
    pub dir: String,
}

pub fn samba() -> Samba {
    Samba {
        url: var("USERSYNC_SAMBA_URL"),
        ldaps_url: var("USERSYNC_SAMBA_LDAPS_URL"),
        base_dn: var("USERSYNC_SAMBA_BASE_DN"),
        domain: var("USERSYNC_SAMBA_DOMAIN"),
        realm: var("USERSYNC_SAMBA_REALM"),
        admin_password: var("USERSYNC_SAMBA_ADMIN_PASSWORD"),
        ca_file: var("USERSYNC_SAMBA_CA"),
        dir: var("USERSYNC_SAMBA_DIR"),
    }
}

/// The OpenLDAP slapd.
pub struct Slapd {
    pub url: String,
    pub ldaps_url: String,
    pub base_dn: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub ca_file: String,
}

pub fn slapd() -> Slapd {
    Slapd {
        url: var("USERSYNC_SLAPD_URL"),
        ldaps_url: var("USERSYNC_SLAPD_LDAPS_URL"),
        base_dn: var("USERSYNC_SLAPD_BASE_DN"),
        admin_dn: var("USERSYNC_SLAPD_ADMIN_DN"),
        admin_password: var("USERSYNC_SLAPD_ADMIN_PASSWORD"),
        ca_file: var("USERSYNC_SLAPD_CA"),
    }
}

/// The 389 Directory Server, holding the [`Ds389::FIXTURE`] fixture under the OpenLDAP layout.
pub struct Ds389 {
    pub url: String,
    pub ldaps_url: String,
    pub base_dn: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub ca_file: String,
}

impl Ds389 {
    /// The fixture `cargo xtask up` loads into 389-DS: small, since 389-DS takes it online, through
    /// its memberOf plugin.
    pub const FIXTURE: FixtureSpec = FixtureSpec::SMALL;
}

pub fn ds389() -> Ds389 {
    Ds389 {
        url: var("USERSYNC_DS389_URL"),
        ldaps_url: var("USERSYNC_DS389_LDAPS_URL"),
        base_dn: var("USERSYNC_DS389_BASE_DN"),
        admin_dn: var("USERSYNC_DS389_ADMIN_DN"),
        admin_password: var("USERSYNC_DS389_ADMIN_PASSWORD"),
        ca_file: var("USERSYNC_DS389_CA"),
    }
}

/// The Kubernetes control plane.
pub struct Kube {
    pub kubeconfig: String,
    pub audit_log: String,
}

pub fn kube() -> Kube {
    Kube {
        kubeconfig: var("KUBECONFIG"),
        audit_log: var("USERSYNC_AUDIT_LOG"),
    }
}

/// The cluster with a real node (`tests/env/node.sh`), which runs the operator's image in pods.
pub struct Node {
    /// The node's state: containerd's socket is `containerd.sock` there.
    pub dir: String,
    pub kubeconfig: String,
    pub audit_log: String,
    /// The address of this host as pods see it, where the directories listen too.
    pub host_address: String,
    /// The operator's image as loaded into the node.
    pub image_repository: String,
    pub image_tag: String,
}

pub fn node() -> Node {
    Node {
        dir: var("USERSYNC_NODE_DIR"),
        kubeconfig: var("USERSYNC_NODE_KUBECONFIG"),
        audit_log: var("USERSYNC_NODE_AUDIT_LOG"),
        host_address: var("USERSYNC_NODE_HOST_ADDRESS"),
        image_repository: var("USERSYNC_NODE_IMAGE_REPOSITORY"),
        image_tag: var("USERSYNC_NODE_IMAGE_TAG"),
    }
}
