//! A failed Kubernetes API request, as the steps that talk to the apiserver report it.

/// A Kubernetes API request that failed, and what the step was doing.
#[derive(Debug, thiserror::Error)]
#[error("Kubernetes API error while {step}: {source}")]
pub struct ApiError {
    pub step: &'static str,
    pub source: kube::Error,
}

impl ApiError {
    /// For `map_err`: the request failed while doing `step`.
    pub fn while_(step: &'static str) -> impl FnOnce(kube::Error) -> ApiError {
        move |source| ApiError { step, source }
    }

    /// The object was not as the plan saw it (changed, replaced, or created since): a write fenced
    /// by preconditions lost, and the next run plans from what is there now.
    pub fn is_conflict(&self) -> bool {
        matches!(&self.source, kube::Error::Api(status) if status.code == 409)
    }
}
