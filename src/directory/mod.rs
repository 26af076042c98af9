//! Directory access: everything that speaks LDAP, and nothing else.

pub mod dn;
pub mod error;
pub mod identity;
pub mod preset;
