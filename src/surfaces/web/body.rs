//! Reading a request body within bounds: a largest size, a deadline for the whole body and a
//! minimum average rate. The header-read timeout does not cover bodies, so without these a
//! client could hold a request open for as long as the request's time limit by sending one
//! byte every few seconds (slowloris on the body).

use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use std::time::Duration;
use tokio::time::Instant;

/// The bounds of one body.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Largest body read; a larger one is refused with 413.
    pub max: usize,
    /// Time before the minimum rate applies (a body's first bytes may take a round trip).
    pub grace: Duration,
    /// Bytes per second the body must average after `grace`; 0 for no minimum.
    pub min_rate: u64,
    /// Time for the whole body, when bounded by more than the request's own limit.
    pub deadline: Option<Duration>,
}

/// Why a body was not read: the status to answer and a line for the client and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// 400, 408 or 413.
    pub status: u16,
    /// What went wrong, for a person.
    pub why: &'static str,
}

impl Pace {
    /// When the next bytes must have arrived, `received` having come since `start`: the
    /// moment the average would fall below `min_rate`, and never after the deadline.
    fn due(&self, start: Instant, received: usize) -> Option<Instant> {
        let by_rate = (self.min_rate > 0).then(|| {
            let needed = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
            start + needed.max(self.grace)
        });
        let by_deadline = self.deadline.map(|d| start + d);
        match (by_rate, by_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The whole body, de-chunked, within `pace`.
pub async fn read(mut body: Incoming, pace: &Pace) -> Result<Bytes, Refused> {
    use hyper::body::Body;
    let too_large = Refused {
        status: 413,
        why: "request body too large",
    };
    // A declared length beyond the bound is refused before a byte of it is read.
    if body.size_hint().lower() > pace.max as u64 {
        return Err(too_large);
    }
    let start = Instant::now();
    let mut whole: Vec<u8> = Vec::new();
    loop {
        let next = body.frame();
        let frame = match pace.due(start, whole.len()) {
            Some(due) => match tokio::time::timeout_at(due, next).await {
                Ok(frame) => frame,
                Err(_) => {
                    return Err(Refused {
                        status: 408,
                        why: "request body sent too slowly",
                    });
                }
            },
            None => next.await,
        };
        let Some(frame) = frame else {
            return Ok(Bytes::from(whole));
        };
        let Ok(frame) = frame else {
            return Err(Refused {
                status: 400,
                why: "unreadable request body",
            });
        };
        if let Ok(data) = frame.into_data() {
            if whole.len() + data.len() > pace.max {
                return Err(too_large);
            }
            whole.extend_from_slice(&data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_moves_the_due_time_and_the_deadline_caps_it() {
        let start = Instant::now();
        let pace = Pace {
            max: 1 << 20,
            grace: Duration::from_secs(5),
            min_rate: 1000,
            deadline: Some(Duration::from_secs(30)),
        };
        // Nothing yet: the grace period.
        assert_eq!(pace.due(start, 0), Some(start + Duration::from_secs(5)));
        // 10,000 bytes at 1,000 a second buy 10 s from the start.
        assert_eq!(
            pace.due(start, 10_000),
            Some(start + Duration::from_secs(10))
        );
        // A fast start does not buy more than the deadline.
        assert_eq!(
            pace.due(start, 1_000_000),
            Some(start + Duration::from_secs(30))
        );
        let open = Pace {
            min_rate: 0,
            deadline: None,
            ..pace
        };
        assert_eq!(open.due(start, 0), None);
    }
}
