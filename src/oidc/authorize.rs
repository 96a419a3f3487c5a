//! Validating an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636).
//!
//! Until the client and redirect URI are known good, errors are shown to the user and never
//! redirected (RFC 6749 §4.1.2.1); after that they go back to the client.

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, OAuthError};
use super::log_safe::Untrusted;
use super::params::Params;
use super::redirect::redirect_uri_matches;
use super::scope;
use crate::model::Client;
use crate::registry::ClientSet;

/// The longest `state` or `nonce` kept, in bytes.
const MAX_OPAQUE_LEN: usize = 1024;
/// The longest `login_hint` kept, in bytes; a longer one is ignored.
const MAX_HINT_LEN: usize = 256;

/// What `prompt` asked for (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: never show a page.
    pub none: bool,
    /// `login`: authenticate again even with a session.
    pub login: bool,
    /// `consent`: ask for consent again.
    pub consent: bool,
}

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI the request named.
    pub redirect_uri: String,
    /// The scopes requested and allowed (always including `openid`).
    pub scopes: Vec<String>,
    /// `state`, echoed back.
    pub state: Option<String>,
    /// `nonce`, put in the ID token.
    pub nonce: Option<String>,
    /// The S256 `code_challenge`.
    pub code_challenge: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// `login_hint`, to prefill the login form.
    pub login_hint: Option<String>,
    /// The `sub` of a verified `id_token_hint`: a session of another user does not answer
    /// this request (OIDC Core §3.1.2.1). Set by the provider, which holds the keys.
    #[serde(default)]
    pub hinted_subject: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Shown to the user; the client or redirect URI cannot be trusted.
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect {
        /// The validated redirect URI.
        redirect_uri: String,
        /// `state`, if the request had one.
        state: Option<String>,
        /// The error.
        error: OAuthError,
    },
}

/// Validates a request against the registered clients.
pub fn validate(params: &Params, clients: &ClientSet) -> Result<AuthorizationRequest, Rejection> {
    let client = trusted_client(params, clients)?;
    let redirect_uri = trusted_redirect_uri(params, client)?;
    let state = params.get("state").map(str::to_owned);
    let back = |error: OAuthError| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone().filter(|s| s.len() <= MAX_OPAQUE_LEN),
        error,
    };
    check_shape(params).map_err(back)?;
    let scopes = granted_scopes(params, client).map_err(back)?;
    let code_challenge = code_challenge(params, client).map_err(back)?;
    let prompt = prompt(params).map_err(back)?;
    let mut prompt = prompt;
    let max_age = max_age(params).map_err(back)?;
    // OIDC Core §3.1.2.1: max_age=0 means the user must authenticate now.
    prompt.login |= max_age == Some(0);
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.clone(),
        scopes,
        state,
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
        login_hint: params
            .get("login_hint")
            .filter(|h| h.len() <= MAX_HINT_LEN)
            .map(str::to_owned),
        hinted_subject: None,
    })
}

fn trusted_client<'a>(params: &Params, clients: &'a ClientSet) -> Result<&'a Client, Rejection> {
    if params.is_repeated("client_id") {
        return Err(Rejection::Page(
            "The request names more than one client.".into(),
        ));
    }
    let id = params.get("client_id");
    let id = id.ok_or_else(|| Rejection::Page("The request does not name a client.".into()))?;
    clients.get(id).map(|c| c.as_ref()).ok_or_else(|| {
        tracing::warn!(client_id = %Untrusted(id), "authorization refused: unknown client");
        Rejection::Page("The application is not registered with this identity provider.".into())
    })
}

fn trusted_redirect_uri(params: &Params, client: &Client) -> Result<String, Rejection> {
    let uri = params
        .get("redirect_uri")
        .filter(|_| !params.is_repeated("redirect_uri"));
    match uri {
        Some(uri) if redirect_uri_matches(&client.redirect_uris, uri) => Ok(uri.to_string()),
        _ => {
            tracing::warn!(client_id = %client.id, "authorization refused: redirect URI not registered");
            Err(Rejection::Page(
                "The application's redirect URI is missing or not registered for it.".into(),
            ))
        }
    }
}

fn check_shape(params: &Params) -> Result<(), OAuthError> {
    params.reject_repeated()?;
    if params.has("request") {
        return Err(OAuthError::bare(ErrorCode::RequestNotSupported));
    }
    if params.has("request_uri") {
        return Err(OAuthError::bare(ErrorCode::RequestUriNotSupported));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    if !matches!(params.get("response_mode"), None | Some("query")) {
        return Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        ));
    }
    let too_long = ["state", "nonce"]
        .iter()
        .any(|n| params.get(n).is_some_and(|v| v.len() > MAX_OPAQUE_LEN));
    if too_long {
        return Err(OAuthError::invalid_request("state or nonce is too long"));
    }
    Ok(())
}

fn granted_scopes(params: &Params, client: &Client) -> Result<Vec<String>, OAuthError> {
    let requested = params.get("scope").unwrap_or("");
    let requested = scope::parse(requested)
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "scope has invalid characters"))?;
    let granted = scope::restrict(&requested, client);
    if !scope::has(&granted, scope::OPENID) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the openid scope is required",
        ));
    }
    Ok(granted)
}

/// RFC 7636 §4.3: only S256; `plain` (and a challenge without a method, which means
/// plain) is refused. Public clients must send one.
fn code_challenge(params: &Params, client: &Client) -> Result<Option<String>, OAuthError> {
    let challenge = params.get("code_challenge");
    let method = params.get("code_challenge_method");
    match (challenge, method) {
        (None, None) if client.is_confidential() => Ok(None),
        (None, None) => Err(OAuthError::invalid_request(
            "PKCE (code_challenge, S256) is required",
        )),
        (Some(c), Some("S256")) if is_s256_challenge(c) => Ok(Some(c.to_string())),
        (Some(_), Some("S256")) => Err(OAuthError::invalid_request("code_challenge is malformed")),
        (None, Some(_)) => Err(OAuthError::invalid_request("code_challenge is missing")),
        (Some(_), _) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
    }
}

/// A base64url SHA-256 digest: 43 characters of the unreserved set.
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn prompt(params: &Params) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    for value in params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // There is one account per browser session: nothing to choose, so it is ignored
            // (and not advertised in discovery).
            "select_account" => {}
            _ => return Err(OAuthError::invalid_request("prompt has an unknown value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined",
        ));
    }
    Ok(prompt)
}

fn max_age(params: &Params) -> Result<Option<i64>, OAuthError> {
    params
        .get("max_age")
        .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0))
        .map(|v| v.ok_or_else(|| OAuthError::invalid_request("max_age must be a whole number")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GrantMethod, ObjectRef};

    const CB: &str = "https://harbor.example/c/oidc/callback";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn clients() -> ClientSet {
        let client = |id: &str, secret: Option<&str>| Client {
            id: id.into(),
            secret: secret.map(crate::secret::SecretString::new),
            grant_method: GrantMethod::Auto,
            scope_restrictions: vec!["openid".into(), "email".into()],
            redirect_uris: vec![CB.into()],
            post_logout_redirect_uris: vec![],
            trusted: false,
            access_token_max_age: None,
            access_token_inactivity_timeout: None,
            origin: ObjectRef::default(),
        };
        ClientSet::build(vec![client("harbor", Some("s")), client("cli", None)]).0
    }

    fn request(extra: &[(&str, &str)]) -> Result<AuthorizationRequest, Rejection> {
        let mut pairs = vec![
            ("client_id", "harbor"),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid email offline_access"),
            ("state", "xyz"),
        ];
        for (k, v) in extra {
            pairs.retain(|(name, _)| name != k);
            pairs.push((k, v));
        }
        validate(&Params::from_pairs(pairs), &clients())
    }

    fn redirected_code(r: Result<AuthorizationRequest, Rejection>) -> ErrorCode {
        match r {
            Err(Rejection::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"));
                error.code
            }
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn scopes_outside_restrictions_are_dropped() {
        assert_eq!(request(&[]).unwrap().scopes, ["openid", "email"]);
    }

    #[test]
    fn unknown_client_gets_a_page() {
        assert!(matches!(
            request(&[("client_id", "nope")]),
            Err(Rejection::Page(_))
        ));
    }

    #[test]
    fn unregistered_redirect_uri_gets_a_page() {
        let r = request(&[("redirect_uri", "https://evil.example/cb")]);
        assert!(matches!(r, Err(Rejection::Page(_))));
    }

    #[test]
    fn missing_openid_is_invalid_scope() {
        assert_eq!(
            redirected_code(request(&[("scope", "email")])),
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn token_response_type_is_unsupported() {
        let r = request(&[("response_type", "token")]);
        assert_eq!(redirected_code(r), ErrorCode::UnsupportedResponseType);
    }

    #[test]
    fn plain_pkce_is_refused() {
        let r = request(&[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "plain"),
        ]);
        assert_eq!(redirected_code(r), ErrorCode::InvalidRequest);
        let r = request(&[("code_challenge", CHALLENGE)]);
        assert_eq!(redirected_code(r), ErrorCode::InvalidRequest);
    }

    #[test]
    fn public_client_must_use_pkce() {
        assert_eq!(
            redirected_code(request(&[("client_id", "cli")])),
            ErrorCode::InvalidRequest
        );
        let ok = request(&[
            ("client_id", "cli"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        assert_eq!(ok.unwrap().code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn repeated_parameter_is_invalid_request() {
        let text = format!(
            "client_id=harbor&redirect_uri={}&response_type=code&scope=openid&state=xyz&scope=email",
            urlencode(CB)
        );
        let r = validate(&Params::parse(&text), &clients());
        assert_eq!(redirected_code(r), ErrorCode::InvalidRequest);
    }

    #[test]
    fn prompt_none_with_login_is_invalid() {
        assert_eq!(
            redirected_code(request(&[("prompt", "none login")])),
            ErrorCode::InvalidRequest
        );
    }

    fn urlencode(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }
}
