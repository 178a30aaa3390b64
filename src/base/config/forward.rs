//! Forwarding domains: one TOML file per domain in `forwards_dir`, each naming aliases that
//! forward to outside mailboxes, the key that seals (and optionally signs) what is forwarded,
//! and the SRS secret.

use super::list::SigningConfig;
use super::server::find_key;
use super::{ConfigError, valid_address};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An alias: a list of targets, or a table with its own policy.
#[derive(Debug, Clone)]
pub enum AliasEntry {
    /// `sales = ["ann@example.com", "bob@example.net"]`
    Targets(Vec<String>),
    /// `alice = { targets = [...], forward_dmarc_reject = true, max_size = 10000000 }`
    Detailed(AliasPolicy),
}

/// By shape, not by trying each variant (serde's `untagged`): a misspelt key in a table then
/// gets its own error ("unknown field `max_sise`") instead of "did not match any variant".
impl<'de> Deserialize<'de> for AliasEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = AliasEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of target addresses, or a table with `targets`")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<AliasEntry, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(AliasEntry::Targets)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<AliasEntry, A::Error> {
                AliasPolicy::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(AliasEntry::Detailed)
            }
        }
        d.deserialize_any(Shape)
    }
}

/// An alias with its own policy; unset fields take the domain's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasPolicy {
    /// Where mail goes.
    pub targets: Vec<String>,
    /// Forward mail that fails DMARC of a p=reject author domain.
    pub forward_dmarc_reject: Option<bool>,
    /// Largest message forwarded, in bytes.
    pub max_size: Option<usize>,
}

/// SRS settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsConfig {
    /// A postsrsd-style secrets file: the first line signs, every line verifies. Relative to
    /// the forwarding file's folder.
    pub secret_file: PathBuf,
    /// Make the file (a random secret, mode 0600) when missing. Default false.
    #[serde(default)]
    pub create_secret: bool,
    /// The host part of SRS addresses. Default: the forwarding domain.
    pub domain: Option<String>,
    /// Days a bounce to an SRS address is accepted. Default 21 (postsrsd's).
    #[serde(default = "default_max_age")]
    pub max_age_days: u64,
    /// Null-sender messages (delivery reports, auto-replies) relayed to one original sender
    /// through its SRS addresses in an hour, on one node; more get `450 4.7.1`. 0 relays none.
    /// Default 10.
    #[serde(default = "default_returns_per_hour")]
    pub returns_per_hour: u32,
}

/// One forwarding domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The domain the aliases live in.
    pub domain: String,
    /// Local part to targets. Aliases added with `arclist forward add` live in the store.
    #[serde(default)]
    pub aliases: BTreeMap<String, AliasEntry>,
    /// Targets for any other local part of the domain. Default none: unknown aliases get 550.
    #[serde(default)]
    pub catch_all: Vec<String>,
    /// The key that seals forwarded mail with ARC (and signs it with `dkim_sign`).
    pub signing: SigningConfig,
    /// Also add a DKIM signature as the forwarding domain. Default false: the author's own
    /// signature is what DMARC needs, and it survives because nothing is changed.
    #[serde(default)]
    pub dkim_sign: bool,
    /// Add this hop's DKIM2-Signature (`docs/dkim2.md`) to forwarded copies: `mf=` the SRS
    /// sender, `rt=` one target, so each target's copy goes in a transaction of its own.
    /// Default false: off until receivers verify DKIM2.
    #[serde(default)]
    pub dkim2: bool,
    /// The Sender Rewriting Scheme.
    pub srs: SrsConfig,
    /// Forward mail that fails DMARC for an author domain publishing p=reject. Default false:
    /// such mail is refused with 550 at the end of DATA, so the sender learns of it and nobody
    /// receives a spoof with our seal on it.
    #[serde(default)]
    pub forward_dmarc_reject: bool,
    /// ARC sealers whose chains are trusted when mail arrives already forwarded (`domain` or
    /// `domain:selector`): a DMARC failure they vouch for is forwarded, as for lists.
    /// Default none.
    #[serde(default)]
    pub trusted_sealers: Vec<String>,
    /// Largest message forwarded, in bytes. Default 26214400 (25 MiB, Gmail's limit).
    #[serde(default = "default_max_size")]
    pub max_size: usize,
    /// Most Received fields a forwarded message may carry (Postfix's `hopcount_limit`).
    /// Default 50.
    #[serde(default = "default_max_hops")]
    pub max_hops: usize,
    /// Most targets one alias (and `catch_all`) may name: each message to it becomes that many
    /// copies. Default 50.
    #[serde(default = "default_max_targets")]
    pub max_targets: usize,
    /// Messages one envelope sender may send through the domain's aliases in an hour,
    /// counted in the store; beyond, `452 4.7.1` before `250` (a forwarder has no moderator
    /// to hold for). 0: no limit. Default 1800 (Google Groups' limit per sender).
    #[serde(default = "default_max_messages_per_sender_per_hour")]
    pub max_messages_per_sender_per_hour: u64,
    /// The file this came from.
    #[serde(skip)]
    pub file: PathBuf,
}

fn default_max_age() -> u64 {
    21
}

fn default_returns_per_hour() -> u32 {
    10
}

fn default_max_size() -> usize {
    25 << 20
}

fn default_max_hops() -> usize {
    50
}

fn default_max_targets() -> usize {
    50
}

fn default_max_messages_per_sender_per_hour() -> u64 {
    1800
}

/// An alias's effective policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// Where mail goes.
    pub targets: Vec<String>,
    /// Forward DMARC failures of p=reject authors.
    pub forward_dmarc_reject: bool,
    /// Size limit in bytes.
    pub max_size: usize,
}

/// The top-level settings of a forwarding file, which written below `[aliases]` would parse
/// as aliases.
const SETTINGS: &[&str] = &[
    "catch_all",
    "dkim_sign",
    "dkim2",
    "forward_dmarc_reject",
    "max_size",
    "max_hops",
    "max_targets",
    "trusted_sealers",
    "domain",
];

impl ForwardConfig {
    /// The signing domain: `signing.domain`, else the forwarding domain.
    pub fn signing_domain(&self) -> &str {
        self.signing.domain.as_deref().unwrap_or(&self.domain)
    }

    /// The SRS domain.
    pub fn srs_domain(&self) -> &str {
        self.srs.domain.as_deref().unwrap_or(&self.domain)
    }

    /// `local`'s alias from the file, with the domain's defaults filled in.
    pub fn alias(&self, local: &str) -> Option<Alias> {
        let entry = self.aliases.get(&local.to_ascii_lowercase())?;
        Some(self.policy(entry))
    }

    /// The domain's defaults applied to `targets`.
    pub fn with_defaults(&self, targets: Vec<String>) -> Alias {
        Alias {
            targets,
            forward_dmarc_reject: self.forward_dmarc_reject,
            max_size: self.max_size,
        }
    }

    fn policy(&self, entry: &AliasEntry) -> Alias {
        match entry {
            AliasEntry::Targets(t) => self.with_defaults(t.clone()),
            AliasEntry::Detailed(p) => Alias {
                targets: p.targets.clone(),
                forward_dmarc_reject: p.forward_dmarc_reject.unwrap_or(self.forward_dmarc_reject),
                max_size: p.max_size.unwrap_or(self.max_size),
            },
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut f: ForwardConfig =
            toml::from_str(text).map_err(|e| ConfigError::at(path, text, e.span(), e.message()))?;
        f.domain = f.domain.trim_end_matches('.').to_ascii_lowercase();
        if f.domain.is_empty() || !valid_address(&format!("x@{}", f.domain)) {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "domain"),
                format!("domain: {:?} is not a domain", f.domain),
            ));
        }
        f.aliases = std::mem::take(&mut f.aliases)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        // A setting written below [aliases] parses as an alias: say so instead.
        if let Some(setting) = f.aliases.keys().find(|k| SETTINGS.contains(&k.as_str())) {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, setting),
                format!("{setting} is a setting, not an alias: move it above [aliases]"),
            ));
        }
        let mut all: Vec<(&str, &Vec<String>)> = f
            .aliases
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    match v {
                        AliasEntry::Targets(t) => t,
                        AliasEntry::Detailed(p) => &p.targets,
                    },
                )
            })
            .collect();
        all.push(("catch_all", &f.catch_all));
        for (alias, targets) in all {
            if let Some(bad) = targets.iter().find(|t| !valid_address(t)) {
                return Err(ConfigError::at(
                    path,
                    text,
                    find_key(text, alias),
                    format!("{alias}: {bad:?} is not an address"),
                ));
            }
            if targets.len() > f.max_targets {
                return Err(ConfigError::at(
                    path,
                    text,
                    find_key(text, alias),
                    format!(
                        "{alias}: {} targets, more than max_targets ({})",
                        targets.len(),
                        f.max_targets
                    ),
                ));
            }
            if alias != "catch_all" && targets.is_empty() {
                return Err(ConfigError::at(
                    path,
                    text,
                    find_key(text, alias),
                    format!("{alias}: no targets"),
                ));
            }
        }
        f.signing.resolve(path, text)?;
        if f.srs.secret_file.is_relative() {
            f.srs.secret_file = path
                .parent()
                .unwrap_or(Path::new(""))
                .join(&f.srs.secret_file);
        }
        if !f.srs.secret_file.is_file() && !f.srs.create_secret {
            return Err(ConfigError::at(
                path,
                text,
                find_key(text, "secret_file"),
                format!(
                    "srs.secret_file: no such file {} (set create_secret = true to make one)",
                    f.srs.secret_file.display()
                ),
            ));
        }
        f.file = path.to_path_buf();
        Ok(f)
    }
}

/// Loads every `*.toml` in `dir`, in name order; two files for one domain are an error.
pub(super) fn load_dir(dir: &Path) -> Result<Vec<ForwardConfig>, ConfigError> {
    super::load_unique(dir, "forwards", ForwardConfig::parse, "domain", |f| {
        (f.domain.as_str(), f.file.as_path())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ForwardConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("corp.toml");
        ForwardConfig::parse(&path, text)
    }

    const BASE: &str = "domain = \"Corp.Example\"\n[signing]\nselector = \"fwd\"\nkey = \"k.pem\"\ncreate_key = true\n\
                        [srs]\nsecret_file = \"srs.secret\"\ncreate_secret = true\n";

    #[test]
    fn aliases_short_and_detailed_with_domain_defaults() {
        let f = parse(&format!(
            "{BASE}[aliases]\nSales = [\"ann@gmail.example\", \"bob@outlook.example\"]\n\
             alice = {{ targets = [\"alice@home.example\"], forward_dmarc_reject = true, max_size = 1000 }}\n"
        ))
        .expect("parses");
        assert_eq!(f.domain, "corp.example");
        let sales = f.alias("SALES").expect("sales");
        assert_eq!(sales.targets.len(), 2);
        assert!(!sales.forward_dmarc_reject);
        assert_eq!(sales.max_size, 25 << 20);
        let alice = f.alias("alice").expect("alice");
        assert!(alice.forward_dmarc_reject);
        assert_eq!(alice.max_size, 1000);
        assert!(f.alias("nobody").is_none());
        assert_eq!(f.srs_domain(), "corp.example");
    }

    #[test]
    fn an_alias_names_at_most_max_targets() {
        let three = "[aliases]\nsales = [\"a@x.example\", \"b@x.example\", \"c@x.example\"]\n";
        let e = parse(&format!("max_targets = 2\n{BASE}{three}")).expect_err("refused");
        assert!(
            e.to_string()
                .contains("sales: 3 targets, more than max_targets (2)")
                && e.line.is_some(),
            "{e}"
        );
        assert_eq!(
            parse(&format!("{BASE}{three}")).expect("loads").max_targets,
            50
        );
    }

    #[test]
    fn bad_targets_and_unknown_fields_name_the_line() {
        let e = parse(&format!("{BASE}[aliases]\nsales = [\"not an address\"]\n"))
            .expect_err("refused");
        assert!(e.to_string().contains("sales") && e.line.is_some(), "{e}");
        let e = parse(&format!("{BASE}relay = true\n")).expect_err("refused");
        assert!(e.to_string().contains("relay"), "{e}");
    }
}
