//! Startup's one write: the secret files an operator asked arclist to make when missing.

use super::StartError;
use crate::auth::signing_key::SigningKey;
use crate::base::config::{ForwardConfig, SigningConfig, write_private};

/// Makes a forwarding domain's key and SRS secret when asked to and missing (mode 0600).
pub fn ensure_forward_files(f: &ForwardConfig) -> Result<(), StartError> {
    create_key_if_asked(&f.signing, f.signing_domain(), &f.domain)?;
    if !f.srs.secret_file.exists() && f.srs.create_secret {
        let mut raw = [0u8; 24];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| StartError::Randomness)?;
        use base64::Engine;
        let secret = base64::engine::general_purpose::STANDARD.encode(raw) + "\n";
        write_private(&f.srs.secret_file, &secret)?;
        tracing::warn!(domain = %f.domain, file = %f.srs.secret_file.display(), "created an SRS secret");
    }
    Ok(())
}

/// Makes the signing key of `owner` (a list or forwarding domain) when its file is missing
/// and `create_key` asks for it (mode 0600), and logs the record to publish. Loading it, and
/// saying what is wrong with it, is left to the list or forwarding runtime.
pub fn create_key_if_asked(
    signing: &SigningConfig,
    signing_domain: &str,
    owner: &str,
) -> Result<(), StartError> {
    if signing.key.exists() || !signing.create_key {
        return Ok(());
    }
    let (key, pem) = SigningKey::generate_rsa2048().map_err(|source| StartError::KeyGen {
        owner: owner.to_string(),
        source,
    })?;
    write_private(&signing.key, &pem)?;
    tracing::warn!(
        owner,
        key = %signing.key.display(),
        "created a signing key; publish {}._domainkey.{} IN TXT \"{}\"",
        signing.selector,
        signing_domain,
        key.dns_record().map_err(|reason| StartError::DnsRecord {
            owner: owner.to_string(),
            reason,
        })?
    );
    Ok(())
}
