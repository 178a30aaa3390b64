//! Console sessions: a random token in an `HttpOnly`, `SameSite=Strict` cookie, held in
//! memory (a restart logs everyone out), each with its own CSRF token for its forms. Bounded:
//! idle sessions end after [`IDLE`], and at most [`MAX_SESSIONS`] exist at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// Sessions at once; a login beyond this ends the longest idle one.
pub const MAX_SESSIONS: usize = 1024;
/// Sessions one person may hold; their next login ends their oldest, never someone else's.
pub const PER_USER: usize = 16;
/// However active, a session ends this long after its login.
pub const LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The cookie's name.
pub const COOKIE: &str = "arclist_console";

/// A logged-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// Their login name.
    pub user: String,
    /// The token every form of theirs must carry.
    pub csrf: String,
    started: Instant,
    last_used: Instant,
}

impl Session {
    fn live(&self) -> bool {
        self.last_used.elapsed() < IDLE && self.started.elapsed() < LIFETIME
    }
}

/// Every live session, by token.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

/// Our cookie's value in a `Cookie` field.
fn cookie_value(header: &str) -> Option<String> {
    header.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE).then(|| value.to_string())
    })
}

/// 32 random bytes as hex.
fn token() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// A new session for `user`; its token.
    pub fn start(&self, user: &str) -> Option<String> {
        let (id, csrf) = (token()?, token()?);
        let mut all = self.0.lock().ok()?;
        all.retain(|_, s| s.live());
        let theirs = all.values().filter(|s| s.user == user).count();
        let evict = if theirs >= PER_USER {
            all.iter()
                .filter(|(_, s)| s.user == user)
                .min_by_key(|(_, s)| s.last_used)
        } else if all.len() >= MAX_SESSIONS {
            all.iter().min_by_key(|(_, s)| s.last_used)
        } else {
            None
        };
        if let Some(oldest) = evict.map(|(k, _)| k.clone()) {
            all.remove(&oldest);
        }
        all.insert(
            id.clone(),
            Session {
                user: user.to_string(),
                csrf,
                started: Instant::now(),
                last_used: Instant::now(),
            },
        );
        Some(id)
    }

    /// The session whose token the request's `Cookie` field carries, if live.
    pub fn find(&self, cookie_header: Option<&str>) -> Option<Session> {
        let id = cookie_value(cookie_header?)?;
        let mut all = self.0.lock().ok()?;
        let session = all.get_mut(&id)?;
        if !session.live() {
            all.remove(&id);
            return None;
        }
        session.last_used = Instant::now();
        Some(session.clone())
    }

    /// Ends the session the cookie names.
    pub fn end(&self, cookie_header: Option<&str>) {
        let Some(id) = cookie_header.and_then(cookie_value) else {
            return;
        };
        if let Ok(mut all) = self.0.lock() {
            all.remove(&id);
        }
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            self.csrf.as_bytes(),
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends() {
        let sessions = Sessions::default();
        let id = sessions.start("ann").expect("session");
        let cookie = format!("other=1; {COOKIE}={id}");
        let s = sessions.find(Some(&cookie)).expect("found");
        assert_eq!(s.user, "ann");
        assert!(s.csrf_ok(&s.csrf.clone()));
        assert!(!s.csrf_ok("forged"));
        assert!(sessions.find(Some(&format!("{COOKIE}=guess"))).is_none());
        sessions.end(Some(&cookie));
        assert!(sessions.find(Some(&cookie)).is_none());
    }

    #[test]
    fn one_person_cannot_crowd_out_the_others() {
        let sessions = Sessions::default();
        let bob = sessions.start("bob").expect("session");
        let first = sessions.start("eve").expect("session");
        for _ in 0..PER_USER {
            sessions.start("eve").expect("session");
        }
        assert!(sessions.find(Some(&format!("{COOKIE}={bob}"))).is_some());
        assert!(
            sessions.find(Some(&format!("{COOKIE}={first}"))).is_none(),
            "eve's oldest session ended"
        );
    }
}
