//! What arclist counts, for Prometheus: typed counters, gauges and one histogram in a single
//! process-wide registry, encoded in Prometheus' text format (0.0.4) by the admin listener.
//!
//! A leaf module: every stage counts into it with one call (`metrics::post(..)`), nothing is
//! threaded through the pipeline for it, and it imports nothing of arclist's. The engine
//! (`arclist-auth`) counts into it through the observer it installs. Each series is a
//! field and each label value an enum or a `&'static str` from a fixed set, so a misspelled
//! metric or label does not compile. prometheus-client only encodes; the HTTP side is ours.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::fmt::Write;
use std::sync::LazyLock;
use std::time::Duration;

/// Defines a label value: an enum whose variants are written as the given strings.
macro_rules! label_value {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, so each series can be exported from the start (at zero).
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            /// The label value as exported.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_value!(
    /// Why a message was refused at the end of DATA.
    MessageRefusal {
        /// Size or other session limits.
        Limits => "limits",
        /// The forwarding screen could not decide yet (DNS).
        ForwardingTemporary => "forwarding_temporary",
        /// The forwarding screen refused it (DMARC p=reject failure, loop, size).
        ForwardingPolicy => "forwarding_policy",
        /// The spool could not take it.
        Storage => "storage",
        /// A post without exactly one From address.
        Author => "author",
        /// An empty message, or one with a bare CR or LF.
        Malformed => "malformed",
        /// The spam filter said reject, soft reject or greylist, or gave no verdict under
        /// `on_error = "tempfail"`.
        Filter => "filter",
        /// A mail loop: too many `Received` fields, or the list's own `List-Id` come back.
        Loop => "loop",
        /// Over a quota: a list's posts in 5 minutes, a sender's in an hour, a client's
        /// messages in an hour.
        Quota => "quota",
    }
);

label_value!(
    /// What the spam filter said of a message (or that it said nothing).
    FilterAction {
        /// Clean.
        NoAction => "no_action",
        /// Greylist: answered 451.
        Greylist => "greylist",
        /// Add a header: the list's copy carries `X-Spam: Yes`.
        AddHeader => "add_header",
        /// Rewrite the subject: the list's copy takes the filter's subject.
        RewriteSubject => "rewrite_subject",
        /// Soft reject: answered 451.
        SoftReject => "soft_reject",
        /// Reject: refused at DATA.
        Reject => "reject",
        /// Reject, for a list that holds such posts for a moderator.
        Held => "held",
        /// No verdict (timeout, unreachable, a bad answer).
        Error => "error",
    }
);

label_value!(
    /// Why an RCPT TO was refused.
    RecipientRefusal {
        /// An address arclist does not serve.
        NotServed => "not_served",
        /// A forged or expired SRS address.
        Srs => "srs",
        /// Mail with an envelope sender to an SRS address, which takes only bounces.
        SrsNotABounce => "srs_not_a_bounce",
    }
);

label_value!(
    /// An authentication method whose verdicts are counted on arrival.
    Method {
        /// SPF for MAIL FROM.
        Spf => "spf",
        /// Each DKIM signature (or `none`).
        Dkim => "dkim",
        /// DMARC for the From domain.
        Dmarc => "dmarc",
        /// The upstream ARC chain.
        Arc => "arc",
    }
);

label_value!(
    /// What became of a list post.
    PostOutcome {
        /// Queued for the members.
        Queued => "queued",
        /// Held for a moderator.
        Held => "held",
        /// Refused (the poster is told where the list says so).
        Rejected => "rejected",
        /// Dropped silently.
        Discarded => "discarded",
        /// A second copy of a post the list already distributed (same Message-ID).
        Duplicate => "duplicate",
    }
);

label_value!(
    /// What became of a message to a forwarding alias or an SRS address.
    ForwardOutcome {
        /// Refused after the spool (the gate let it in, the relay did not).
        Refused => "refused",
        /// Queued for the alias's targets.
        Queued => "queued",
        /// A bounce to an SRS address, returned to the original sender.
        BounceReturned => "bounce_returned",
        /// A delivery status notification sent to the original sender of a forwarded message.
        DsnSent => "dsn_sent",
    }
);

label_value!(
    /// A returned message's kind.
    BounceKind {
        /// Permanent failure.
        Hard => "hard",
        /// Temporary failure reported as final.
        Soft => "soft",
        /// A receiver's policy refusal (DMARC, spam), counted apart from the member's score.
        Policy => "policy",
        /// A delay notice.
        Delayed => "delayed",
        /// A feedback-loop complaint.
        Complaint => "complaint",
        /// An out-of-office or other automatic reply to a VERP address: not scored.
        AutoReply => "auto_reply",
    }
);

label_value!(
    /// The result of one delivery attempt for one recipient.
    DeliveryOutcome {
        /// Accepted by the receiver.
        Delivered => "delivered",
        /// Refused for good, or given up.
        Bounced => "bounced",
        /// To be tried again.
        Deferred => "deferred",
    }
);

label_value!(
    /// The result of one DNS lookup.
    DnsResult {
        /// An answer.
        Ok => "ok",
        /// No such name or no such record.
        NotFound => "not_found",
        /// A timeout or server failure.
        Error => "error",
    }
);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabel {
    reason: MessageRefusal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecipientLabel {
    reason: RecipientRefusal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PostLabel {
    outcome: PostOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FilterLabel {
    action: FilterAction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ForwardLabel {
    outcome: ForwardOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    method: Method,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: BounceKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    receiver: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    outcome: DeliveryOutcome,
    destination: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: DnsResult,
}

/// Upper bounds of the DNS latency histogram, in seconds.
const DNS_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Every series arclist exports, and the registry that encodes them.
struct Metrics {
    registry: Registry,
    smtp_sessions: Counter,
    messages_spooled: Counter,
    messages_refused: Family<RefusalLabel, Counter>,
    recipients_refused: Family<RecipientLabel, Counter>,
    auth_results: Family<AuthLabels, Counter>,
    posts: Family<PostLabel, Counter>,
    arc_overrides: Counter,
    dmarc_mitigations: Counter,
    seals: Counter,
    store_failures: Counter,
    store_reopens: Counter,
    store_broken: Gauge,
    forwards: Family<ForwardLabel, Counter>,
    filter_verdicts: Family<FilterLabel, Counter>,
    bounces: Family<KindLabel, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    dmarc_reported: Family<ReportLabels, Counter>,
    queue_recipients: Family<StateLabel, Gauge>,
    queue_oldest_age: Gauge,
    delivery_unrecorded: Gauge,
    dns_lookups: Family<ResultLabel, Counter>,
    dns_duration: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let m = Metrics {
            smtp_sessions: Counter::default(),
            messages_spooled: Counter::default(),
            messages_refused: Family::default(),
            recipients_refused: Family::default(),
            auth_results: Family::default(),
            posts: Family::default(),
            arc_overrides: Counter::default(),
            dmarc_mitigations: Counter::default(),
            seals: Counter::default(),
            store_failures: Counter::default(),
            store_reopens: Counter::default(),
            store_broken: Gauge::default(),
            forwards: Family::default(),
            filter_verdicts: Family::default(),
            bounces: Family::default(),
            deliveries: Family::default(),
            dmarc_reported: Family::default(),
            queue_recipients: Family::default(),
            queue_oldest_age: Gauge::default(),
            delivery_unrecorded: Gauge::default(),
            dns_lookups: Family::default(),
            dns_duration: Histogram::new(DNS_BUCKETS),
            registry: Registry::default(),
        };
        m.start_at_zero();
        Metrics {
            registry: m.registry(),
            ..m
        }
    }

    /// Creates every series whose labels come from a fixed set, so that each family is in the
    /// first scrape (at zero) and `rate()` works from the first event on, whatever the order in
    /// which things happen.
    fn start_at_zero(&self) {
        for receiver in ["google", "microsoft", "yahoo", "other"] {
            for result in ["pass", "fail"] {
                let _ = self
                    .dmarc_reported
                    .get_or_create(&ReportLabels { receiver, result });
            }
        }
        for &reason in MessageRefusal::ALL {
            let _ = self
                .messages_refused
                .get_or_create(&RefusalLabel { reason });
        }
        for &reason in RecipientRefusal::ALL {
            let _ = self
                .recipients_refused
                .get_or_create(&RecipientLabel { reason });
        }
        for &method in Method::ALL {
            for result in ["pass", "fail"] {
                let _ = self
                    .auth_results
                    .get_or_create(&AuthLabels { method, result });
            }
        }
        for &outcome in PostOutcome::ALL {
            let _ = self.posts.get_or_create(&PostLabel { outcome });
        }
        for &outcome in ForwardOutcome::ALL {
            let _ = self.forwards.get_or_create(&ForwardLabel { outcome });
        }
        for &action in FilterAction::ALL {
            let _ = self.filter_verdicts.get_or_create(&FilterLabel { action });
        }
        for &kind in BounceKind::ALL {
            let _ = self.bounces.get_or_create(&KindLabel { kind });
        }
        for &outcome in DeliveryOutcome::ALL {
            for destination in ["google", "microsoft", "yahoo", "other"] {
                let _ = self.deliveries.get_or_create(&DeliveryLabels {
                    outcome,
                    destination,
                });
            }
        }
        for state in ["pending", "deferred"] {
            let _ = self.queue_recipients.get_or_create(&StateLabel { state });
        }
        for &result in DnsResult::ALL {
            let _ = self.dns_lookups.get_or_create(&ResultLabel { result });
        }
    }

    /// The store's health and what receivers report of the lists' mail.
    fn register_health(&self, r: &mut Registry) {
        r.register(
            "arclist_store_failures",
            "Store writes that failed with an I/O error (a full disk, say): alert on any.",
            self.store_failures.clone(),
        );
        r.register(
            "arclist_store_reopens",
            "Times the store was reopened after an I/O error, once writing worked again.",
            self.store_reopens.clone(),
        );
        r.register(
            "arclist_store_broken",
            "1 while the store is refusing writes after an I/O error (intake answers 451), else 0.",
            self.store_broken.clone(),
        );
        r.register(
            "arclist_dmarc_reported_messages",
            "Messages of the list domains that receivers' DMARC aggregate reports counted, by receiver and DMARC result.",
            self.dmarc_reported.clone(),
        );
    }

    /// A registry of every series, with its name and help. Counters get `_total` appended
    /// when encoded.
    fn registry(&self) -> Registry {
        let mut r = Registry::default();
        self.register_health(&mut r);
        r.register(
            "arclist_smtp_sessions",
            "SMTP and LMTP sessions opened.",
            self.smtp_sessions.clone(),
        );
        r.register(
            "arclist_messages_spooled",
            "Messages accepted (250) and committed to the spool.",
            self.messages_spooled.clone(),
        );
        r.register(
            "arclist_messages_refused",
            "Messages refused at the end of DATA, by reason.",
            self.messages_refused.clone(),
        );
        r.register(
            "arclist_recipients_refused",
            "RCPT TO refused: not served here, or a bad SRS address.",
            self.recipients_refused.clone(),
        );
        r.register(
            "arclist_auth_results",
            "Verdicts on arrival, by method (spf, dkim, dmarc, arc) and result.",
            self.auth_results.clone(),
        );
        r.register(
            "arclist_posts",
            "List posts by outcome (queued, held, rejected, discarded).",
            self.posts.clone(),
        );
        r.register(
            "arclist_arc_overrides",
            "DMARC failures let through on a trusted sealer's ARC chain.",
            self.arc_overrides.clone(),
        );
        r.register(
            "arclist_dmarc_mitigations",
            "Posts whose From was rewritten or that were wrapped for DMARC.",
            self.dmarc_mitigations.clone(),
        );
        r.register(
            "arclist_seals",
            "ARC sets added (one per post or forwarded message).",
            self.seals.clone(),
        );
        r.register(
            "arclist_forwards",
            "Messages to forwarding aliases, by outcome.",
            self.forwards.clone(),
        );
        r.register(
            "arclist_filter_verdicts",
            "The spam filter's verdicts on list posts and forwarded mail before 250, by action.",
            self.filter_verdicts.clone(),
        );
        r.register(
            "arclist_bounces",
            "Returned messages by kind (hard, soft, policy, delayed, complaint).",
            self.bounces.clone(),
        );
        r.register(
            "arclist_deliveries",
            "Delivery attempts by outcome and destination (google, microsoft, yahoo, other).",
            self.deliveries.clone(),
        );
        r.register(
            "arclist_queue_recipients",
            "Recipients waiting in the delivery queue, by state.",
            self.queue_recipients.clone(),
        );
        r.register(
            "arclist_queue_oldest_age_seconds",
            "Age of the oldest post with recipients still waiting.",
            self.queue_oldest_age.clone(),
        );
        r.register(
            "arclist_delivery_unrecorded",
            "Recipients this node delivered (or tried) whose outcome the store could not take yet; written when it answers again.",
            self.delivery_unrecorded.clone(),
        );
        r.register(
            "arclist_dns_lookups",
            "DNS lookups by result (ok, not_found, error).",
            self.dns_lookups.clone(),
        );
        r.register(
            "arclist_dns_lookup_duration_seconds",
            "Time DNS lookups took.",
            self.dns_duration.clone(),
        );
        r
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// An SMTP or LMTP session opened.
pub fn smtp_session() {
    METRICS.smtp_sessions.inc();
}

/// A message accepted with 250 and committed to the spool.
pub fn message_spooled() {
    METRICS.messages_spooled.inc();
}

/// A message refused at the end of DATA.
pub fn message_refused(reason: MessageRefusal) {
    METRICS
        .messages_refused
        .get_or_create(&RefusalLabel { reason })
        .inc();
}

/// A verdict of the spam filter.
pub fn filter_verdict(action: FilterAction) {
    METRICS
        .filter_verdicts
        .get_or_create(&FilterLabel { action })
        .inc();
}

/// An RCPT TO refused.
pub fn recipient_refused(reason: RecipientRefusal) {
    METRICS
        .recipients_refused
        .get_or_create(&RecipientLabel { reason })
        .inc();
}

/// One verdict on arrival; `result` is the RFC 8601 spelling of the verdict.
pub fn auth_result(method: Method, result: &'static str) {
    METRICS
        .auth_results
        .get_or_create(&AuthLabels { method, result })
        .inc();
}

/// What became of a list post.
pub fn post(outcome: PostOutcome) {
    METRICS.posts.get_or_create(&PostLabel { outcome }).inc();
}

/// A DMARC failure let through on a trusted sealer's ARC chain.
pub fn arc_override() {
    METRICS.arc_overrides.inc();
}

/// A post whose From was rewritten, or that was wrapped, for DMARC.
pub fn dmarc_mitigation() {
    METRICS.dmarc_mitigations.inc();
}

/// An ARC set added.
pub fn seal() {
    METRICS.seals.inc();
}

/// The store hit an I/O error and refuses writes until it is reopened.
pub fn store_failed() {
    METRICS.store_failures.inc();
    METRICS.store_broken.set(1);
}

/// The store was reopened and writes again.
pub fn store_reopened() {
    METRICS.store_reopens.inc();
    METRICS.store_broken.set(0);
}

/// What became of a message to a forwarding alias or an SRS address.
pub fn forward(outcome: ForwardOutcome) {
    METRICS
        .forwards
        .get_or_create(&ForwardLabel { outcome })
        .inc();
}

/// A returned message handled.
pub fn bounce(kind: BounceKind) {
    METRICS.bounces.get_or_create(&KindLabel { kind }).inc();
}

/// One delivery attempt for the recipient `address`.
pub fn delivery(outcome: DeliveryOutcome, address: &str) {
    let destination = destination(address);
    METRICS
        .deliveries
        .get_or_create(&DeliveryLabels {
            outcome,
            destination,
        })
        .inc();
}

/// The delivery queue as the last scan found it.
pub fn queue(pending: usize, deferred: usize, oldest_age: Duration) {
    let set = |state, n: usize| {
        METRICS
            .queue_recipients
            .get_or_create(&StateLabel { state })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    };
    set("pending", pending);
    set("deferred", deferred);
    METRICS
        .queue_oldest_age
        .set(i64::try_from(oldest_age.as_secs()).unwrap_or(i64::MAX));
}

/// How many recipients' outcomes wait in this node for the store to take them.
pub fn delivery_unrecorded(recipients: usize) {
    METRICS
        .delivery_unrecorded
        .set(i64::try_from(recipients).unwrap_or(i64::MAX));
}

/// One DNS lookup: how long it took, and whether it answered.
pub fn dns_lookup(took: Duration, result: DnsResult) {
    METRICS
        .dns_lookups
        .get_or_create(&ResultLabel { result })
        .inc();
    METRICS.dns_duration.observe(took.as_secs_f64());
}

/// The authentication engine's counts, fed into these series: the engine knows nothing of
/// this module and calls the observer [`install_auth_observer`] gives it.
struct AuthCounts;

impl arclist_auth::observe::Observer for AuthCounts {
    fn dns_lookup(&self, took: Duration, outcome: arclist_auth::observe::DnsOutcome) {
        use arclist_auth::observe::DnsOutcome;
        dns_lookup(
            took,
            match outcome {
                DnsOutcome::Answer => DnsResult::Ok,
                DnsOutcome::NotFound => DnsResult::NotFound,
                DnsOutcome::Error => DnsResult::Error,
            },
        );
    }

    fn arc_sealed(&self) {
        seal();
    }

    fn arc_override(&self) {
        arc_override();
    }
}

/// Has the authentication engine count its DNS lookups, seals and ARC overrides here. Called
/// where the server builds its authenticator; a second call (a second server in one process)
/// changes nothing.
pub fn install_auth_observer() {
    arclist_auth::observe::install(&AuthCounts);
}

/// The class of a recipient's address, for delivery counts: the big mailbox providers apart.
pub fn destination(address: &str) -> &'static str {
    destination_of_domain(address.rsplit_once('@').map_or("", |(_, d)| d))
}

/// [`destination`] of the part of an address after its last '@'.
pub fn destination_of_domain(domain: &str) -> &'static str {
    let domain = domain.to_ascii_lowercase();
    let base = domain.split('.').next().unwrap_or("");
    match base {
        "gmail" | "googlemail" => "google",
        "outlook" | "hotmail" | "live" | "msn" => "microsoft",
        "yahoo" | "ymail" | "aol" | "rocketmail" => "yahoo",
        _ => "other",
    }
}

/// A receiver's aggregate report counted `messages` of a list domain's mail with DMARC
/// `result` (`pass` or `fail`). `org` is the reporting organization's name.
pub fn dmarc_reported(org: &str, result: &'static str, messages: u64) {
    let org = org.to_ascii_lowercase();
    let receiver = if org.contains("google") {
        "google"
    } else if org.contains("outlook") || org.contains("microsoft") || org.contains("hotmail") {
        "microsoft"
    } else if org.contains("yahoo") || org.contains("aol") {
        "yahoo"
    } else {
        "other"
    };
    METRICS
        .dmarc_reported
        .get_or_create(&ReportLabels { receiver, result })
        .inc_by(messages);
}

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Everything, in Prometheus' text format (version 0.0.4).
pub fn render() -> String {
    let mut out = String::new();
    if let Err(e) =
        prometheus_client::encoding::prometheus_text::encode(&mut out, &METRICS.registry)
    {
        // Writing to a String cannot fail; a broken encoder must not take the listener down.
        return format!("# cannot encode the metrics: {e}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_help_type_and_labels() {
        post(PostOutcome::Held);
        for _ in 0..3 {
            delivery(DeliveryOutcome::Delivered, "a@gmail.com");
        }
        queue(7, 0, Duration::from_secs(5));
        dns_lookup(Duration::from_millis(3), DnsResult::Ok);
        let text = render();
        assert!(
            text.contains("# TYPE arclist_posts_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("arclist_posts_total{outcome=\"held\"} "),
            "{text}"
        );
        let delivered = "arclist_deliveries_total{outcome=\"delivered\",destination=\"google\"} ";
        let count: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(delivered))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(count >= 3.0, "{text}");
        assert!(
            text.contains("arclist_queue_recipients{state=\"pending\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("arclist_dns_lookup_duration_seconds_bucket{le=\"0.005\"} "),
            "{text}"
        );
    }

    #[test]
    fn destinations_group_the_big_providers() {
        assert_eq!(destination("a@gmail.com"), "google");
        assert_eq!(destination("a@Hotmail.co.uk"), "microsoft");
        assert_eq!(destination("a@yahoo.fr"), "yahoo");
        assert_eq!(destination("a@example.org"), "other");
    }
}
