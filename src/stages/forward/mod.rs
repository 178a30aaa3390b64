//! Forwarding aliases: mail for `alias@forwarding-domain` goes to outside mailboxes untouched,
//! with an ARC set recording what arclist saw and an SRS envelope sender, so SPF passes for
//! the forwarding domain and DMARC can still pass on the author's own DKIM signature.
//!
//! The way through: [`gate`] screens the message before `250` (DMARC p=reject failures,
//! size, loops), the spool keeps it, [`relay`] seals it once and queues it for every target,
//! and bounces to [`srs`] addresses go back to the original sender: only delivery reports and
//! auto-replies, within a budget ([`returns`]), sealed as forwarded mail is.

pub mod delivery_hook;
mod dkim2;
pub mod dsn;
pub mod gate;
pub mod relay;
pub mod returns;
pub mod srs;

use crate::auth::signing_key::SigningKey;
use crate::base::config::{Alias, ForwardConfig};
use crate::stages::outbound::Signer;
use srs::{Srs, SrsError, is_srs};
use std::collections::HashMap;
use std::sync::Arc;

/// One forwarding domain with its keys, secret and aliases loaded.
pub struct ForwardDomain {
    /// Its settings.
    pub config: ForwardConfig,
    /// Its SRS rewriter.
    pub srs: Srs,
    /// Seals forwarded copies (and DKIM-signs them with `dkim_sign`); signs what the domain
    /// writes itself (delivery status notifications) whatever `dkim_sign` says of forwarded
    /// copies: their DMARC must pass on the domain's own name.
    signer: Signer,
    /// Aliases from the store (`arclist forward add`), by local part; the file's come first.
    extra: HashMap<String, Alias>,
}

impl ForwardDomain {
    /// A message the domain wrote itself, with the domain's DKIM signature on top (unsigned,
    /// and logged, if signing fails).
    pub fn sign_own(&self, message: &[u8], now: u64) -> Vec<u8> {
        match self.signer.sign(message, now) {
            Ok(signed) => signed,
            Err(e) => {
                tracing::warn!(domain = %self.config.domain, error = %e, "cannot DKIM-sign; sent unsigned");
                message.to_vec()
            }
        }
    }

    /// The policy for `local`, from the file, the store, or the catch-all.
    pub fn alias(&self, local: &str) -> Option<Alias> {
        let local = local.to_ascii_lowercase();
        self.config
            .alias(&local)
            .or_else(|| self.extra.get(&local).cloned())
            .or_else(|| {
                (!self.config.catch_all.is_empty())
                    .then(|| self.config.with_defaults(self.config.catch_all.clone()))
            })
    }
}

/// Every forwarding domain, by domain and by SRS domain.
#[derive(Default)]
pub struct Forwarding {
    domains: HashMap<String, Arc<ForwardDomain>>,
    by_srs: HashMap<String, Arc<ForwardDomain>>,
}

/// Why a forwarding domain could not be loaded, naming the domain or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The domain's signing key does not load.
    #[error("forwarding {domain} ({}): {source}", file.display())]
    Key {
        /// The forwarding domain.
        domain: String,
        /// Its configuration file.
        file: std::path::PathBuf,
        /// Why.
        #[source]
        source: crate::auth::signing_key::KeyLoadError,
    },
    /// The SRS secret file could not be read.
    #[error("SRS secret file {}: {source}", path.display())]
    SecretFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The SRS secret file holds no secret.
    #[error("SRS secret file {} is empty", path.display())]
    NoSecret {
        /// The file.
        path: std::path::PathBuf,
    },
}

/// Reads a postsrsd-style secrets file: one secret per line, the first signs.
pub fn read_secrets(path: &std::path::Path) -> Result<Vec<Vec<u8>>, ForwardError> {
    let text = std::fs::read_to_string(path).map_err(|source| ForwardError::SecretFile {
        path: path.to_path_buf(),
        source,
    })?;
    let secrets: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if secrets.is_empty() {
        return Err(ForwardError::NoSecret {
            path: path.to_path_buf(),
        });
    }
    Ok(secrets)
}

impl Forwarding {
    /// Loads each domain's key and SRS secret, and adds the store's aliases (`alias@domain`
    /// to targets). Errors name the file at fault.
    pub fn load(
        configs: &[ForwardConfig],
        stored: Vec<(String, Vec<String>)>,
    ) -> Result<Self, ForwardError> {
        let mut f = Forwarding::default();
        for config in configs {
            let key = Arc::new(SigningKey::from_pem_file(&config.signing.key).map_err(
                |source| ForwardError::Key {
                    domain: config.domain.clone(),
                    file: config.file.clone(),
                    source,
                },
            )?);
            let secrets = read_secrets(&config.srs.secret_file)?;
            let signing = config.signing_domain();
            let extra = stored
                .iter()
                .filter_map(|(address, targets)| {
                    let (local, domain) = address.rsplit_once('@')?;
                    domain.eq_ignore_ascii_case(&config.domain).then(|| {
                        (
                            local.to_ascii_lowercase(),
                            config.with_defaults(targets.clone()),
                        )
                    })
                })
                .collect();
            let d = Arc::new(ForwardDomain {
                srs: Srs::new(secrets, config.srs_domain(), config.srs.max_age_days),
                signer: match config.dkim_sign {
                    true => Signer::new(key, signing, &config.signing.selector),
                    false => Signer::new(key, signing, &config.signing.selector).seal_only(),
                },
                config: config.clone(),
                extra,
            });
            f.domains.insert(config.domain.clone(), d.clone());
            f.by_srs.insert(config.srs_domain().to_ascii_lowercase(), d);
        }
        Ok(f)
    }

    /// True when no forwarding domain is configured.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The domain and alias policy for `address`, if it is an alias (or caught by a catch-all).
    pub fn alias(&self, address: &str) -> Option<(Arc<ForwardDomain>, Alias)> {
        let (local, domain) = address.rsplit_once('@')?;
        let d = self
            .domains
            .get(&domain.trim_end_matches('.').to_ascii_lowercase())?;
        if is_srs(local) {
            return None;
        }
        d.alias(local).map(|a| (d.clone(), a))
    }

    /// True when `domain` is one of our forwarding or SRS domains: mail to it comes back here.
    pub fn is_ours(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.domains.contains_key(&domain) || self.by_srs.contains_key(&domain)
    }

    /// The forwarding domain named `domain`.
    pub fn domain(&self, domain: &str) -> Option<&Arc<ForwardDomain>> {
        self.domains.get(&domain.to_ascii_lowercase())
    }

    /// The forwarding domain whose SRS addresses live at `address`'s domain.
    pub fn by_srs_address(&self, address: &str) -> Option<&Arc<ForwardDomain>> {
        let (_, domain) = address.rsplit_once('@')?;
        self.by_srs
            .get(&domain.trim_end_matches('.').to_ascii_lowercase())
    }

    /// For an SRS address at one of our SRS domains: where its bounce goes, or why it is
    /// refused. `None` when the address is not SRS-shaped or not at an SRS domain of ours.
    pub fn srs_return(&self, address: &str, now: u64) -> Option<Result<String, SrsError>> {
        let (local, _) = address.rsplit_once('@')?;
        let d = self.by_srs_address(address)?;
        is_srs(local).then(|| d.srs.reverse(address, now))
    }
}
