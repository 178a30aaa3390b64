//! Fetching the public keys a message's signatures name, once each and concurrently.

use super::dns::{DnsError, Resolver};
use super::key_record::{KeyError, KeyRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why no usable key was found for a selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFailure {
    /// No TXT record at the key's name.
    #[error("no key published at {0}")]
    NotFound(String),
    /// DNS did not answer; the verdict must be a temporary error.
    #[error("{0}")]
    Temporary(DnsError),
    /// A record exists but cannot be used.
    #[error("key at {name}: {error}")]
    Unusable {
        /// The DNS name of the record.
        name: String,
        /// What is wrong with it.
        error: KeyError,
    },
}

/// Keys by (selector, domain), as fetched for one message.
#[derive(Debug, Default, Clone)]
pub struct KeyStore {
    keys: HashMap<(String, String), Result<KeyRecord, KeyFailure>>,
}

/// The DNS name of a DKIM/ARC key.
pub fn key_name(selector: &str, domain: &str) -> String {
    format!("{selector}._domainkey.{domain}")
}

/// Key names whose lookup failed temporarily (a silent or failing nameserver), remembered for
/// a short period in which they are not asked again: each further lookup of one is a
/// temporary error at once. A forger who signs with a key whose DNS never answers then costs
/// one lookup timeout per period, not one per message; and as a list's posts are worked
/// through one author domain at a time, without it a handful of such forgeries in a real
/// author's name held up that author's genuine posts for a timeout each. Only the exact name
/// is remembered: a domain whose one old selector points at a dead provider keeps its others.
#[derive(Clone)]
pub struct SilentKeys {
    period: Duration,
    names: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Names remembered before the expired ones are swept out; past it (after a sweep) new
/// names are not remembered, so the memory stays bounded whatever is asked.
const SILENT_KEYS_MAX: usize = 10_000;

impl SilentKeys {
    /// Remembers a failed key for `period` (zero: never).
    pub fn new(period: Duration) -> Self {
        SilentKeys {
            period,
            names: Arc::default(),
        }
    }

    /// When `name` failed, if within the period.
    fn recall(&self, name: &str) -> Option<Instant> {
        let names = self.names.lock().ok()?;
        names
            .get(name)
            .copied()
            .filter(|at| at.elapsed() < self.period)
    }

    fn remember(&self, name: &str) {
        if self.period.is_zero() {
            return;
        }
        let Ok(mut names) = self.names.lock() else {
            return;
        };
        if names.len() >= SILENT_KEYS_MAX {
            names.retain(|_, at| at.elapsed() < self.period);
        }
        if names.len() < SILENT_KEYS_MAX {
            names.insert(name.to_string(), Instant::now());
        }
    }

    /// Looks `name` up unless it failed within the period; remembers a new temporary failure.
    async fn lookup(&self, resolver: &Resolver, name: &str) -> Result<KeyRecord, KeyFailure> {
        if let Some(at) = self.recall(name) {
            return Err(KeyFailure::Temporary(DnsError::Temporary {
                name: name.to_string(),
                rtype: "TXT",
                reason: format!(
                    "no answer {} s ago; not asked again for {} s (silent_key_secs)",
                    at.elapsed().as_secs(),
                    self.period.as_secs()
                ),
            }));
        }
        let result = lookup(resolver, name).await;
        if let Err(KeyFailure::Temporary(e)) = &result {
            tracing::info!(key = %name, error = %e, remember_s = self.period.as_secs(), "DKIM/ARC key lookup failed temporarily; not asked again for a while");
            self.remember(name);
        }
        result
    }
}

impl KeyStore {
    /// Fetches every distinct (selector, domain) at once.
    pub async fn fetch(
        resolver: &Resolver,
        wanted: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Self::fetch_remembering(resolver, &SilentKeys::new(Duration::ZERO), wanted).await
    }

    /// As [`KeyStore::fetch`], skipping (as temporary errors) the keys `silent` remembers.
    pub async fn fetch_remembering(
        resolver: &Resolver,
        silent: &SilentKeys,
        wanted: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut store = KeyStore::default();
        let mut tasks = tokio::task::JoinSet::new();
        for (sel, dom) in wanted {
            let key = (sel.clone(), dom.to_ascii_lowercase());
            if store.keys.contains_key(&key) {
                continue;
            }
            // Placeholder so duplicates are not fetched twice; replaced below.
            store
                .keys
                .insert(key.clone(), Err(KeyFailure::NotFound(String::new())));
            let (resolver, silent) = (resolver.clone(), silent.clone());
            tasks.spawn(async move {
                let name = key_name(&key.0, &key.1).to_ascii_lowercase();
                let result = silent.lookup(&resolver, &name).await;
                (key, result)
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((key, result)) = done {
                store.keys.insert(key, result);
            }
        }
        store
    }

    /// Builds a store from known answers (unit tests inject DNS this way).
    pub fn insert(&mut self, selector: &str, domain: &str, result: Result<KeyRecord, KeyFailure>) {
        self.keys
            .insert((selector.to_string(), domain.to_ascii_lowercase()), result);
    }

    /// The key for (selector, domain).
    pub fn get(&self, selector: &str, domain: &str) -> Result<&KeyRecord, KeyFailure> {
        match self
            .keys
            .get(&(selector.to_string(), domain.to_ascii_lowercase()))
        {
            Some(Ok(k)) => Ok(k),
            Some(Err(e)) => Err(e.clone()),
            None => Err(KeyFailure::NotFound(key_name(selector, domain))),
        }
    }
}

async fn lookup(resolver: &Resolver, name: &str) -> Result<KeyRecord, KeyFailure> {
    let records = match resolver.txt(name).await {
        Ok(r) => r,
        Err(DnsError::NotFound { .. }) => return Err(KeyFailure::NotFound(name.to_string())),
        Err(e) => return Err(KeyFailure::Temporary(e)),
    };
    // Several TXT records at one name: the first usable one wins (RFC 6376 §3.6.2.2 leaves
    // the choice to the verifier); report the first error when none is usable.
    let mut first_error = None;
    for txt in records {
        match KeyRecord::parse(&txt) {
            Ok(k) => return Ok(k),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(KeyFailure::Unusable {
        name: name.to_string(),
        error: first_error.unwrap_or_else(|| KeyError::Malformed("empty record".into())),
    })
}
