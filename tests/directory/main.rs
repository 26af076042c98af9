//! Tests that need the test bed's directories only (Samba AD DC, OpenLDAP, 389-DS), no apiserver:
//! connecting, reading, change feeds, the CLI's `preview` and `browse`, and the servers themselves.

/// Only the support modules these tests use: each binary declares its own, so nothing is unused.
#[path = "../support"]
mod support {
    pub mod connector;
    pub mod ldap;
    pub mod logical;
}

mod cli;
mod connect;
mod ds389;
mod incremental;
mod partial_read;
mod push;
mod read;
mod testbed_openldap;
mod testbed_samba;
