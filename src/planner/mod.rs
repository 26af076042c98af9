//! The sync planner: directory snapshot + task policies + current UserGroups → the changes to make.
//! Pure and synchronous: no I/O, so every rule is tested without a cluster.

pub mod current;
pub mod desired;
pub mod in_place;
pub mod names;
pub mod order;
pub mod plan;
pub mod shard;
