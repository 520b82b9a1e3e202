//! Log lines that repeat in an outage are summarised, not repeated: when the database is down
//! every request fails the same way, and one ERROR line a minute, with how many were left out,
//! says as much as thousands.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets one event through per interval and counts the others.
pub struct Throttle {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub const fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when this event should be logged, `n` being how many were held back since
    /// the last one logged; `None` when it should only be counted.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                state.1 += 1;
                None
            }
            _ => {
                let held_back = state.1;
                *state = (Some(now), 0);
                Some(held_back)
            }
        }
    }
}

/// Database errors met by requests and updates (HTTP, Telegram).
pub static STORE_ERRORS: Throttle = Throttle::new(Duration::from_secs(60));

/// Logs a store error at ERROR at most once a minute (with the count of those held back in
/// between, which go to DEBUG).
pub fn store_error(error: &dyn std::fmt::Display, what: &str) {
    match STORE_ERRORS.admit() {
        Some(held_back) => tracing::error!(
            error = %error,
            held_back,
            "{what} (further store errors within a minute are counted, not logged)"
        ),
        None => tracing::debug!(error = %error, "{what}"),
    }
}

/// Refusals and timeouts, by kind (a slow body, a request over its time, a WeChat request
/// refused, a rate limit, a wrong token): a flood of them (an attack, a misconfigured client)
/// would otherwise write one line each.
static REFUSALS: Mutex<Option<std::collections::HashMap<&'static str, (Instant, u64)>>> =
    Mutex::new(None);

/// Logs a refusal or timeout of kind `what` at WARN at most once a minute per kind, with the
/// count of those held back since (which go to DEBUG).
pub fn refusal(what: &'static str) {
    refusal_with(what, &"");
}

/// [`refusal`] with a detail that is safe to log (a reason, never a request's content).
pub fn refusal_with(what: &'static str, detail: &dyn std::fmt::Display) {
    let now = Instant::now();
    let held_back = {
        let mut map = REFUSALS.lock().unwrap_or_else(|e| e.into_inner());
        let map = map.get_or_insert_with(Default::default);
        match map.get_mut(what) {
            Some((last, count)) if now.duration_since(*last) < Duration::from_secs(60) => {
                *count += 1;
                None
            }
            _ => Some(map.insert(what, (now, 0)).map_or(0, |(_, n)| n)),
        }
    };
    match held_back {
        Some(held_back) => tracing::warn!(
            %detail,
            held_back,
            "{what} (more of these within a minute are counted, not logged)"
        ),
        None => tracing::debug!(%detail, "{what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_and_the_count_of_the_rest() {
        let t = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(t.admit_at(t0), Some(0));
        for s in 1..60 {
            assert_eq!(t.admit_at(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(t.admit_at(t0 + Duration::from_secs(60)), Some(59));
        assert_eq!(t.admit_at(t0 + Duration::from_secs(61)), None);
        assert_eq!(t.admit_at(t0 + Duration::from_secs(200)), Some(1));
    }
}
