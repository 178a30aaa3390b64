//! TLS for delivery, two ways.
//!
//! Opportunistic (RFC 7435), for direct delivery: encrypt whenever the receiver offers
//! STARTTLS, without requiring its certificate to match (most MX certificates would not, and
//! refusing would only push the mail back to plain text). The handshake signature is still
//! checked, so the session is encrypted to whoever holds the certificate's key.
//!
//! Verified, for a smarthost we hand credentials to: the certificate must chain to a trusted CA
//! and name the smarthost, or nothing is sent.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;

/// A connector for opportunistic STARTTLS.
pub fn opportunistic() -> Result<TlsConnector, super::DeliveryError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(super::DeliveryError::TlsSetup)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::base::tls_roots::UncheckedCertificate(
            provider,
        )))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A connector that checks the server's certificate against the CAs in `ca` (a PEM file), or
/// the system bundle when `ca` is none.
pub fn verified(ca: Option<&Path>) -> Result<TlsConnector, crate::base::tls_roots::TlsRootsError> {
    crate::base::tls_roots::verified(ca).map(TlsConnector::from)
}
