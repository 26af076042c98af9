//! Errors of the directory layer. Each has a fixed, low-cardinality reason (for conditions, Events and
//! metric labels) and a message for people that names the server.

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot reach {server}: {detail}")]
    ServerUnreachable { server: String, detail: String },
    #[error("TLS handshake with {server} failed: {detail}")]
    TlsHandshakeFailed { server: String, detail: String },
    #[error("the certificate of {server} is not trusted: {detail}")]
    CertificateUntrusted { server: String, detail: String },
    #[error("{server} rejected the credentials of {user}")]
    InvalidCredentials { server: String, user: String },
    #[error(
        "{server} requires an encrypted connection for this bind (use LDAPS or StartTLS): {detail}"
    )]
    StrongAuthRequired { server: String, detail: String },
    #[error("the base DN {base_dn} does not exist on {server}")]
    BaseDnNotFound { server: String, base_dn: String },
    #[error("{server} refused access: {detail}")]
    InsufficientAccess { server: String, detail: String },
    #[error("{server} did not answer within {seconds}s during {operation}")]
    Timeout {
        server: String,
        operation: &'static str,
        seconds: u64,
    },
    #[error("invalid directory settings: {0}")]
    InvalidSettings(String),
    #[error("{server} returned data usersync cannot use: {detail}")]
    MalformedData { server: String, detail: String },
    #[error(
        "{server}: {entry} goes past the task's {limit} of {value}; the read stopped there and nothing was changed (raise {limit} for a larger directory)"
    )]
    LimitExceeded {
        server: String,
        limit: &'static str,
        value: usize,
        entry: String,
    },
    #[error("{server} failed during {operation}: {detail}")]
    Protocol {
        server: String,
        operation: &'static str,
        detail: String,
    },
}

impl DirectoryError {
    /// A stable CamelCase reason, safe as a condition reason and a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            DirectoryError::ServerUnreachable { .. } => "ServerUnreachable",
            DirectoryError::TlsHandshakeFailed { .. } => "TLSHandshakeFailed",
            DirectoryError::CertificateUntrusted { .. } => "CertificateUntrusted",
            DirectoryError::InvalidCredentials { .. } => "InvalidCredentials",
            DirectoryError::StrongAuthRequired { .. } => "StrongAuthRequired",
            DirectoryError::BaseDnNotFound { .. } => "BaseDNNotFound",
            DirectoryError::InsufficientAccess { .. } => "InsufficientAccess",
            DirectoryError::Timeout { .. } => "Timeout",
            DirectoryError::InvalidSettings(_) => "InvalidSettings",
            DirectoryError::MalformedData { .. } => "MalformedData",
            DirectoryError::Protocol { .. } => "ProtocolError",
            DirectoryError::LimitExceeded { .. } => "LimitExceeded",
        }
    }

    /// Transient errors are worth retrying with back-off; the others need a change of spec, Secret or
    /// directory first.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DirectoryError::ServerUnreachable { .. }
                | DirectoryError::Timeout { .. }
                | DirectoryError::Protocol { .. }
        )
    }
}
