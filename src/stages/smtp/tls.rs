//! STARTTLS configuration from PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the SMTP listener's TLS could not be set up, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or does not decode.
    #[error("TLS certificate {}: {source}", path.display())]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("TLS certificate {}: no certificate in the file", path.display())]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file could not be read or holds no key.
    #[error("TLS key {}: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// The TLS server could not be built.
    #[error("TLS: {0}")]
    Setup(#[source] tokio_rustls::rustls::Error),
    /// The key is not the certificate's.
    #[error("TLS certificate and key do not fit together: {0}")]
    Mismatch(#[source] tokio_rustls::rustls::Error),
}

/// Builds a TLS acceptor from a certificate chain and key, naming the file at fault.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let bad_cert = |source| TlsError::Certificate {
        path: cert.to_path_buf(),
        source,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(bad_cert)?
        .collect::<Result<_, _>>()
        .map_err(bad_cert)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.to_path_buf(),
        source,
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Mismatch)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
