//! Errors of the controller itself: what it fails to tell the apiserver about a run (a run's own
//! failures are reported on the task's status, see [`crate::run::RunError`]), and why the operator
//! stopped early.

use crate::run::ApiError;
use crate::run::fence::Fenced;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Fenced(#[from] Fenced),
}

impl ControllerError {
    pub fn reason(&self) -> &'static str {
        match self {
            ControllerError::Api(_) => "KubernetesAPIError",
            ControllerError::Fenced(_) => "LeaseNotCurrent",
        }
    }
}

/// Why the operator stopped other than when asked to: `usersync run` exits non-zero with it, so
/// that the pod shows an error and is restarted.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("cannot listen for SIGTERM: {0}")]
    Signals(String),
    #[error("leader election failed: {0}")]
    Election(String),
    #[error("lost the leader lease")]
    LeaseLost,
}
