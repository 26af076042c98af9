//! Errors of the controller itself: what it fails to tell the apiserver about a run (a run's own
//! failures are reported on the task's status, see [`crate::run::RunError`]).

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
