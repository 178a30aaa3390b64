//! Our Received field (RFC 5321 §4.4) and RFC 5322 dates.

use crate::state::store::SpoolMeta;

/// `Received: from HELO ([IP]) by HOST (arclist) with PROTO id ID for <LIST>; DATE` value.
pub fn received(meta: &SpoolMeta, hostname: &str, list: &str) -> String {
    let helo: String = meta
        .envelope
        .helo
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    format!(
        "from {helo} ([{}]) by {hostname} (arclist) with {} id {} for <{list}>; {}",
        meta.envelope.client_ip,
        meta.envelope.protocol,
        meta.id,
        rfc5322_date(meta.envelope.received_at)
    )
}

/// An RFC 5322 date in UTC: `Sun, 22 Nov 2026 15:00:00 +0000`.
pub fn rfc5322_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{}, {day} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            super::rfc5322_date(1_795_360_260),
            "Sun, 22 Nov 2026 15:11:00 +0000"
        );
        assert_eq!(
            super::rfc5322_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
    }
}
