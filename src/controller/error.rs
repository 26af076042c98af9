//! Errors of the controller itself: what it fails to tell the apiserver about a run (a run's own
//! failures are reported on the task's status, see [`crate::run::RunError`]).

use crate::run::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ControllerError {
    pub fn reason(&self) -> &'static str {
        match self {
            ControllerError::Api(_) => "KubernetesAPIError",
        }
    }
}
