//! SPF (RFC 7208) for MAIL FROM and HELO, evaluated by mail-auth and reported in our types.

use super::dns::LiveConfig;
use super::dns::LiveResolver;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfResult};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// RFC 7208 results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfVerdict {
    /// Authorized.
    Pass,
    /// Explicitly not authorized.
    Fail,
    /// Probably not authorized.
    Softfail,
    /// No assertion.
    Neutral,
    /// No record.
    None,
    /// DNS failed; retry.
    Temperror,
    /// The record is broken.
    Permerror,
}

impl SpfVerdict {
    /// The RFC 8601 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfVerdict::Pass => "pass",
            SpfVerdict::Fail => "fail",
            SpfVerdict::Softfail => "softfail",
            SpfVerdict::Neutral => "neutral",
            SpfVerdict::None => "none",
            SpfVerdict::Temperror => "temperror",
            SpfVerdict::Permerror => "permerror",
        }
    }
}

impl From<SpfResult> for SpfVerdict {
    fn from(r: SpfResult) -> Self {
        match r {
            SpfResult::Pass => SpfVerdict::Pass,
            SpfResult::Fail => SpfVerdict::Fail,
            SpfResult::SoftFail => SpfVerdict::Softfail,
            SpfResult::Neutral => SpfVerdict::Neutral,
            SpfResult::TempError => SpfVerdict::Temperror,
            SpfResult::PermError => SpfVerdict::Permerror,
            SpfResult::None => SpfVerdict::None,
        }
    }
}

/// SPF results for one SMTP transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpfOutcome {
    /// The MAIL FROM identity's result (for a null sender, the HELO's, RFC 7208 §2.4).
    pub mail_from: SpfVerdict,
    /// The domain the MAIL FROM check used.
    pub mail_from_domain: String,
    /// The HELO identity's result.
    pub helo: SpfVerdict,
    /// The HELO name.
    pub helo_domain: String,
}

/// Evaluates SPF against the same nameservers as the rest of arclist.
#[derive(Clone)]
pub struct SpfEvaluator {
    inner: std::sync::Arc<MessageAuthenticator>,
    hostname: String,
}

impl SpfEvaluator {
    /// An evaluator asking the nameservers in `config`; `hostname` is ours (for `%{r}`).
    pub fn new(config: &LiveConfig, hostname: &str) -> Result<Self, String> {
        let (resolver_config, opts) = LiveResolver::configs(config)?;
        let inner = MessageAuthenticator::new(resolver_config, opts)
            .map_err(|e| format!("cannot build SPF resolver: {e}"))?;
        Ok(SpfEvaluator {
            inner: std::sync::Arc::new(inner),
            hostname: hostname.to_string(),
        })
    }

    /// Checks HELO and MAIL FROM for a client at `ip`. An empty `mail_from` is the null sender.
    pub async fn check(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfOutcome {
        let helo_out = self
            .inner
            .verify_spf(SpfParameters::verify_ehlo(ip, helo, &self.hostname))
            .await;
        let helo_verdict = SpfVerdict::from(helo_out.result());
        let (mail_from_verdict, mail_from_domain) = if mail_from.is_empty() {
            (helo_verdict, helo.to_string())
        } else {
            let out = self
                .inner
                .verify_spf(SpfParameters::verify_mail_from(
                    ip,
                    helo,
                    &self.hostname,
                    mail_from,
                ))
                .await;
            (
                SpfVerdict::from(out.result()),
                mail_from
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_ascii_lowercase())
                    .unwrap_or_default(),
            )
        };
        SpfOutcome {
            mail_from: mail_from_verdict,
            mail_from_domain,
            helo: helo_verdict,
            helo_domain: helo.to_string(),
        }
    }
}
