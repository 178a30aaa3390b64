//! `[filter]`: the spam and malware filter asked before `250` (rspamd, or anything that
//! speaks its `/checkv2` protocol).

use serde::Deserialize;

/// What happens to a message when the filter cannot give a verdict (timeout, refused
/// connection, an answer that does not parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FilterOnError {
    /// `451`: the sender's server tries again later, nothing is accepted unchecked and nothing
    /// is lost (default).
    #[default]
    Tempfail,
    /// Accept the message unchecked (logged and counted): for sites that prefer spam to delay.
    Accept,
}

/// The filter asked about every list post and every message to a forwarding alias.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// The rspamd normal worker's base URL (`http://127.0.0.1:11333`); `/checkv2` is added.
    /// Only `http://` (rspamd listens on loopback or a private network). Default none: no
    /// filter.
    pub rspamd: Option<String>,
    /// Seconds one check may take, connection included, before `on_error` applies. Default 20.
    pub timeout_secs: u64,
    /// What a message gets when the filter gives no verdict. Default `tempfail` (451).
    pub on_error: FilterOnError,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            rspamd: None,
            timeout_secs: 20,
            on_error: FilterOnError::Tempfail,
        }
    }
}

/// What a list does with a post its filter says to reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SpamReject {
    /// Refuse it at DATA with the filter's reason (default): the sender's server tells the
    /// sender, and nothing reaches a member.
    #[default]
    Refuse,
    /// Accept it and keep it for a moderator with the filter's verdict as the reason.
    Hold,
}
