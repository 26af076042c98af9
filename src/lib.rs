//! usersync: synchronizes Active Directory and LDAP users and groups into `UserGroup` resources.
//!
//! Layers, each in its own module:
//! - [`api`]: the Kubernetes API types (CRDs are generated from them).
//! - [`directory`]: LDAP access to Active Directory and other directories.
//! - [`planner`]: the pure sync planner (snapshot + policies + current objects → plan).
//! - [`run`]: one run of a task as named steps (validate, resolve, read, observe, plan, apply,
//!   report), shared by the operator and the command line.
//! - [`controller`]: the operator: watches tasks, decides when they run, writes what a run reports.
//! - [`cli`]: the command line.
//!
//! Dependencies point down this list's reverse: `cli` and `controller` use `run`, which uses
//! `planner` and `directory`, which use `api`.

pub mod api;
pub mod cli;
pub mod controller;
pub mod directory;
pub mod planner;
pub mod run;
