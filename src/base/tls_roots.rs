//! Client TLS that checks the server's certificate: for a smarthost we hand credentials to,
//! and for a PostgreSQL store reached over the network; and the one verifier that does not
//! check it, for opportunistic TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{ServerName, UnixTime};
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, Error as RustlsError, RootCertStore, SignatureScheme,
};

/// The CA bundle Debian keeps.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a verifying TLS client could not be set up, naming the CA file.
#[derive(Debug, thiserror::Error)]
pub enum TlsRootsError {
    /// The CA file could not be read or holds a PEM block that does not decode.
    #[error("CA file {}: {source}", path.display())]
    Read {
        /// The CA file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// A certificate in the CA file is not one rustls accepts as a root.
    #[error("CA file {}: {source}", path.display())]
    Certificate {
        /// The CA file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    /// The CA file holds no certificate at all.
    #[error("CA file {}: holds no certificates", path.display())]
    Empty {
        /// The CA file.
        path: PathBuf,
    },
    /// The TLS client could not be built.
    #[error("TLS: {0}")]
    Setup(#[source] tokio_rustls::rustls::Error),
}

// The PostgreSQL store keeps driver faults as text (its `Fault::other` takes `Into<String>`).
impl From<TlsRootsError> for String {
    fn from(e: TlsRootsError) -> String {
        e.to_string()
    }
}

/// A client configuration that trusts the CAs in `ca` (a PEM file), or the system bundle when
/// `ca` is none: the certificate must chain to one of them and name the host.
pub fn verified(ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsRootsError> {
    let roots = roots(ca)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsRootsError::Setup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The CAs in `ca` (a PEM file), or in the system bundle when `ca` is none; at least one.
pub fn roots(ca: Option<&Path>) -> Result<RootCertStore, TlsRootsError> {
    let file = ca.unwrap_or(Path::new(SYSTEM_BUNDLE));
    let path = || file.to_path_buf();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(file).map_err(|source| TlsRootsError::Read {
        path: path(),
        source,
    })?;
    for cert in certs {
        let cert = cert.map_err(|source| TlsRootsError::Read {
            path: path(),
            source,
        })?;
        roots
            .add(cert)
            .map_err(|source| TlsRootsError::Certificate {
                path: path(),
                source,
            })?;
    }
    if roots.is_empty() {
        return Err(TlsRootsError::Empty { path: path() });
    }
    Ok(roots)
}

/// A certificate verifier that accepts any certificate but still checks the handshake's
/// signatures, so the session is encrypted to whoever holds the certificate's key:
/// opportunistic STARTTLS for delivery (RFC 7435), and libpq's `prefer` and `require`
/// (without a CA file) for the database.
#[derive(Debug)]
pub struct UncheckedCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for UncheckedCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls13_signature(
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
