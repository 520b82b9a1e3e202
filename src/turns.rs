//! Turns of one session run one at a time within a process: concurrent messages of a session
//! (a double-clicked send, a client retrying) queue behind each other instead of racing on
//! the stored revision. The queue is bounded: past [`TurnQueue::max_waiting`] turns of one
//! session, or after waiting [`TurnQueue::max_wait`], a turn is refused as
//! [`StoreError::Busy`](crate::store::StoreError::Busy) (HTTP 409 with `Retry-After`).
//!
//! Between replicas the store's revision check still decides; the loser retries after a
//! jittered backoff ([`backoff`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::StoreError;

/// Per-session locks of waiting and running turns, for the sessions that have any.
pub struct TurnQueue {
    sessions: Mutex<HashMap<String, Arc<Slot>>>,
    pub max_waiting: usize,
    pub max_wait: Duration,
}

struct Slot {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Turns holding or waiting for `lock` (under the map's mutex).
    users: std::sync::atomic::AtomicUsize,
}

/// The right to run a turn of one session; the next one waiting runs when this drops.
pub struct TurnGuard<'a> {
    queue: &'a TurnQueue,
    key: String,
    slot: Arc<Slot>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Default for TurnQueue {
    fn default() -> TurnQueue {
        TurnQueue::new(32, Duration::from_secs(10))
    }
}

impl TurnQueue {
    pub fn new(max_waiting: usize, max_wait: Duration) -> TurnQueue {
        TurnQueue {
            sessions: Mutex::new(HashMap::new()),
            max_waiting: max_waiting.max(1),
            max_wait,
        }
    }

    /// Waits for the turn of `session`: `Busy` when too many wait already or the wait is too
    /// long.
    pub async fn enter(&self, session: &str) -> Result<TurnGuard<'_>, StoreError> {
        use std::sync::atomic::Ordering;
        let slot = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let slot = sessions
                .entry(session.to_string())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        lock: Arc::new(tokio::sync::Mutex::new(())),
                        users: 0.into(),
                    })
                })
                .clone();
            if slot.users.load(Ordering::SeqCst) > self.max_waiting {
                return Err(StoreError::Busy);
            }
            slot.users.fetch_add(1, Ordering::SeqCst);
            slot
        };
        let lock = slot.lock.clone();
        // counted as a user from here: dropping the guard (also on a refusal) uncounts it
        let mut guard = TurnGuard {
            queue: self,
            key: session.to_string(),
            slot,
            held: None,
        };
        match tokio::time::timeout(self.max_wait, lock.lock_owned()).await {
            Ok(held) => {
                guard.held = Some(held);
                Ok(guard)
            }
            Err(_) => Err(StoreError::Busy),
        }
    }

    /// Sessions with a turn running or waiting (for tests).
    pub fn active(&self) -> usize {
        self.sessions.lock().map_or(0, |s| s.len())
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        // release the lock before forgetting the slot
        self.held = None;
        let mut sessions = self
            .queue
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.slot.users.fetch_sub(1, Ordering::SeqCst) == 1 {
            sessions.remove(&self.key);
        }
    }
}

/// How long to wait before retry `attempt` (1, 2, …) after a concurrent write by another
/// replica: exponential from 10 ms, with ±50 % jitter so that two replicas do not collide
/// again in step; at most about a second.
pub fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let base = 10u64.saturating_mul(1 << attempt.min(7));
    let jitter = rand::rng().random_range(0.5..1.5);
    Duration::from_millis((base as f64 * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_of_one_session_run_one_at_a_time_and_the_queue_is_bounded() {
        let q = Arc::new(TurnQueue::new(2, Duration::from_millis(200)));
        let first = q.enter("s").await.unwrap();
        // another session is not held up
        drop(q.enter("t").await.unwrap());
        // a second turn of "s" waits, and gets its turn when the first ends
        let q2 = q.clone();
        let waiting = tokio::spawn(async move { q2.enter("s").await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap().unwrap();
        assert_eq!(q.active(), 0, "nothing is kept for idle sessions");

        // bounded: one running, two waiting, the fourth is refused at once
        let running = q.enter("s").await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let q = q.clone();
            waiters.push(tokio::spawn(async move { q.enter("s").await.map(|_| ()) }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(q.enter("s").await, Err(StoreError::Busy)));
        // and a wait longer than max_wait is refused too
        for w in waiters {
            assert!(matches!(w.await.unwrap(), Err(StoreError::Busy)));
        }
        drop(running);
        assert_eq!(q.active(), 0);
    }

    #[test]
    fn backoff_grows_with_jitter() {
        for attempt in 1..10 {
            let d = backoff(attempt).as_millis() as u64;
            let base = 10u64 << attempt.min(7);
            assert!(d >= base / 2 && d <= base * 3 / 2, "{attempt}: {d}");
        }
    }
}
