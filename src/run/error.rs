//! Errors of a run: each step has its own, and [`RunError`] says which step failed, with a
//! low-cardinality reason and whether a retry may help.

use super::api_error::ApiError;
use super::apply::WriteError;
use super::resolve::ResolveError;
use super::validate::InvalidSpec;
use crate::directory::error::DirectoryError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Validate(#[from] InvalidSpec),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Read(#[from] DirectoryError),
    #[error("{0}")]
    Observe(ApiError),
    #[error("{0}")]
    Apply(WriteError),
    /// A bug: the run panicked. Caught at the run's boundary, so only this task fails.
    #[error("internal error: {0}")]
    Internal(String),
    /// The run took longer than the task's `runTimeout` and was stopped where it was.
    #[error("the run did not finish within its runTimeout of {}s; what it wrote stays, and the next run continues from there", .0.as_secs())]
    TimedOut(std::time::Duration),
}

impl RunError {
    pub fn reason(&self) -> &'static str {
        match self {
            RunError::Validate(_) => "InvalidSpec",
            RunError::Resolve(e) => e.reason(),
            RunError::Read(e) => e.reason(),
            RunError::Apply(WriteError::Api(e)) if e.is_conflict() => "WriteConflict",
            RunError::Apply(WriteError::Fenced(_)) => "LeaseNotCurrent",
            RunError::Observe(_) | RunError::Apply(_) => "KubernetesAPIError",
            RunError::Internal(_) => "InternalError",
            RunError::TimedOut(_) => "RunTimeout",
        }
    }

    /// Transient errors retry with back-off; the others wait for a change of spec or Secret.
    pub fn is_transient(&self) -> bool {
        match self {
            RunError::Read(e) => e.is_transient(),
            RunError::Resolve(e) => e.is_transient(),
            RunError::Observe(_) | RunError::Apply(_) | RunError::TimedOut(_) => true,
            RunError::Validate(_) | RunError::Internal(_) => false,
        }
    }

    /// Whether the failure says anything about reaching the directory.
    pub fn directory_reachable(&self) -> Option<bool> {
        match self {
            RunError::Read(e) => Some(!matches!(
                e.reason(),
                "ServerUnreachable" | "TLSHandshakeFailed" | "CertificateUntrusted" | "Timeout"
            )),
            _ => None,
        }
    }
}
