//! Private keys for DKIM and ARC signing: loading PEM files, generating keys, signing.

use super::key_record::SigAlg;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;

/// A private key that can sign DKIM and ARC headers.
pub struct SigningKey {
    inner: Inner,
}

enum Inner {
    Rsa(RsaKeyPair),
    /// 1024- to 2047-bit RSA keys, which aws-lc-rs's safe API refuses to sign with but RFC 8301
    /// still allows; the open ARC test suite signs with one.
    LegacyRsa(super::legacy_rsa::LegacyRsaKey),
    Ed25519(Ed25519KeyPair),
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyLoadError(pub String);

impl SigningKey {
    /// Reads a PEM file (`RSA PRIVATE KEY` or `PRIVATE KEY`), naming the file in any error.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyLoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyLoadError(format!("cannot read key file {}: {e}", path.display())))?;
        Self::from_pem(&text)
            .map_err(|e| KeyLoadError(format!("key file {}: {}", path.display(), e.0)))
    }

    /// Parses PEM text holding an RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8) private key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyLoadError> {
        let (label, der) =
            pem_decode(pem).ok_or_else(|| KeyLoadError("no PEM block found".into()))?;
        match label.as_str() {
            "RSA PRIVATE KEY" => match RsaKeyPair::from_der(&der) {
                Ok(k) => Ok(SigningKey {
                    inner: Inner::Rsa(k),
                }),
                Err(_) => super::legacy_rsa::LegacyRsaKey::from_pkcs1(&der)
                    .map(|k| SigningKey {
                        inner: Inner::LegacyRsa(k),
                    })
                    .ok_or_else(|| KeyLoadError("not a usable RSA private key".into())),
            },
            "PRIVATE KEY" => {
                if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                    return Ok(SigningKey {
                        inner: Inner::Ed25519(k),
                    });
                }
                match RsaKeyPair::from_pkcs8(&der) {
                    Ok(k) => Ok(SigningKey {
                        inner: Inner::Rsa(k),
                    }),
                    Err(_) => super::legacy_rsa::LegacyRsaKey::from_pkcs8(&der)
                        .map(|k| SigningKey {
                            inner: Inner::LegacyRsa(k),
                        })
                        .ok_or_else(|| {
                            KeyLoadError("not a usable RSA or Ed25519 private key".into())
                        }),
                }
            }
            other => Err(KeyLoadError(format!("unsupported PEM block {other:?}"))),
        }
    }

    /// A new RSA-2048 key.
    pub fn generate_rsa2048() -> Result<(Self, String), KeyLoadError> {
        let key = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| KeyLoadError("RSA key generation failed".into()))?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
            .map_err(|_| KeyLoadError("cannot encode RSA key".into()))?;
        let pem = pem_encode("PRIVATE KEY", der.as_ref());
        Ok((
            SigningKey {
                inner: Inner::Rsa(key),
            },
            pem,
        ))
    }

    /// A new Ed25519 key.
    pub fn generate_ed25519() -> Result<(Self, String), KeyLoadError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| KeyLoadError("Ed25519 key generation failed".into()))?;
        let pem = pem_encode("PRIVATE KEY", doc.as_ref());
        let key = Ed25519KeyPair::from_pkcs8(doc.as_ref())
            .map_err(|_| KeyLoadError("cannot reload Ed25519 key".into()))?;
        Ok((
            SigningKey {
                inner: Inner::Ed25519(key),
            },
            pem,
        ))
    }

    /// The `a=` algorithm this key signs with.
    pub fn algorithm(&self) -> SigAlg {
        match self.inner {
            Inner::Rsa(_) | Inner::LegacyRsa(_) => SigAlg::RsaSha256,
            Inner::Ed25519(_) => SigAlg::Ed25519Sha256,
        }
    }

    /// Signs `data` (canonicalized headers) the way `a=` requires.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        match &self.inner {
            Inner::Rsa(key) => {
                let mut sig = vec![0u8; key.public_modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    data,
                    &mut sig,
                )
                .map_err(|_| "RSA signing failed".to_string())?;
                Ok(sig)
            }
            Inner::LegacyRsa(key) => key
                .sign_sha256(data)
                .ok_or_else(|| "RSA signing failed".to_string()),
            Inner::Ed25519(key) => {
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
                Ok(key.sign(digest.as_ref()).as_ref().to_vec())
            }
        }
    }

    /// The DNS TXT record value that publishes this key's public half.
    pub fn dns_record(&self) -> Result<String, String> {
        let (k, p) = match &self.inner {
            Inner::Rsa(key) => {
                let der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(key.public_key())
                    .map_err(|_| "cannot encode public key".to_string())?;
                ("rsa", STANDARD.encode(der.as_ref()))
            }
            Inner::LegacyRsa(key) => (
                "rsa",
                STANDARD.encode(key.public_spki().ok_or("cannot encode public key")?),
            ),
            Inner::Ed25519(key) => ("ed25519", STANDARD.encode(key.public_key().as_ref())),
        };
        Ok(format!("v=DKIM1; k={k}; p={p}"))
    }
}

/// Extracts the first PEM block: (label, DER bytes).
pub fn pem_decode(pem: &str) -> Option<(String, Vec<u8>)> {
    let begin = pem.find("-----BEGIN ")?;
    let after = &pem[begin + 11..];
    let label_end = after.find("-----")?;
    let label = after[..label_end].to_string();
    let body_start = &after[label_end + 5..];
    let end = body_start.find(&format!("-----END {label}-----"))?;
    let b64: String = body_start[..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some((label, STANDARD.decode(b64).ok()?))
}

/// Wraps DER bytes in a PEM block with 64-column lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
