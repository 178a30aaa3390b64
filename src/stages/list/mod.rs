//! Stages 5 to 7 for a list post: policy (with the trust decision of [`crate::auth::trust`]),
//! the list's copy, and signing it.
//!
//! [`ListRuntime::handle`] runs them in order for one authenticated post; the pipeline calls it
//! and stores the outcome (queued for delivery, held, rejected or discarded).

pub mod archive;
pub mod bounces;
pub mod commands;
pub mod copy;
pub mod create;
pub mod delivery_hook;
pub mod digest;
mod dkim2;
pub mod dmarc_reports;
mod error;
pub mod footer;
pub mod mime;
pub mod moderation;
pub mod notice;
pub mod owners;
pub mod policy;
pub mod post;
pub mod rewrite;
pub mod robots;
pub mod seed;
pub mod seven_bit;
pub mod subject;
pub mod tokens;
pub mod unsubscribe;

pub use error::ListError;

use crate::auth::signing_key::SigningKey;
use crate::auth::{Envelope, Verification};
use crate::base::config::ListConfig;
use crate::stages::outbound::{Arrival, Signer};
use crate::state::store::SpoolMeta;
use policy::Decision;
use std::collections::HashMap;
use std::sync::Arc;

/// The lists served, by posting address, shared by the SMTP sessions, the pipeline, delivery,
/// the reports and the HTTP listeners. A reload replaces them for all at once; work under way
/// keeps the list it started with.
#[derive(Clone, Default)]
pub struct Lists(crate::base::live::Live<HashMap<String, Arc<ListRuntime>>>);

impl Lists {
    /// The lists of `runtimes`.
    pub fn new(runtimes: impl IntoIterator<Item = ListRuntime>) -> Self {
        let lists = Lists::default();
        lists.replace(runtimes);
        lists
    }

    /// The list posting to `address` (any case).
    pub fn get(&self, address: &str) -> Option<Arc<ListRuntime>> {
        self.0.get().get(&address.to_ascii_lowercase()).cloned()
    }

    /// Whether a list posts to `address`.
    pub fn contains(&self, address: &str) -> bool {
        self.get(address).is_some()
    }

    /// Every list, by address.
    pub fn all(&self) -> Vec<Arc<ListRuntime>> {
        let mut all: Vec<_> = self.0.get().values().cloned().collect();
        all.sort_by(|a, b| a.config.address.cmp(&b.config.address));
        all
    }

    /// Serves `runtimes` from now on, instead of the lists before.
    pub fn replace(&self, runtimes: impl IntoIterator<Item = ListRuntime>) {
        self.0.set(
            runtimes
                .into_iter()
                .map(|l| (l.config.address.to_ascii_lowercase(), Arc::new(l)))
                .collect(),
        );
    }
}

/// What became of a post.
#[derive(Debug)]
pub enum Outcome {
    /// The signed copy, ready for delivery, with notes for the log.
    Queue {
        /// The list's copy with its ARC set and DKIM signature.
        signed: Vec<u8>,
        /// For an 8-bit copy: its 7-bit twin, sealed and signed too.
        seven_bit: Option<Vec<u8>>,
        /// Things worth logging (a footer left out, an ARC override).
        notes: Vec<String>,
        /// From was rewritten (or the post wrapped) for the author domain's DMARC policy.
        mitigated: bool,
        /// The trusted sealers whose ARC chain let a DMARC failure through; empty when none did.
        overridden_by: Vec<String>,
    },
    /// Held for a moderator.
    Hold(String),
    /// Refused.
    Reject(String),
    /// Dropped.
    Discard(String),
}

/// What every member's one-click copy of one queued copy has in common
/// ([`ListRuntime::member_signing`]).
pub struct MemberSigning {
    /// The DKIM body hash (each copy differs in its header only).
    pub body_hash: Vec<u8>,
    /// The signed shared fields, canonicalized.
    pub prepared: crate::auth::dkim::MemberSignature,
}

/// A list with its signing identity loaded.
pub struct ListRuntime {
    /// The list's settings.
    pub config: ListConfig,
    /// The list's ARC set and DKIM signature, on posts and on what it writes itself.
    signer: Signer,
    /// The base URL of one-click unsubscribe, when the HTTP listener is on.
    one_click: Option<String>,
    /// What the robot has answered lately, to bound it per address.
    pub replies: Arc<robots::Replies>,
}

impl ListRuntime {
    /// Loads the list's signing key.
    pub fn load(config: &ListConfig) -> Result<Self, ListError> {
        let key = Arc::new(
            SigningKey::from_pem_file(&config.signing.key).map_err(|source| ListError::Key {
                list: config.address.clone(),
                source,
            })?,
        );
        let domain = config.signing_domain().to_string();
        Ok(ListRuntime {
            signer: Signer::new(key, &domain, &config.signing.selector),
            config: config.clone(),
            one_click: None,
            replies: Arc::new(robots::Replies::new(config.max_replies_per_hour)),
        })
    }

    /// Goes on counting the robot's replies where `before` (the same list before a reload)
    /// left off, so a reload does not reset the hourly limit.
    pub fn keep_counting_from(&mut self, before: &ListRuntime) {
        if before.config.max_replies_per_hour == self.config.max_replies_per_hour {
            self.replies = before.replies.clone();
        }
    }

    /// Gives each member a one-click unsubscribe URL under `base_url` (RFC 8058).
    pub fn with_one_click(mut self, base_url: &str) -> Self {
        self.one_click = Some(base_url.to_string());
        self
    }

    /// The `[http]` listener's public base URL, when it is on (one-click links, the public
    /// list pages and the archive's URLs are under it).
    pub fn base_url(&self) -> Option<&str> {
        self.one_click.as_deref()
    }

    /// True when copies are personalized per recipient at delivery.
    pub fn personalized(&self) -> bool {
        self.one_click.is_some()
    }

    /// The envelope sender for `recipient`'s copy of queued message `id`: a VERP address when
    /// the list uses VERP, else the plain `-bounces` address.
    pub fn envelope_sender(&self, keys: &tokens::TokenKeys, id: u64, recipient: &str) -> String {
        let (local, domain) = (self.config.local_part(), self.config.domain());
        if self.config.verp {
            format!("{local}-bounces+{}@{domain}", keys.verp(id, recipient))
        } else {
            format!("{local}-bounces@{domain}")
        }
    }

    /// What goes on top of `recipient`'s copy of a queued `message`: their own
    /// List-Unsubscribe and List-Unsubscribe-Post, covered by a DKIM signature made for them
    /// (RFC 8058 §3.1). The shared ARC set and DKIM signature below stay valid. Without
    /// one-click, nothing. `shared` is what every member's copy of `message` has in common
    /// ([`ListRuntime::member_signing`]), worked out here when not given.
    pub fn personalize(
        &self,
        keys: &tokens::TokenKeys,
        recipient: &str,
        message: &[u8],
        shared: Option<&MemberSigning>,
    ) -> Result<Vec<u8>, ListError> {
        let Some(base) = &self.one_click else {
            return Ok(Vec::new());
        };
        let made;
        let shared = match shared {
            Some(shared) => shared,
            None => {
                made = Self::member_signing(message);
                &made
            }
        };
        let issued = crate::auth::unix_now();
        let fields = unsubscribe::fields(base, keys, &self.config, recipient, issued)?
            .map(|(name, value)| crate::base::header::field(name, &value));
        let fields = fields.each_ref().map(|f| f.as_bytes());
        let (body_hash, prepared) = (&shared.body_hash, &shared.prepared);
        (self.signer)
            .sign_member((body_hash, prepared), &fields, issued)
            .map_err(|e| ListError::Sign(e.to_string()))
    }

    /// What every member's one-click copy of `message` has in common: its body hash, and
    /// its signed fields canonicalized for [`ListRuntime::personalize`].
    pub fn member_signing(message: &[u8]) -> MemberSigning {
        MemberSigning {
            body_hash: crate::stages::outbound::Signer::body_hash_of(message),
            prepared: crate::stages::outbound::Signer::prepare_members(
                message,
                &unsubscribe::NAMES,
            ),
        }
    }

    /// DKIM-signs a message the list itself sends (confirmations, notices).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        (self.signer)
            .sign(message, crate::auth::unix_now())
            .map_err(|e| e.to_string())
    }

    /// Runs trust, policy, the copy and signing for one post. `approved` means a moderator
    /// released it: policy no longer stops it (a loop still does). A list with `dkim2` on
    /// re-signs the DKIM2 chain `v` found on arrival.
    pub fn handle(
        &self,
        message: &[u8],
        v: &Verification,
        meta: &SpoolMeta,
        poster: policy::Standing,
        approved: bool,
        hostname: &str,
    ) -> Outcome {
        let list = &self.config;
        let parsed = crate::auth::message::RawMessage::parse(message);
        let trust = crate::auth::trust::evaluate(v, &list.trusted_sealers);
        let looped = policy::not_a_post(&parsed, list);
        // A moderator's approval releases a post held for either.
        let spam = policy::held_by_filter(meta).or_else(|| {
            (meta.envelope.over_quota.as_ref()).map(|why| format!("over a quota: {why}"))
        });
        let decision = match (approved, looped, spam) {
            (true, None, _) => Decision::Distribute,
            (false, None, Some(why)) => Decision::Hold(why),
            (_, looped, _) => policy::decide(list, v, &trust, poster, looped, &parsed),
        };
        match decision {
            Decision::Distribute => {}
            Decision::Hold(why) => return Outcome::Hold(why),
            Decision::Reject(why) => return Outcome::Reject(why),
            Decision::Discard(why) => return Outcome::Discard(why),
        }
        let (copy, mut notes) =
            copy::list_copy(list, message, v, meta, hostname, self.one_click.is_some());
        // The HTTP listener's base URL is the one-click one: the archive is served there too.
        let archived = archive::fields(list, self.base_url(), &copy, meta.id);
        let copy = archive::with_fields(&archived, copy);
        let envelope = Envelope {
            ip: meta.envelope.client_ip,
            helo: meta.envelope.helo.clone(),
            mail_from: meta.envelope.mail_from.clone(),
        };
        let mut results = v.auth_results(hostname, Some(&envelope));
        if trust.overridden {
            trust.annotate(&mut results);
            notes.push(trust.reason.clone());
        }
        let mitigated = list.dmarc_mitigation != crate::base::config::DmarcMitigation::None
            && copy::mitigates(list, v);
        if mitigated {
            crate::base::metrics::dmarc_mitigation();
        }
        let results = results.render();
        // An 8-bit post gets a 7-bit twin, sealed and signed in its own right, for receivers
        // without 8BITMIME (RFC 6152 §3): converting on the way would break the signatures.
        let seven = seven_bit::downgrade(&copy);
        let signed = self.seal_and_sign(copy, &v.arc, &results, &mut notes);
        let signed = signed.map(|s| match list.dkim2 {
            true => dkim2::with_instance(self, message, s, v.dkim2.as_ref(), &mut notes),
            false => s,
        });
        let seven_bit =
            match seven.map(|c| self.seal_and_sign(c, &v.arc, &results, &mut Vec::new())) {
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => {
                    notes.push(format!("no 7-bit copy: {e}"));
                    None
                }
                None => None,
            };
        match signed {
            Ok(signed) => Outcome::Queue {
                signed,
                seven_bit,
                notes,
                mitigated,
                overridden_by: if trust.overridden {
                    trust.sealers
                } else {
                    Vec::new()
                },
            },
            Err(e) => Outcome::Hold(format!(
                "DKIM signing failed ({e}); held so nothing is lost"
            )),
        }
    }

    /// The next ARC set and the list's DKIM signature on `copy`.
    fn seal_and_sign(
        &self,
        copy: Vec<u8>,
        chain: &crate::auth::arc::ArcReport,
        results: &str,
        notes: &mut Vec<String>,
    ) -> Result<Vec<u8>, ListError> {
        let arrival = Arrival { chain, results };
        (self.signer)
            .seal_and_sign(copy, &arrival, crate::auth::unix_now(), notes)
            .map_err(|u| ListError::Sign(u.error.to_string()))
    }
}
