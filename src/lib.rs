//! usersync: synchronizes Active Directory and LDAP users and groups into `UserGroup` resources.
//!
//! Layers, each in its own module:
//! - [`api`]: the Kubernetes API types (CRDs are generated from them).
//! - [`directory`]: LDAP access to Active Directory and other directories.
//! - [`planner`]: the pure sync planner (snapshot + policies + current objects → plan).
//! - [`cli`]: the command line.

pub mod api;
pub mod cli;
pub mod controller;
pub mod directory;
pub mod planner;
