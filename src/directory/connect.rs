//! Opening and binding an LDAP connection: URLs tried in order, TLS as the task says, errors mapped to
//! the reasons of [`DirectoryError`].

use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use secrecy::{ExposeSecret, SecretString};
use tracing::debug;

use super::error::DirectoryError;
use super::tls::{Trust, client_config};
use crate::api::{BindMethod, TlsMode};

/// Bind identity. The password is a [`SecretString`]: it never appears in `Debug` output.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

/// How to reach and authenticate to the directory.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub urls: Vec<String>,
    pub tls_mode: TlsMode,
    pub trust: Trust,
    /// Limit for each LDAP operation, and for each connection attempt.
    pub timeout: Duration,
    /// `None`: anonymous bind.
    pub credentials: Option<Credentials>,
    /// How `credentials` bind.
    pub auth: BindMethod,
}

impl ServerSettings {
    /// Tells settings apart: a connection made with other settings (a rotated password, another
    /// CA bundle or URL) is not used for these.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.urls.hash(&mut hasher);
        format!("{:?} {:?} {:?}", self.tls_mode, self.auth, self.timeout).hash(&mut hasher);
        match &self.trust {
            Trust::SystemRoots => 0u8.hash(&mut hasher),
            Trust::CaBundle(pem) => (1u8, pem).hash(&mut hasher),
            Trust::SkipVerify => 2u8.hash(&mut hasher),
        }
        if let Some(c) = &self.credentials {
            (&c.username, c.password.expose_secret()).hash(&mut hasher);
        }
        hasher.finish()
    }
}

/// A bound connection and the URL of the server that answered.
pub struct Connection {
    pub ldap: Ldap,
    pub server: String,
    pub timeout: Duration,
    /// Where the searches on this connection count what they receive, when someone watches.
    pub progress: Option<std::sync::Arc<super::progress::Progress>>,
}

impl Connection {
    /// Whether the server still answers on this connection (it may have closed it while it was
    /// idle): a read of the root DSE, given at most `within`.
    pub async fn answers(&mut self, within: Duration) -> bool {
        let search = self
            .ldap
            .search("", ldap3::Scope::Base, "(objectClass=*)", vec!["1.1"]);
        matches!(
            tokio::time::timeout(within, search).await,
            Ok(Ok(result)) if result.1.rc == 0
        )
    }

    /// Unbinds, giving a server that does not take the unbind at most `within`.
    pub async fn close(mut self, within: Duration) {
        let _ = tokio::time::timeout(within, self.ldap.unbind()).await;
    }
}

/// Normalises a bind name: `corp\administrator` becomes `CORP\administrator`; UPNs and DNs are kept
/// as they are, trimmed.
pub fn normalize_username(username: &str) -> String {
    let username = username.trim();
    match username.split_once('\\') {
        Some((domain, user)) if !domain.contains('=') => {
            format!("{}\\{}", domain.to_uppercase(), user)
        }
        _ => username.to_owned(),
    }
}

/// Connects to the first URL that answers and binds. A server that cannot be reached, or whose TLS
/// handshake fails, makes way for the next; a rejected bind stops at once, since another server of the
/// same directory would reject it too.
pub async fn connect(settings: &ServerSettings) -> Result<Connection, DirectoryError> {
    if settings.urls.is_empty() {
        return Err(DirectoryError::InvalidSettings(
            "no server URL is given".to_owned(),
        ));
    }
    let config = client_config(&settings.trust)?;
    let mut failures = Vec::new();
    for url in &settings.urls {
        match connect_one(url, settings, config.clone()).await {
            Ok(connection) => {
                debug!(server = %connection.server, "bound to the directory");
                return Ok(connection);
            }
            Err(err) if is_per_server(&err) => failures.push(err),
            Err(err) => return Err(err),
        }
    }
    Err(combine(failures))
}

fn is_per_server(err: &DirectoryError) -> bool {
    matches!(
        err,
        DirectoryError::ServerUnreachable { .. }
            | DirectoryError::Timeout { .. }
            | DirectoryError::TlsHandshakeFailed { .. }
            | DirectoryError::CertificateUntrusted { .. }
    )
}

/// With one server, its error; with several, the last one's reason and every server's message.
fn combine(mut failures: Vec<DirectoryError>) -> DirectoryError {
    let messages: Vec<String> = failures.iter().map(ToString::to_string).collect();
    let last = failures.pop().expect("connect tries at least one URL");
    if messages.len() == 1 {
        return last;
    }
    let summary = messages.join("; ");
    match last {
        DirectoryError::ServerUnreachable { .. } => DirectoryError::ServerUnreachable {
            server: "every server".into(),
            detail: summary,
        },
        DirectoryError::TlsHandshakeFailed { .. } => DirectoryError::TlsHandshakeFailed {
            server: "every server".into(),
            detail: summary,
        },
        DirectoryError::CertificateUntrusted { .. } => DirectoryError::CertificateUntrusted {
            server: "every server".into(),
            detail: summary,
        },
        other => other,
    }
}

async fn connect_one(
    url: &str,
    settings: &ServerSettings,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<Connection, DirectoryError> {
    let server = url.to_owned();
    let starttls = match settings.tls_mode {
        TlsMode::Ldaps if !url.starts_with("ldaps://") => {
            return Err(DirectoryError::InvalidSettings(format!(
                "{url}: tls.mode LDAPS needs an ldaps:// URL"
            )));
        }
        TlsMode::StartTls | TlsMode::Plaintext if !url.starts_with("ldap://") => {
            return Err(DirectoryError::InvalidSettings(format!(
                "{url}: StartTLS and None need an ldap:// URL"
            )));
        }
        TlsMode::StartTls => true,
        TlsMode::Ldaps | TlsMode::Plaintext => false,
    };
    let conn_settings = LdapConnSettings::new()
        .set_conn_timeout(settings.timeout)
        .set_config(config)
        .set_starttls(starttls);
    let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, url)
        .await
        .map_err(|e| map_connect_error(&server, e, settings.timeout))?;
    ldap3::drive!(conn);
    ldap.with_timeout(settings.timeout);
    let (user, password) = match &settings.credentials {
        Some(c) => (
            normalize_username(&c.username),
            c.password.expose_secret().to_owned(),
        ),
        None => (String::new(), String::new()),
    };
    let bind = match (settings.auth, settings.credentials.is_some()) {
        (BindMethod::Ntlm, true) => {
            check_ntlm_username(&user)?;
            ldap.sasl_ntlm_bind(&user, &password).await
        }
        (BindMethod::Ntlm, false) => {
            return Err(DirectoryError::InvalidSettings(
                "auth NTLM needs credentials".to_owned(),
            ));
        }
        (BindMethod::Simple, _) => ldap.simple_bind(&user, &password).await,
    };
    let result = bind.map_err(|e| map_operation_error(&server, "bind", e, settings.timeout))?;
    match result.rc {
        0 => Ok(Connection {
            ldap,
            server,
            timeout: settings.timeout,
            progress: None,
        }),
        49 => Err(DirectoryError::InvalidCredentials {
            server,
            user: display_user(&user),
        }),
        8 | 13 => Err(DirectoryError::StrongAuthRequired {
            server,
            detail: result.text,
        }),
        50 => Err(DirectoryError::InsufficientAccess {
            server,
            detail: result.text,
        }),
        rc => Err(DirectoryError::Protocol {
            server,
            operation: "bind",
            detail: format!("result code {rc}: {}", result.text),
        }),
    }
}

/// NTLM names an account as DOMAIN\\user or user@realm; anything else (a DN) cannot bind that way.
fn check_ntlm_username(user: &str) -> Result<(), DirectoryError> {
    let valid = match user.split_once('\\') {
        Some((domain, name)) => !domain.is_empty() && !name.is_empty() && !name.contains('\\'),
        None => user
            .split_once('@')
            .is_some_and(|(name, realm)| !name.is_empty() && !realm.is_empty()),
    };
    if valid && !user.contains('=') {
        Ok(())
    } else {
        Err(DirectoryError::InvalidSettings(
            "auth NTLM needs the username as DOMAIN\\user or user@realm".to_owned(),
        ))
    }
}

fn display_user(user: &str) -> String {
    if user.is_empty() {
        "an anonymous bind".to_owned()
    } else {
        user.to_owned()
    }
}

/// Maps a failure to open the connection (TCP, TLS, StartTLS).
pub(crate) fn map_connect_error(server: &str, err: LdapError, timeout: Duration) -> DirectoryError {
    let server = server.to_owned();
    match err {
        LdapError::Timeout { .. } => DirectoryError::Timeout {
            server,
            operation: "connect",
            seconds: timeout.as_secs(),
        },
        LdapError::Io { source } => map_io_error(server, source),
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) | LdapError::DNSName { .. } => {
            DirectoryError::InvalidSettings(format!("{server}: {err}"))
        }
        LdapError::Rustls { source } => map_tls_error(server, &source),
        other => DirectoryError::TlsHandshakeFailed {
            server,
            detail: other.to_string(),
        },
    }
}

fn map_io_error(server: String, source: std::io::Error) -> DirectoryError {
    if let Some(tls) = source
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return map_tls_error(server, tls);
    }
    match source.kind() {
        std::io::ErrorKind::TimedOut => DirectoryError::Timeout {
            server,
            operation: "connect",
            seconds: 0,
        },
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            DirectoryError::TlsHandshakeFailed {
                server,
                detail: source.to_string(),
            }
        }
        _ => DirectoryError::ServerUnreachable {
            server,
            detail: source.to_string(),
        },
    }
}

fn map_tls_error(server: String, err: &rustls::Error) -> DirectoryError {
    match err {
        rustls::Error::InvalidCertificate(cert) => DirectoryError::CertificateUntrusted {
            server,
            detail: format!("{cert:?}"),
        },
        other => DirectoryError::TlsHandshakeFailed {
            server,
            detail: other.to_string(),
        },
    }
}

/// Maps a failure of an operation on an open connection.
pub(crate) fn map_operation_error(
    server: &str,
    operation: &'static str,
    err: LdapError,
    timeout: Duration,
) -> DirectoryError {
    let server = server.to_owned();
    match err {
        LdapError::Timeout { .. } => DirectoryError::Timeout {
            server,
            operation,
            seconds: timeout.as_secs(),
        },
        LdapError::Io { source } => map_io_error(server, source),
        other => DirectoryError::Protocol {
            server,
            operation,
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntlm_takes_domain_user_or_upn_only() {
        for good in ["CORP\\svc-sync", "svc-sync@corp.example.com"] {
            assert!(check_ntlm_username(good).is_ok(), "{good}");
        }
        for bad in [
            "CN=svc,DC=corp",
            "svc-sync",
            "\\svc",
            "CORP\\",
            "CORP\\a\\b",
            "@corp",
            "",
        ] {
            assert!(check_ntlm_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domain_part_is_upper_cased_only() {
        assert_eq!(
            normalize_username("corp\\administrator"),
            "CORP\\administrator"
        );
        assert_eq!(normalize_username("  Corp\\J.Doe "), "CORP\\J.Doe");
        assert_eq!(
            normalize_username("jdoe@corp.example.com"),
            "jdoe@corp.example.com"
        );
        assert_eq!(
            normalize_username("CN=J\\, Doe,DC=corp"),
            "CN=J\\, Doe,DC=corp",
            "a DN is left alone"
        );
    }

    #[test]
    fn password_stays_out_of_debug_output() {
        let creds = Credentials {
            username: "CORP\\x".into(),
            password: SecretString::from("hunter2-secret"),
        };
        assert!(!format!("{creds:?}").contains("hunter2-secret"));
    }
}
