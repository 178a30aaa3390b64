//! How a member takes a list's mail: every post, a digest, or nothing for a while. A pause
//! with an end date ends by itself: the mode in force is worked out from the record and the
//! day whenever it is read ([`crate::state::store::Member::delivery_on`]), so no task has to
//! wake up on the day and nothing is lost if the server was down then.

use serde::{Deserialize, Serialize};

/// How a member takes a list's mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMode {
    /// Every post as it is distributed (what every record written before modes existed is).
    #[default]
    Regular,
    /// A daily MIME digest (RFC 2046 §5.1.5).
    Digest,
    /// A daily plain-text digest (RFC 1153).
    DigestPlain,
    /// Nothing, while staying a member.
    Nomail,
}

impl DeliveryMode {
    /// Every mode, in the order pages offer them.
    pub const ALL: [DeliveryMode; 4] = [
        DeliveryMode::Regular,
        DeliveryMode::Digest,
        DeliveryMode::DigestPlain,
        DeliveryMode::Nomail,
    ];

    /// The name the CLI, the API, the CSV export and the pages use.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Regular => "regular",
            DeliveryMode::Digest => "digest",
            DeliveryMode::DigestPlain => "digest-plain",
            DeliveryMode::Nomail => "nomail",
        }
    }

    /// The mode named `name` (as [`Self::as_str`] writes it).
    pub fn parse(name: &str) -> Option<DeliveryMode> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether a member in this mode gets each post as it is distributed.
    pub fn gets_each_post(self) -> bool {
        self == DeliveryMode::Regular
    }

    /// Whether a member in this mode gets the list's digest.
    pub fn gets_digest(self) -> bool {
        matches!(self, DeliveryMode::Digest | DeliveryMode::DigestPlain)
    }
}

impl std::fmt::Display for DeliveryMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The UTC calendar date of Unix time `unix`, as `YYYY-MM-DD`.
pub fn date_of(unix: u64) -> String {
    let (y, m, d) = civil_from_days((unix / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `text` as a date `YYYY-MM-DD` that exists (years 1970 to 9999), written back the same way;
/// `None` for anything else.
pub fn parse_date(text: &str) -> Option<String> {
    let b = text.trim().as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = std::str::from_utf8(&b[r]).ok()?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let days = days_from_civil(y, m, d);
    // A day that does not exist (Feb 30) comes back as another date.
    (y >= 1970 && civil_from_days(days) == (y, m, d)).then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date [`parse_date`] accepted.
pub fn day_number(date: &str) -> Option<u64> {
    let date = parse_date(date)?;
    let n = |r: std::ops::Range<usize>| date[r].parse::<i64>().ok();
    u64::try_from(days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?)).ok()
}

/// Howard Hinnant's days-from-civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's civil-from-days.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_nonsense_is_refused() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_800_000_000), "2027-01-15");
        assert_eq!(parse_date("2027-01-15").as_deref(), Some("2027-01-15"));
        assert_eq!(parse_date("2028-02-29").as_deref(), Some("2028-02-29"));
        for bad in [
            "2027-02-29",
            "2027-13-01",
            "2027-1-15",
            "27-01-15",
            "2027/01/15",
            "+027-01-15",
            "1969-12-31",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(day_number("1970-01-02"), Some(1));
        assert_eq!(day_number("2027-01-15"), Some(1_800_000_000 / 86_400));
    }

    #[test]
    fn modes_have_one_name_each() {
        for m in DeliveryMode::ALL {
            assert_eq!(DeliveryMode::parse(m.as_str()), Some(m));
            let json = serde_json::to_string(&m).expect("json");
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
        assert_eq!(DeliveryMode::parse("weekly"), None);
    }

    #[test]
    fn an_old_record_is_regular_and_a_pause_ends_on_its_date() {
        use crate::state::store::Member;
        let old = r#"{"address":"a@x.example","name":"","joined_at":1,"bounce_score":0.0}"#;
        let mut m: Member = serde_json::from_str(old).expect("an old record reads");
        assert_eq!(m.delivery, DeliveryMode::Regular);
        assert!(!m.moderated && m.gets_posts_on("2027-01-01"));

        m.set_delivery(DeliveryMode::Digest, None, "2027-01-01");
        m.set_delivery(
            DeliveryMode::Nomail,
            Some("2027-01-15".into()),
            "2027-01-01",
        );
        assert_eq!(m.delivery_on("2027-01-14"), DeliveryMode::Nomail);
        assert!(!m.gets_posts_on("2027-01-14"));
        assert_eq!(m.delivery_on("2027-01-15"), DeliveryMode::Digest);
        let json = serde_json::to_string(&m).expect("json");
        let back: Member = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, m);

        // Pausing again after the date returns to the mode then in force, not to nomail.
        m.set_delivery(DeliveryMode::Nomail, None, "2027-02-01");
        assert_eq!(m.returns_to, DeliveryMode::Digest);
        assert_eq!(m.delivery_on("2099-01-01"), DeliveryMode::Nomail);
        m.set_delivery(DeliveryMode::Regular, None, "2027-02-02");
        assert_eq!((m.nomail_until, m.delivery), (None, DeliveryMode::Regular));
    }
}
