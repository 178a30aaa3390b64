//! Fetching the public keys a message's signatures name, once each and concurrently.

use super::dns::{DnsError, Resolver};
use super::key_record::{KeyError, KeyRecord};
use std::collections::HashMap;

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

impl KeyStore {
    /// Fetches every distinct (selector, domain) at once.
    pub async fn fetch(
        resolver: &Resolver,
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
            let resolver = resolver.clone();
            tasks.spawn(async move {
                let name = key_name(&key.0, &key.1);
                let result = lookup(&resolver, &name).await;
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
