//! The rustls client configuration for a task: its CA bundle or the system roots, hostname
//! verification on, and an explicit, reported opt-out.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::error::DirectoryError;

/// What to trust.
#[derive(Clone, Debug, Default)]
pub enum Trust {
    /// The operating system's roots.
    #[default]
    SystemRoots,
    /// Only the certificates of this PEM bundle.
    CaBundle(Vec<u8>),
    /// Any certificate at all (`insecureSkipVerify`).
    SkipVerify,
}

pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, DirectoryError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| DirectoryError::InvalidSettings(format!("TLS set-up: {e}")))?;
    let config = match trust {
        Trust::SkipVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
        Trust::SystemRoots => builder
            .with_root_certificates(system_roots())
            .with_no_client_auth(),
        Trust::CaBundle(pem) => builder
            .with_root_certificates(bundle_roots(pem)?)
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: the handshake then reports an untrusted certificate.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

fn bundle_roots(pem: &[u8]) -> Result<RootCertStore, DirectoryError> {
    let invalid =
        |detail: String| DirectoryError::InvalidSettings(format!("the CA bundle {detail}"));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| invalid(format!("is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("holds an unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("holds no certificate".to_owned()));
    }
    Ok(roots)
}

/// Accepts any server certificate but still checks that the server holds its key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_an_error() {
        let err = client_config(&Trust::CaBundle(b"not a certificate".to_vec())).unwrap_err();
        assert_eq!(err.reason(), "InvalidSettings");
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
