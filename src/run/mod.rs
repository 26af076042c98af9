//! One run of a task, as named steps in the order they happen. The operator (`controller`) and every
//! CLI command call these same steps; each has its own error type, and [`RunError`] says which step
//! failed.
//!
//! 1. [`trigger`]: whether the task runs now, and why (the operator only).
//! 2. [`validate`]: the spec alone into checked settings, before any I/O.
//! 3. [`resolve`]: the Secrets and ConfigMaps the task references, into credentials and a CA bundle.
//! 4. [`read`]: the directory, into a snapshot.
//! 5. [`observe`]: the task's UserGroups as they are in the cluster.
//! 6. [`plan`]: what to change (pure).
//! 7. [`apply`]: the writes, by server-side apply.
//! 8. [`report`]: the new status, the Event and the next look at the task (pure).
//!
//! Shared by the steps: [`schedule`] (timed runs), [`conditions`] (kstatus conditions),
//! [`user_pool`] (one record per directory user across runs), [`fence`] (writes only under a
//! current lease), [`cpu`] (what a step cost in CPU).

mod api_error;
pub mod apply;
pub mod check;
pub mod conditions;
pub mod cpu;
mod error;
pub mod fence;
pub mod observe;
pub mod plan;
pub mod read;
pub mod report;
pub mod resolve;
pub mod schedule;
pub mod trigger;
pub mod user_pool;
pub mod validate;

pub use api_error::ApiError;
pub use error::RunError;
