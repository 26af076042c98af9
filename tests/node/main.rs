//! Tests on the cluster with a real node: the operator's image runs in pods that the kubelet
//! starts, stops and restarts, installed the ways people install it (Helm, the plain manifests).

/// Only the support modules these tests use: each binary declares its own, so nothing is unused.
#[path = "../support"]
mod support {
    pub mod command;
    pub mod namespace;
    pub mod node;
}

mod chart;
mod plain;
mod shutdown;
