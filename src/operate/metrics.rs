//! Counters and gauges for Prometheus, rendered in its text format (version 0.0.4) by the admin
//! listener. One process-wide registry: every stage counts what it does with one call, and
//! nothing has to be threaded through the pipeline to do so.
//!
//! Hand-written rather than the `metrics` crate family: a dozen series, label values from
//! fixed small sets, and a scrape endpoint that already exists; the exporter crate would bring
//! an HTTP stack of its own.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Every series arclist exports: name, type, help.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "arclist_smtp_sessions_total",
        "counter",
        "SMTP and LMTP sessions opened.",
    ),
    (
        "arclist_messages_spooled_total",
        "counter",
        "Messages accepted (250) and committed to the spool.",
    ),
    (
        "arclist_messages_refused_total",
        "counter",
        "Messages refused at the end of DATA, by reason.",
    ),
    (
        "arclist_recipients_refused_total",
        "counter",
        "RCPT TO refused: not served here, or a bad SRS address.",
    ),
    (
        "arclist_auth_results_total",
        "counter",
        "Verdicts on arrival, by method (spf, dkim, dmarc, arc) and result.",
    ),
    (
        "arclist_posts_total",
        "counter",
        "List posts by outcome (queued, held, rejected, discarded).",
    ),
    (
        "arclist_arc_overrides_total",
        "counter",
        "DMARC failures let through on a trusted sealer's ARC chain.",
    ),
    (
        "arclist_dmarc_mitigations_total",
        "counter",
        "Posts whose From was rewritten or that were wrapped for DMARC.",
    ),
    (
        "arclist_seals_total",
        "counter",
        "ARC sets added (one per post or forwarded message).",
    ),
    (
        "arclist_forwards_total",
        "counter",
        "Messages to forwarding aliases, by outcome.",
    ),
    (
        "arclist_bounces_total",
        "counter",
        "Returned messages by kind (hard, soft, policy, delayed, complaint).",
    ),
    (
        "arclist_deliveries_total",
        "counter",
        "Delivery attempts by outcome and destination (google, microsoft, yahoo, other).",
    ),
    (
        "arclist_queue_recipients",
        "gauge",
        "Recipients waiting in the delivery queue, by state.",
    ),
    (
        "arclist_queue_oldest_age_seconds",
        "gauge",
        "Age of the oldest post with recipients still waiting.",
    ),
    (
        "arclist_dns_lookups_total",
        "counter",
        "DNS lookups by result (ok, not_found, error).",
    ),
    (
        "arclist_dns_lookup_duration_seconds",
        "histogram",
        "Time DNS lookups took.",
    ),
];

/// Upper bounds of the DNS latency histogram, in seconds.
const DNS_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Registry {
    values: BTreeMap<(&'static str, Labels), f64>,
    dns_buckets: [u64; 8],
    dns_count: u64,
    dns_sum: f64,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Adds one to counter `name` with `pairs` as labels.
pub fn inc(name: &'static str, pairs: &[(&'static str, &str)]) {
    add(name, pairs, 1);
}

/// Adds `n` to counter `name`.
pub fn add(name: &'static str, pairs: &[(&'static str, &str)], n: u64) {
    if let Ok(mut r) = REGISTRY.lock() {
        *r.values.entry((name, labels(pairs))).or_default() += n as f64;
    }
}

/// Sets gauge `name`.
pub fn set(name: &'static str, pairs: &[(&'static str, &str)], value: f64) {
    if let Ok(mut r) = REGISTRY.lock() {
        r.values.insert((name, labels(pairs)), value);
    }
}

/// Records one DNS lookup: how long, and whether it answered.
pub fn dns_lookup(took: Duration, result: &'static str) {
    let secs = took.as_secs_f64();
    if let Ok(mut r) = REGISTRY.lock() {
        *r.values
            .entry(("arclist_dns_lookups_total", labels(&[("result", result)])))
            .or_default() += 1.0;
        for (i, bound) in DNS_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                r.dns_buckets[i] += 1;
            }
        }
        r.dns_count += 1;
        r.dns_sum += secs;
    }
}

/// The class of a recipient domain, for delivery counts: the big mailbox providers apart.
pub fn destination(address: &str) -> &'static str {
    let domain = address
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase();
    let base = domain.split('.').next().unwrap_or("");
    match base {
        "gmail" | "googlemail" => "google",
        "outlook" | "hotmail" | "live" | "msn" => "microsoft",
        "yahoo" | "ymail" | "aol" | "rocketmail" => "yahoo",
        _ => "other",
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything, in Prometheus' text format.
pub fn render() -> String {
    let Ok(r) = REGISTRY.lock() else {
        return String::new();
    };
    let mut out = String::new();
    for (name, kind, help) in FAMILIES {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        if *name == "arclist_dns_lookup_duration_seconds" {
            for (i, bound) in DNS_BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "{name}_bucket{{le=\"{bound}\"}} {}\n",
                    r.dns_buckets[i]
                ));
            }
            out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {}\n", r.dns_count));
            out.push_str(&format!(
                "{name}_sum {}\n{name}_count {}\n",
                r.dns_sum, r.dns_count
            ));
            continue;
        }
        for ((n, l), v) in r.values.range((*name, Vec::new())..) {
            if n != name {
                break;
            }
            let l: Vec<String> = l
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            if l.is_empty() {
                out.push_str(&format!("{name} {v}\n"));
            } else {
                out.push_str(&format!("{name}{{{}}} {v}\n", l.join(",")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of one series.
    fn value(name: &'static str, pairs: &[(&'static str, &str)]) -> f64 {
        REGISTRY
            .lock()
            .ok()
            .and_then(|r| r.values.get(&(name, labels(pairs))).copied())
            .unwrap_or(0.0)
    }

    #[test]
    fn renders_prometheus_text_with_help_type_and_labels() {
        inc("arclist_posts_total", &[("outcome", "held")]);
        add(
            "arclist_deliveries_total",
            &[("outcome", "delivered"), ("destination", "google")],
            3,
        );
        set("arclist_queue_recipients", &[("state", "pending")], 7.0);
        dns_lookup(Duration::from_millis(3), "ok");
        let text = render();
        assert!(text.contains("# TYPE arclist_posts_total counter\n"));
        assert!(text.contains("arclist_posts_total{outcome=\"held\"} "));
        assert!(
            text.contains(
                "arclist_deliveries_total{outcome=\"delivered\",destination=\"google\"} "
            )
        );
        assert!(text.contains("arclist_queue_recipients{state=\"pending\"} 7\n"));
        assert!(text.contains("arclist_dns_lookup_duration_seconds_bucket{le=\"0.005\"} "));
        assert!(
            value(
                "arclist_deliveries_total",
                &[("outcome", "delivered"), ("destination", "google")]
            ) >= 3.0
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
