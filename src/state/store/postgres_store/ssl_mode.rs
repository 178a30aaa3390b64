//! `sslmode` as libpq reads it. The driver knows only `disable`, `prefer` and `require`, and
//! refuses libpq's verifying modes as an invalid connection string; here the URL's `sslmode`
//! is taken out and given libpq's meaning:
//!
//! | sslmode | TLS | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | never | - |
//! | `prefer` (the default, as in libpq) | when the server offers it | not checked |
//! | `require` | always | not checked; chained to `sslrootcert` when the URL names one (libpq's rule) |
//! | `verify-ca` | always | chained to `sslrootcert` (or the system's CAs) |
//! | `verify-full` | always | chained as `verify-ca`, and naming the host |

use super::tls::ChainOnly;
use crate::base::tls_roots::UncheckedCertificate as Unchecked;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::ClientConfig;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when offered, unverified.
    #[default]
    Prefer,
    /// TLS, unverified (verify-ca with `sslrootcert`).
    Require,
    /// TLS, the certificate chained to a trusted CA.
    VerifyCa,
    /// TLS, chained and naming the host.
    VerifyFull,
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "sslmode=disable",
            SslMode::Prefer => "sslmode=prefer",
            SslMode::Require => "sslmode=require",
            SslMode::VerifyCa => "sslmode=verify-ca",
            SslMode::VerifyFull => "sslmode=verify-full",
        })
    }
}

impl SslMode {
    /// The mode named `text`, or what is wrong with it.
    pub fn parse(text: &str) -> Result<SslMode, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other}: arclist knows disable, prefer, require, verify-ca and verify-full"
                ));
            }
        })
    }

    /// Whether the server's certificate is checked (with `root`, `sslrootcert`'s file).
    pub fn verifies(self, root: Option<&Path>) -> bool {
        match self {
            SslMode::Disable | SslMode::Prefer => false,
            SslMode::Require => root.is_some(),
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        }
    }

    /// The driver's mode: whether TLS is tried, and whether it is a must.
    pub fn driver(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }

    /// The TLS client for this mode and `root` (`sslrootcert`: a file, or `system` for the
    /// system's CAs), or none for `disable`.
    pub fn client(self, root: Option<&Path>) -> Result<Option<Arc<ClientConfig>>, String> {
        let roots = root.filter(|r| *r != Path::new("system"));
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let unchecked = |provider| -> Result<_, String> {
            Ok(Some(Arc::new(
                ClientConfig::builder_with_provider(Arc::clone(&provider))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS: {e}"))?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                    .with_no_client_auth(),
            )))
        };
        match (self, root.is_some()) {
            (SslMode::Disable, _) => Ok(None),
            (SslMode::Prefer, _) | (SslMode::Require, false) => unchecked(provider),
            (SslMode::VerifyFull, _) => Ok(Some(
                crate::base::tls_roots::verified(roots).map_err(String::from)?,
            )),
            (SslMode::Require | SslMode::VerifyCa, _) => {
                let roots = crate::base::tls_roots::roots(roots).map_err(String::from)?;
                let chain = ChainOnly::new(roots, Arc::clone(&provider))?;
                Ok(Some(Arc::new(
                    ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .map_err(|e| format!("TLS: {e}"))?
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(chain))
                        .with_no_client_auth(),
                )))
            }
        }
    }
}

/// Takes `sslmode=` out of `url` (the driver is told its own mode), with libpq's default
/// `prefer` when the URL says nothing.
pub fn take_ssl_mode(url: &str) -> Result<(String, SslMode), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), SslMode::default()));
    };
    let mut mode = SslMode::default();
    let mut kept = Vec::new();
    for kv in query.split('&') {
        match kv.strip_prefix("sslmode=") {
            Some(value) => mode = SslMode::parse(value)?,
            None => kept.push(kv),
        }
    }
    Ok(match kept.is_empty() {
        true => (base.to_string(), mode),
        false => (format!("{base}?{}", kept.join("&")), mode),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_are_read_and_others_named() {
        let (url, mode) = take_ssl_mode("postgresql://a@h/db?sslmode=verify-full&x=1").expect("ok");
        assert_eq!(
            (url.as_str(), mode),
            ("postgresql://a@h/db?x=1", SslMode::VerifyFull)
        );
        let (url, mode) = take_ssl_mode("postgresql://a@h/db").expect("ok");
        assert_eq!(
            (url.as_str(), mode),
            ("postgresql://a@h/db", SslMode::Prefer)
        );
        assert_eq!(
            take_ssl_mode("postgresql://h/d?sslmode=verify-ca")
                .expect("ok")
                .1,
            SslMode::VerifyCa
        );
        let wrong = take_ssl_mode("postgresql://h/d?sslmode=allow").expect_err("allow");
        assert!(wrong.contains("sslmode=allow"), "{wrong}");
        assert!(SslMode::Require.verifies(Some(Path::new("/ca.pem"))));
        assert!(!SslMode::Require.verifies(None));
        assert!(!SslMode::Prefer.verifies(Some(Path::new("/ca.pem"))));
    }
}
