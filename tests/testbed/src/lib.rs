//! Test bed for usersync: a deterministic directory fixture, its LDIF for Samba AD, OpenLDAP and
//! 389-DS, and the addresses of the real servers that `tests/env/testbed.sh` started.

pub mod env;
pub mod fixture;
pub mod ldif;
