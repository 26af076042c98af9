//! Errors of the controller layer, each with a low-cardinality reason and a retry class.

use crate::directory::error::DirectoryError;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    InvalidSpec(String),
    #[error("{kind} {name} (key {key}) is missing: {detail}")]
    MissingReference {
        kind: &'static str,
        name: String,
        key: String,
        detail: String,
    },
    #[error("Kubernetes API error while {step}: {source}")]
    Kube {
        step: &'static str,
        source: kube::Error,
    },
}

impl ControllerError {
    pub fn reason(&self) -> &'static str {
        match self {
            ControllerError::Directory(e) => e.reason(),
            ControllerError::InvalidSpec(_) => "InvalidSpec",
            ControllerError::MissingReference { .. } => "ReferenceNotFound",
            ControllerError::Kube { .. } => "KubernetesAPIError",
        }
    }

    /// Transient errors retry with back-off; the others wait for a change of spec or Secret.
    pub fn is_transient(&self) -> bool {
        match self {
            ControllerError::Directory(e) => e.is_transient(),
            ControllerError::Kube { .. } => true,
            ControllerError::InvalidSpec(_) | ControllerError::MissingReference { .. } => false,
        }
    }

    /// Whether the failure says anything about reaching the directory.
    pub fn directory_reachable(&self) -> Option<bool> {
        match self {
            ControllerError::Directory(e) => Some(!matches!(
                e.reason(),
                "ServerUnreachable" | "TLSHandshakeFailed" | "CertificateUntrusted" | "Timeout"
            )),
            _ => None,
        }
    }
}

pub fn kube(step: &'static str) -> impl FnOnce(kube::Error) -> ControllerError {
    move |source| ControllerError::Kube { step, source }
}
