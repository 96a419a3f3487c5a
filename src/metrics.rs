//! Prometheus metrics: requests by endpoint and status with latency, sign-ins, tokens by
//! grant, the registry's sizes and watch restarts. Served at `/metrics` in the text format.
//!
//! Labels are closed sets (route patterns, not paths; grant names, not parameters), so no
//! request can grow the number of series. Nothing here depends on actix-web.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// An HTTP request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    status: u16,
}

/// A latency histogram's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

/// One label, `result`, `grant` or `resource`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: &'static str,
}

/// Every metric kube-idp exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    logins: Family<ResultLabels, Counter>,
    tokens: Family<GrantLabels, Counter>,
    watch_restarts: Family<ResourceLabels, Counter>,
    clients: Gauge,
    users: Gauge,
}

/// The handle everything that counts shares.
pub type SharedMetrics = Arc<Metrics>;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `kube_idp` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kube_idp");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let logins = Family::<ResultLabels, Counter>::default();
        let tokens = Family::<GrantLabels, Counter>::default();
        let watch_restarts = Family::<ResourceLabels, Counter>::default();
        let (clients, users) = (Gauge::default(), Gauge::default());
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("logins", "Sign-in attempts by result", logins.clone());
        registry.register(
            "tokens_issued",
            "Token responses by grant type",
            tokens.clone(),
        );
        registry.register(
            "watch_restarts",
            "Kubernetes watches restarted after an error, by resource",
            watch_restarts.clone(),
        );
        registry.register("registry_clients", "OAuth clients loaded", clients.clone());
        registry.register("registry_users", "Users loaded", users.clone());
        Self {
            registry,
            requests,
            latency,
            logins,
            tokens,
            watch_restarts,
            clients,
            users,
        }
    }

    /// Counts a served request; `endpoint` is the route pattern, or `other` for none.
    pub fn request(&self, endpoint: &str, status: u16, elapsed: Duration) {
        let endpoint = endpoint.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.clone(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a sign-in: `succeeded` or `failed`.
    pub fn login(&self, succeeded: bool) {
        let result = if succeeded { "succeeded" } else { "failed" };
        self.logins.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts a token response for `grant` (`authorization_code`, `refresh_token`, ...).
    pub fn token_issued(&self, grant: &'static str) {
        self.tokens.get_or_create(&GrantLabels { grant }).inc();
    }

    /// Counts a watch that failed and restarts, for `resource` (`secrets`, `users`).
    pub fn watch_restarted(&self, resource: &'static str) {
        self.watch_restarts
            .get_or_create(&ResourceLabels { resource })
            .inc();
    }

    /// The exposition text, with the registry sizes as of now.
    pub fn render(&self, clients: usize, users: usize) -> String {
        self.clients.set(i64::try_from(clients).unwrap_or(i64::MAX));
        self.users.set(i64::try_from(users).unwrap_or(i64::MAX));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.request("/oauth/token", 200, Duration::from_millis(3));
        metrics.login(false);
        metrics.token_issued("authorization_code");
        let text = metrics.render(2, 5);
        assert!(
            text.contains(
                r#"kube_idp_http_requests_total{endpoint="/oauth/token",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"kube_idp_logins_total{result="failed"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"kube_idp_tokens_issued_total{grant="authorization_code"} 1"#));
        assert!(text.contains("kube_idp_registry_clients 2"));
        assert!(text.contains("kube_idp_registry_users 5"));
        assert!(text.contains(r#"kube_idp_http_request_duration_seconds_bucket{le="0.004",endpoint="/oauth/token"} 1"#), "{text}");
    }
}
