//! Per-user rate limits (GCRA, through `governor`): one bucket per client IP for the public
//! HTTP API and one per conversation (an HTTP session or a Telegram chat) for messages.
//!
//! The buckets live in the process's memory: behind a load balancer each replica limits on
//! its own, so the effective limit is at most the configured one times the replicas. That
//! is enough to stop a script hammering the API; it is not an accounting of usage.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ip,
    Session,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::Session => "session",
        }
    }
}

/// A refusal: which limit, and how long until the next request would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for a `Retry-After` header (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }

    /// The Chinese message for an end user.
    pub fn message(&self) -> String {
        match self.scope {
            Scope::Ip => format!("请求太频繁了，请 {} 秒后再试。", self.retry_after_secs()),
            Scope::Session => format!(
                "您发消息的速度有点快，我需要喘口气，请 {} 秒后再发。",
                self.retry_after_secs()
            ),
        }
    }
}

pub struct RateLimits {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    session: DefaultKeyedRateLimiter<String>,
    /// One refusal note a minute per conversation: a flooding chat is told once, then
    /// ignored, so its notes cannot crowd out other users' replies.
    notice: DefaultKeyedRateLimiter<String>,
    /// Database look-ups of console sessions for requests over their IP's limit.
    lookup: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    trust_forwarded_for: bool,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("ips", &self.ip.len())
            .field("sessions", &self.session.len())
            .finish()
    }
}

/// The bucket key of a client: IPv4 as is (also when mapped into IPv6), IPv6 by its /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let nz = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(nz(per_minute)).allow_burst(nz(burst))
}

impl RateLimits {
    pub fn new(limits: &Limits) -> RateLimits {
        RateLimits {
            ip: RateLimiter::keyed(quota(limits.per_ip_per_minute, limits.per_ip_burst)),
            session: RateLimiter::keyed(quota(
                limits.per_session_per_minute,
                limits.per_session_burst,
            )),
            notice: RateLimiter::keyed(quota(1, 1)),
            lookup: RateLimiter::keyed(quota(limits.per_ip_per_minute, limits.per_ip_burst)),
            clock: DefaultClock::default(),
            trust_forwarded_for: limits.trust_forwarded_for,
        }
    }

    /// Whether the client IP is taken from `X-Forwarded-For`.
    pub fn trust_forwarded_for(&self) -> bool {
        self.trust_forwarded_for
    }

    /// One request from `ip`. IPv6 clients are counted by their /64 network: one host
    /// usually holds a whole /64 and could otherwise rotate addresses past the limit.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Limited> {
        self.ip.check_key(&ip_key(ip)).map_err(|not_until| Limited {
            scope: Scope::Ip,
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// One message in conversation `key` (`session:…`, `telegram:…`).
    pub fn check_session(&self, key: &str) -> Result<(), Limited> {
        self.session
            .check_key(&key.to_string())
            .map_err(|not_until| Limited {
                scope: Scope::Session,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Whether a request over its IP's limit may still have its console session looked up
    /// (an allowance as large as the IP's own; the IP is keyed as in [`RateLimits::check_ip`]).
    pub fn check_lookup(&self, ip: IpAddr) -> bool {
        self.lookup.check_key(&ip_key(ip)).is_ok()
    }

    /// Whether a conversation that was just refused should be told so: at most once a
    /// minute per conversation.
    pub fn should_notify(&self, key: &str) -> bool {
        self.notice.check_key(&key.to_string()).is_ok()
    }

    /// Forgets buckets that are full again (call now and then, so memory stays bounded by
    /// the recently active users).
    pub fn retain_recent(&self) {
        self.ip.retain_recent();
        self.session.retain_recent();
        self.notice.retain_recent();
        self.lookup.retain_recent();
    }

    /// Buckets held: (IPs, conversations).
    pub fn len(&self) -> (usize, usize) {
        (self.ip.len(), self.session.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, burst: u32) -> Limits {
        Limits {
            per_ip_per_minute: per_minute,
            per_ip_burst: burst,
            per_session_per_minute: per_minute,
            per_session_burst: burst,
            trust_forwarded_for: false,
        }
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_wait() {
        let l = RateLimits::new(&limits(6, 3));
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..3 {
            l.check_ip(ip).unwrap();
        }
        let refused = l.check_ip(ip).unwrap_err();
        assert_eq!(refused.scope, Scope::Ip);
        // 6 per minute: one more every 10 s
        assert!(refused.retry_after <= Duration::from_secs(10));
        assert!((1..=10).contains(&refused.retry_after_secs()));
        assert!(refused.message().contains("秒后再试"));
        // another IP and the sessions are separate buckets
        l.check_ip("203.0.113.8".parse().unwrap()).unwrap();
        l.check_session("session:a").unwrap();
        assert_eq!(l.len(), (2, 1));
    }

    #[test]
    fn sessions_are_limited_each_on_their_own() {
        let l = RateLimits::new(&limits(60, 2));
        l.check_session("telegram:1").unwrap();
        l.check_session("telegram:1").unwrap();
        let e = l.check_session("telegram:1").unwrap_err();
        assert_eq!(e.scope, Scope::Session);
        assert!(e.message().contains("秒后再发"));
        l.check_session("telegram:2").unwrap();
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let l = RateLimits::new(&limits(6, 2));
        l.check_ip("2001:db8:1:2::1".parse().unwrap()).unwrap();
        l.check_ip("2001:db8:1:2:ffff::9".parse().unwrap()).unwrap();
        assert!(l.check_ip("2001:db8:1:2::abcd".parse().unwrap()).is_err());
        // another /64, and IPv4 (also when mapped into IPv6) are separate
        l.check_ip("2001:db8:1:3::1".parse().unwrap()).unwrap();
        l.check_ip("::ffff:203.0.113.9".parse().unwrap()).unwrap();
        l.check_ip("203.0.113.9".parse().unwrap()).unwrap();
        assert!(l.check_ip("203.0.113.9".parse().unwrap()).is_err());
    }

    #[test]
    fn a_refused_conversation_is_told_once_a_minute() {
        let l = RateLimits::new(&limits(60, 1));
        assert!(l.should_notify("telegram:1"));
        assert!(!l.should_notify("telegram:1"));
        assert!(l.should_notify("telegram:2"));
    }

    #[test]
    fn retry_after_rounds_up() {
        let l = Limited {
            scope: Scope::Ip,
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(l.retry_after_secs(), 2);
        let l = Limited {
            scope: Scope::Ip,
            retry_after: Duration::ZERO,
        };
        assert_eq!(l.retry_after_secs(), 1);
    }
}
