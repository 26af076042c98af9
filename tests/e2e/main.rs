//! Tests that need the apiserver too: the operator end to end against the directories, the Helm
//! chart, and the control plane itself.

/// Only the support modules these tests use: each binary declares its own, so nothing is unused.
#[path = "../support"]
mod support {
    pub mod audit;
    pub mod cli;
    pub mod command;
    pub mod connection;
    pub mod control_plane;
    pub mod gitops;
    pub mod hostile;
    pub mod kube;
    pub mod ldap;
    pub mod namespace;
    pub mod operator;
    pub mod proxy;
    pub mod wait;
}

mod big_group;
mod cli;
mod connection_owner;
mod connections;
mod cut_read;
mod deletion_policy;
mod events;
mod fenced_create;
mod gitops;
mod group_names;
mod helm;
mod hostile;
mod incremental;
mod invalid_spec;
mod kept_connection;
mod killed;
mod leader;
mod not_ours;
mod old_crd;
mod openldap;
mod plugin;
mod push;
mod push_retries;
mod refused_status;
mod repair;
mod run_timeout;
mod secrets_stay_secret;
mod shards;
mod shared_root;
mod shutdown;
mod sync;
mod testbed_kubernetes;
mod unreadable;
mod user_attributes;
mod write_rate;
