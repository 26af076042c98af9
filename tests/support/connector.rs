//! Settings for the operator's own connector (`usersync::directory::connect`), as a task's server
//! section would give them.

use std::time::Duration;

/// Settings for a simple bind as `username` to `url`, trusting only the PEM CA in `ca_file`.
pub fn bind_settings(
    url: &str,
    tls_mode: usersync::api::TlsMode,
    ca_file: impl AsRef<std::path::Path>,
    username: &str,
    password: &str,
    timeout: Duration,
) -> usersync::directory::connect::ServerSettings {
    usersync::directory::connect::ServerSettings {
        auth: usersync::api::BindMethod::Simple,
        urls: vec![url.to_owned()],
        tls_mode,
        trust: usersync::directory::tls::Trust::CaBundle(
            std::fs::read(ca_file).expect("CA file is readable"),
        ),
        timeout,
        credentials: Some(usersync::directory::connect::Credentials {
            username: username.to_owned(),
            password: secrecy::SecretString::from(password),
        }),
    }
}
