//! The one place an OAuth error becomes an HTTP response (RFC 6749 §5.2, RFC 6750 §3):
//! status, `WWW-Authenticate`, `Cache-Control: no-store` and the JSON body.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::oidc::{Challenge, OAuthError};

/// The realm named in challenges.
const REALM: &str = "kube-idp";

/// An [`OAuthError`] that actix-web can return from a handler.
#[derive(Debug)]
pub struct ApiError(pub OAuthError);

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        render(&self.0)
    }
}

/// Renders an OAuth error as its JSON response.
pub fn render(error: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response.insert_header((header::PRAGMA, "no-cache"));
    if let Some(challenge) = challenge(error) {
        response.insert_header((header::WWW_AUTHENTICATE, challenge));
    }
    let mut body = serde_json::json!({ "error": error.code.as_str() });
    if let Some(description) = &error.description {
        body["error_description"] = description.as_str().into();
    }
    response.json(body)
}

/// The `WWW-Authenticate` value. A Bearer challenge names the error only when there is one to
/// name: a request that sent no token gets the bare challenge (RFC 6750 §3.1).
fn challenge(error: &OAuthError) -> Option<HeaderValue> {
    let value = match (error.challenge?, &error.description) {
        (Challenge::Basic, _) => format!("Basic realm=\"{REALM}\""),
        (Challenge::Bearer, None) => format!("Bearer realm=\"{REALM}\""),
        (Challenge::Bearer, Some(description)) => format!(
            "Bearer realm=\"{REALM}\", error=\"{}\", error_description=\"{}\"",
            error.code.as_str(),
            description.replace(['"', '\\'], "")
        ),
    };
    HeaderValue::from_str(&value).ok()
}
