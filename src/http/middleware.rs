//! Cross-cutting response behaviour: a request id in a span and a response header, an access
//! log line without query strings, request metrics, and security headers on every response.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::Error;
use tracing::Instrument;

use crate::oidc::Untrusted;

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives each request an id, logs it with method, path (never the query, which can hold
/// codes) and status, and echoes the id in `X-Request-Id`.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = crate::secret::random_token(9);
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %Untrusted(req.path()));
    let started = std::time::Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .map(|state| state.metrics.clone());
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    if let Some(metrics) = metrics {
        let endpoint = response.request().match_pattern();
        let endpoint = endpoint.as_deref().unwrap_or("unmatched");
        metrics.request(endpoint, status, started.elapsed());
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request served"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Headers that keep pages out of frames and caches and scripts out of pages.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Frame-Options", "DENY"))
        .add((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
}
