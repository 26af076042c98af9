//! Connecting and binding to the real Samba AD DC and OpenLDAP: TLS modes, trust, failover and the
//! error reason of each way it can go wrong.

use std::time::Duration;

use secrecy::SecretString;
use usersync::api::{BindMethod, TlsMode};
use usersync::directory::connect::{Credentials, ServerSettings, connect};
use usersync::directory::tls::Trust;
use usersync_testbed::env;

use crate::support::connector::bind_settings;

fn ca(path: &str) -> Trust {
    Trust::CaBundle(std::fs::read(path).expect("CA file is readable"))
}

fn samba_settings(username: &str, password: &str) -> ServerSettings {
    let samba = env::samba();
    bind_settings(
        &samba.ldaps_url,
        TlsMode::Ldaps,
        &samba.ca_file,
        username,
        password,
        Duration::from_secs(10),
    )
}

fn admin() -> ServerSettings {
    let samba = env::samba();
    samba_settings(
        &format!("{}\\administrator", samba.domain.to_lowercase()),
        &samba.admin_password,
    )
}

async fn reason_of(settings: &ServerSettings) -> String {
    match connect(settings).await {
        Ok(c) => panic!("connected to {} but expected a failure", c.server),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e.reason().to_owned()
        }
    }
}

#[tokio::test]
async fn ldaps_and_starttls_bind_with_the_task_ca() {
    let samba = env::samba();
    let connection = connect(&admin())
        .await
        .expect("LDAPS bind as corp\\administrator");
    assert_eq!(connection.server, samba.ldaps_url);
    let starttls = ServerSettings {
        urls: vec![samba.url.clone()],
        tls_mode: TlsMode::StartTls,
        ..admin()
    };
    connect(&starttls).await.expect("StartTLS bind");
    let upn = samba_settings(
        &format!("Administrator@{}", samba.realm.to_lowercase()),
        &samba.admin_password,
    );
    connect(&upn).await.expect("UPN bind");
}

#[tokio::test]
async fn wrong_password_is_invalid_credentials_and_never_shown() {
    let samba = env::samba();
    let settings = samba_settings(
        &format!("{}\\Administrator", samba.domain),
        "Wrong-Passw0rd-42",
    );
    let err = connect(&settings)
        .await
        .err()
        .expect("wrong password fails");
    assert_eq!(err.reason(), "InvalidCredentials");
    assert!(!err.to_string().contains("Wrong-Passw0rd-42"), "{err}");
    assert!(
        err.to_string().contains(&samba.ldaps_url),
        "the message names the server: {err}"
    );
}

#[tokio::test]
async fn plain_bind_is_strong_auth_required() {
    let samba = env::samba();
    let settings = ServerSettings {
        urls: vec![samba.url.clone()],
        tls_mode: TlsMode::Plaintext,
        ..admin()
    };
    assert_eq!(reason_of(&settings).await, "StrongAuthRequired");
}

#[tokio::test]
async fn a_foreign_ca_is_certificate_untrusted_unless_verification_is_skipped() {
    let slapd = env::slapd();
    let foreign = ServerSettings {
        trust: ca(&slapd.ca_file),
        ..admin()
    };
    assert_eq!(reason_of(&foreign).await, "CertificateUntrusted");
    let system = ServerSettings {
        trust: Trust::SystemRoots,
        ..admin()
    };
    assert_eq!(reason_of(&system).await, "CertificateUntrusted");
    let skip = ServerSettings {
        trust: Trust::SkipVerify,
        ..admin()
    };
    connect(&skip)
        .await
        .expect("insecureSkipVerify accepts the certificate");
}

#[tokio::test]
async fn a_host_name_the_certificate_does_not_cover_is_untrusted() {
    // The test bed's certificate names 127.0.0.1, not localhost.
    let settings = ServerSettings {
        urls: vec!["ldaps://localhost:636".into()],
        ..admin()
    };
    assert_eq!(reason_of(&settings).await, "CertificateUntrusted");
}

#[tokio::test]
async fn an_unreachable_first_url_fails_over_to_the_second() {
    let samba = env::samba();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let dead_url = format!(
        "ldaps://127.0.0.1:{}",
        closed.local_addr().expect("addr").port()
    );
    drop(closed);
    let settings = ServerSettings {
        urls: vec![dead_url.clone(), samba.ldaps_url.clone()],
        ..admin()
    };
    let connection = connect(&settings).await.expect("the second URL answers");
    assert_eq!(connection.server, samba.ldaps_url);
    let only_dead = ServerSettings {
        urls: vec![dead_url],
        ..admin()
    };
    assert_eq!(reason_of(&only_dead).await, "ServerUnreachable");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    // A TCP peer that accepts and then stays silent, as a hung server does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let settings = ServerSettings {
        urls: vec![format!("ldaps://127.0.0.1:{port}")],
        timeout: Duration::from_secs(1),
        ..admin()
    };
    let started = std::time::Instant::now();
    assert_eq!(reason_of(&settings).await, "Timeout");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout bounds the wait"
    );
    silent.abort();
}

#[tokio::test]
async fn openldap_binds_as_a_dn_and_anonymously() {
    let slapd = env::slapd();
    let settings = ServerSettings {
        auth: usersync::api::BindMethod::Simple,
        urls: vec![slapd.ldaps_url.clone()],
        tls_mode: TlsMode::Ldaps,
        trust: ca(&slapd.ca_file),
        timeout: Duration::from_secs(10),
        credentials: Some(Credentials {
            username: slapd.admin_dn.clone(),
            password: SecretString::from(slapd.admin_password.clone()),
        }),
    };
    connect(&settings).await.expect("DN bind over LDAPS");
    let anonymous = ServerSettings {
        urls: vec![slapd.url.clone()],
        tls_mode: TlsMode::StartTls,
        credentials: None,
        ..settings
    };
    connect(&anonymous)
        .await
        .expect("anonymous bind over StartTLS");
}

#[tokio::test]
async fn ldaps_to_a_plain_ldap_port_is_a_tls_handshake_failure() {
    let slapd = env::slapd();
    let plain_port = slapd.url.rsplit(':').next().expect("the URL has a port");
    let settings = ServerSettings {
        auth: usersync::api::BindMethod::Simple,
        urls: vec![format!("ldaps://127.0.0.1:{plain_port}")],
        tls_mode: TlsMode::Ldaps,
        trust: ca(&slapd.ca_file),
        timeout: Duration::from_secs(5),
        credentials: None,
    };
    assert_eq!(reason_of(&settings).await, "TLSHandshakeFailed");
}

#[tokio::test]
async fn ntlm_binds_over_tls_and_reports_each_failure() {
    let samba = env::samba();
    let ntlm = |settings: ServerSettings| ServerSettings {
        auth: BindMethod::Ntlm,
        ..settings
    };
    let connection = connect(&ntlm(admin())).await.expect("NTLM over LDAPS");
    // The bind is real: the base DN is readable only when authenticated.
    let mut ldap = connection.ldap;
    let (entries, _) = ldap
        .search(
            &samba.base_dn,
            ldap3::Scope::Base,
            "(objectClass=*)",
            vec!["dn"],
        )
        .await
        .and_then(|r| r.success())
        .expect("search after the NTLM bind");
    assert_eq!(entries.len(), 1);
    let upn = samba_settings(
        &format!("Administrator@{}", samba.realm.to_lowercase()),
        &samba.admin_password,
    );
    connect(&ntlm(upn)).await.expect("NTLM with user@realm");
    let starttls = ServerSettings {
        urls: vec![samba.url.clone()],
        tls_mode: TlsMode::StartTls,
        ..ntlm(admin())
    };
    connect(&starttls).await.expect("NTLM over StartTLS");

    let wrong = ntlm(samba_settings(
        &format!("{}\\administrator", samba.domain),
        "Not-The-Passw0rd",
    ));
    assert_eq!(reason_of(&wrong).await, "InvalidCredentials");
    // Unsigned NTLM without TLS: Samba insists on signing or sealing.
    let plain = ServerSettings {
        urls: vec![samba.url.clone()],
        tls_mode: TlsMode::Plaintext,
        ..ntlm(admin())
    };
    assert_eq!(reason_of(&plain).await, "StrongAuthRequired");
    // A DN is no NTLM account name: refused before anything is sent.
    let dn = ntlm(samba_settings(
        &format!("CN=Administrator,CN=Users,{}", samba.base_dn),
        &samba.admin_password,
    ));
    assert_eq!(reason_of(&dn).await, "InvalidSettings");
}
