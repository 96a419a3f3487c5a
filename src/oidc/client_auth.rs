//! Client authentication at the token, revocation and introspection endpoints (RFC 6749
//! §2.3): `client_secret_basic`, `client_secret_post`, or a public client's `client_id`.
//! One method per request; every failure is the same `invalid_client`.

use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::error::{Challenge, OAuthError};
use super::log_safe::Untrusted;
use super::params::Params;
use super::Provider;
use crate::model::Client;
use crate::secret::SecretString;

/// The lockout kind counting failed client authentications per address.
const THROTTLE_KIND: &str = "client-addr";

/// Which way a client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMethod {
    Basic,
    Post,
    None,
}

impl Provider {
    /// Authenticates the client of a back-channel request. `authorization` is the
    /// `Authorization` header, if sent.
    pub(crate) async fn authenticate_client(
        &self,
        form: &Params,
        authorization: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<Arc<Client>, OAuthError> {
        let basic = authorization.map(parse_basic).transpose()?;
        let body_id = form.get("client_id");
        let body_secret = form.get("client_secret");
        let (id, secret, method) = match (basic, body_secret) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method",
                ))
            }
            (Some((id, _)), None) if body_id.is_some_and(|b| b != id) => {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the credentials",
                ))
            }
            (Some((id, secret)), None) => (id, Some(secret), AuthMethod::Basic),
            (None, secret) => {
                let id = body_id.ok_or_else(unauthenticated)?;
                let method = if secret.is_some() {
                    AuthMethod::Post
                } else {
                    AuthMethod::None
                };
                (id.to_string(), secret.map(str::to_owned), method)
            }
        };
        let address = source.map(|ip| ip.to_string());
        if let Some(address) = &address {
            if self.is_locked(THROTTLE_KIND, address).await? {
                tracing::warn!(client_id = %Untrusted(&id), source = %address, "client authentication refused: address blocked");
                return Err(unauthenticated());
            }
        }
        let result = self.check_client_secret(&id, secret.as_deref(), method);
        if let (Err(_), Some(address)) = (&result, &address) {
            let limit = self.lockout.address_failures;
            if self.count_failure(THROTTLE_KIND, address, limit).await? {
                tracing::warn!(source = %address, "address blocked after repeated client authentication failures");
            }
        }
        result
    }

    fn check_client_secret(
        &self,
        id: &str,
        presented: Option<&str>,
        method: AuthMethod,
    ) -> Result<Arc<Client>, OAuthError> {
        let refuse = |reason: &str| {
            tracing::warn!(client_id = %Untrusted(id), ?method, reason, "client authentication failed");
            unauthenticated()
        };
        let client = self.registry.clients().get(id).cloned();
        let Some(client) = client else {
            SecretString::default().matches(presented.unwrap_or(""));
            return Err(refuse("unknown client"));
        };
        let matches = |secret: &SecretString, p: &str| match method {
            AuthMethod::Basic => secret.matches(&decode_component(p)) | secret.matches(p),
            _ => secret.matches(p),
        };
        match (&client.secret, presented) {
            (Some(secret), Some(p)) if matches(secret, p) => Ok(client),
            (Some(_), _) => Err(refuse("wrong or missing secret")),
            (None, None) => Ok(client),
            // Some libraries send Basic with an empty secret for a public client.
            (None, Some("")) if method == AuthMethod::Basic => Ok(client),
            (None, Some(_)) => Err(refuse("public client sent a secret")),
        }
    }
}

fn unauthenticated() -> OAuthError {
    OAuthError::invalid_client().with_challenge(Challenge::Basic)
}

/// Parses `Authorization: Basic`: base64 of the form-urlencoded client id and secret joined
/// by a colon (RFC 6749 §2.3.1). The secret is returned still encoded: the caller tries it
/// both decoded and as sent, for clients that skip the encoding.
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let (scheme, value) = header.trim().split_once(' ').ok_or_else(unauthenticated)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthenticated());
    }
    let bytes = STANDARD
        .decode(value.trim())
        .map_err(|_| unauthenticated())?;
    let text = String::from_utf8(bytes).map_err(|_| unauthenticated())?;
    let (id, secret) = text.split_once(':').ok_or_else(unauthenticated)?;
    Ok((decode_component(id), secret.to_string()))
}

/// Decodes one form-urlencoded component (`+` is a space).
fn decode_component(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my+client%3A1:p%3Aw%25d%2B"));
        let (id, secret) = parse_basic(&header).unwrap();
        assert_eq!(id, "my client:1");
        assert_eq!(decode_component(&secret), "p:w%d+");
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(parse_basic("Bearer abc").is_err());
        assert!(parse_basic("Basic !!!").is_err());
    }
}
