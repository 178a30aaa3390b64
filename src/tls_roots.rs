//! Client TLS that checks the server's certificate: for a smarthost we hand credentials to,
//! and for a PostgreSQL store reached over the network.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The CA bundle Debian keeps.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A client configuration that trusts the CAs in `ca` (a PEM file), or the system bundle when
/// `ca` is none: the certificate must chain to one of them and name the host.
pub fn verified(ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let file = ca.unwrap_or(Path::new(SYSTEM_BUNDLE));
    let problem = |e: &dyn std::fmt::Display| format!("CA file {}: {e}", file.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| problem(&e))? {
        roots
            .add(cert.map_err(|e| problem(&e))?)
            .map_err(|e| problem(&e))?;
    }
    if roots.is_empty() {
        return Err(problem(&"holds no certificates"));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
