//! Directory access: everything that speaks LDAP, and nothing else.

pub mod dn;
pub mod identity;
