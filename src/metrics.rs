//! Prometheus metrics (`GET /metrics`, text exposition format), through `prometheus-client`.
//!
//! | metric | what |
//! |---|---|
//! | `yidi_turns_total{kind}` | conversation turns, by reply kind: `faq`, `dialog`, `clarify`, `smalltalk`, `out_of_scope`, `unanswered` |
//! | `yidi_turn_duration_seconds` | time of a whole turn: load, the core, the transactional save |
//! | `yidi_unanswered_total` | questions the assistant could not answer (recorded for the knowledge team) |
//! | `yidi_http_requests_total{route,status}` | HTTP requests by matched route (never the raw path) |
//! | `yidi_http_request_duration_seconds{route}` | HTTP latency by matched route |
//! | `yidi_rate_limited_total{scope}` | requests refused by a rate limit: `ip` or `session` |
//!
//! The values are per process: with several replicas, Prometheus sums them.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::assistant::Reply;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: &'static str,
}

/// Latency buckets from 0.5 ms to about 8 s.
#[derive(Clone)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(latency_buckets())
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 15)
}

/// The process's metrics; cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    turns: Family<KindLabels, Counter>,
    turn_seconds: Histogram,
    unanswered: Counter,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, LatencyBuckets>,
    rate_limited: Family<ScopeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("yidi");
        let turns = Family::<KindLabels, Counter>::default();
        registry.register("turns", "Conversation turns, by reply kind", turns.clone());
        let turn_seconds = Histogram::new(latency_buckets());
        registry.register(
            "turn_duration_seconds",
            "Time of a whole conversation turn (load, answer, save)",
            turn_seconds.clone(),
        );
        let unanswered = Counter::default();
        registry.register(
            "unanswered",
            "Questions the assistant could not answer",
            unanswered.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by matched route and status",
            requests.clone(),
        );
        let request_seconds = Family::new_with_constructor(LatencyBuckets);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by matched route",
            request_seconds.clone(),
        );
        let rate_limited = Family::<ScopeLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by scope",
            rate_limited.clone(),
        );
        Metrics {
            registry,
            turns,
            turn_seconds,
            unanswered,
            requests,
            request_seconds,
            rate_limited,
        }
    }

    /// One finished turn and how long it took.
    pub fn turn(&self, reply: &Reply, elapsed: Duration) {
        let kind = reply.kind.as_str();
        self.turns.get_or_create(&KindLabels { kind }).inc();
        self.turn_seconds.observe(elapsed.as_secs_f64());
        if reply.unanswered {
            self.unanswered.inc();
        }
    }

    /// One HTTP request: `route` is the matched route template (`/v1/faq/{id}`), never the
    /// path itself, so ids and queries stay out of the metrics and the label set stays small.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A request refused by the `ip` or `session` limit.
    pub fn rate_limited(&self, scope: &'static str) {
        self.rate_limited
            .get_or_create(&ScopeLabels { scope })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_turns_by_kind_and_renders_prometheus_text() {
        let m = Metrics::new();
        let mut r = Reply::text("x");
        r.kind = crate::assistant::ReplyKind::Unanswered;
        r.unanswered = true;
        m.turn(&r, Duration::from_millis(3));
        m.turn(&Reply::text("y"), Duration::from_millis(1));
        m.request("/v1/faq/{id}", 404, Duration::from_micros(300));
        m.rate_limited("ip");
        let text = m.render();
        assert!(
            text.contains("yidi_turns_total{kind=\"unanswered\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("yidi_turns_total{kind=\"smalltalk\"} 1"),
            "{text}"
        );
        assert!(text.contains("yidi_unanswered_total 1"), "{text}");
        assert!(
            text.contains("yidi_turn_duration_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains("yidi_http_requests_total{route=\"/v1/faq/{id}\",status=\"404\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("yidi_rate_limited_total{scope=\"ip\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
