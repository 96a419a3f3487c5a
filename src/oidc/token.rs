//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6; RFC 7636 §4.6): client authentication,
//! the authorization-code grant and the refresh-token grant with rotation.

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::claims::IdTokenContext;
use super::error::{Challenge, ErrorCode, OAuthError};
use super::params::Params;
use super::scope;
use super::session::{code_key, CodeGrant, TOKEN_BYTES};
use super::Provider;
use crate::model::{Account, Client};
use crate::secret::{random_token, storage_key, SecretString};
use crate::time::Timestamp;

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The JWT access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The ID token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes.
    pub scope: String,
}

/// A line of refresh tokens descending from one code; each refresh replaces the current
/// token, and presenting a replaced one revokes the family.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshFamily {
    client_id: String,
    username: String,
    scopes: Vec<String>,
    auth_time: Timestamp,
    offline: bool,
    /// Storage key of the current token's secret.
    current: String,
    /// Storage keys of the secrets it replaced.
    replaced: Vec<String>,
    /// When the family ends regardless of use.
    expires_at: Timestamp,
}

/// Replaced secrets remembered per family, for reuse detection.
const MAX_REPLACED: usize = 32;

fn family_key(id: &str) -> String {
    format!("refresh:{id}")
}

/// Which way a client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMethod {
    Basic,
    Post,
    None,
}

impl Provider {
    /// The token endpoint. `authorization` is the `Authorization` header, if sent.
    pub async fn token(
        &self,
        form: &Params,
        authorization: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        if let Some(name) = form.first_repeated() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        let client = self.authenticate_client(form, authorization)?;
        match form.get("grant_type") {
            Some("authorization_code") | Some("code") => self.code_grant(&client, form).await,
            Some("refresh_token") => self.refresh_grant(&client, form).await,
            // TODO(#4): the password grant for trusted clients.
            Some(_) => Err(OAuthError::bare(ErrorCode::UnsupportedGrantType)),
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }
    }

    /// RFC 6749 §2.3: `client_secret_basic`, `client_secret_post`, or a public client's
    /// `client_id` alone. One method per request.
    fn authenticate_client(
        &self,
        form: &Params,
        authorization: Option<&str>,
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
                let id = body_id
                    .ok_or_else(|| OAuthError::invalid_client().with_challenge(Challenge::Basic))?;
                let method = if secret.is_some() {
                    AuthMethod::Post
                } else {
                    AuthMethod::None
                };
                (id.to_string(), secret.map(str::to_owned), method)
            }
        };
        self.check_client_secret(&id, secret.as_deref(), method)
    }

    fn check_client_secret(
        &self,
        id: &str,
        presented: Option<&str>,
        method: AuthMethod,
    ) -> Result<Arc<Client>, OAuthError> {
        let refuse = |reason: &str| {
            tracing::warn!(client_id = %id, ?method, reason, "client authentication failed");
            OAuthError::invalid_client().with_challenge(Challenge::Basic)
        };
        let client = self.registry.clients().get(id).cloned();
        let Some(client) = client else {
            SecretString::default().matches(presented.unwrap_or(""));
            return Err(refuse("unknown client"));
        };
        let matches = |secret: &SecretString, p: &str| match method {
            AuthMethod::Basic => secret.matches(&decode_component(p, true)) | secret.matches(p),
            _ => secret.matches(p),
        };
        match (&client.secret, presented) {
            (Some(secret), Some(p)) if matches(secret, p) => Ok(client),
            (Some(_), _) => Err(refuse("wrong or missing secret")),
            (None, None) => Ok(client),
            (None, Some(_)) => Err(refuse("public client sent a secret")),
        }
    }

    async fn code_grant(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let code = form
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        let Some(grant) = self.store.take::<CodeGrant>(&code_key(code)).await? else {
            tracing::warn!(client_id = %client.id, "code refused: unknown, used or expired");
            return Err(OAuthError::invalid_grant());
        };
        check_code(&grant, client, form, self.clock.now())?;
        let account = self.active_account(&grant.username)?;
        let offline = scope::has(&grant.scopes, scope::OFFLINE_ACCESS);
        let refresh = if client.is_confidential() || offline {
            Some(self.new_family(client, &grant, offline).await?)
        } else {
            None
        };
        tracing::info!(client_id = %client.id, user = %account.username, "tokens issued for a code");
        self.respond(
            client,
            &account,
            &grant.scopes,
            grant.nonce.as_deref(),
            grant.auth_time,
            refresh,
        )
    }

    async fn refresh_grant(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let token = form.get("refresh_token");
        let token =
            token.ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let (family_id, secret) = token
            .split_once('.')
            .ok_or_else(OAuthError::invalid_grant)?;
        let key = family_key(family_id);
        let Some(family) = self.store.get::<RefreshFamily>(&key).await? else {
            return Err(OAuthError::invalid_grant());
        };
        let now = self.clock.now();
        let presented = storage_key(secret);
        if family.client_id != client.id || family.expires_at <= now {
            tracing::warn!(client_id = %client.id, "refresh refused: another client's or expired");
            return Err(OAuthError::invalid_grant());
        }
        if family.current != presented {
            if family.replaced.contains(&presented) {
                // TODO(#4): a grace window for a confidential client's concurrent refreshes.
                tracing::warn!(client_id = %client.id, user = %family.username, "replaced refresh token reused; family revoked");
                self.store.delete(&key).await?;
            }
            return Err(OAuthError::invalid_grant());
        }
        let scopes = narrowed_scopes(&family.scopes, form.get("scope"))?;
        let account = self.active_account(&family.username)?;
        let new_secret = random_token(TOKEN_BYTES);
        let mut next = family.clone();
        next.replaced.push(next.current.clone());
        if next.replaced.len() > MAX_REPLACED {
            next.replaced.remove(0);
        }
        next.current = storage_key(&new_secret);
        next.expires_at = self.refresh_expiry(next.offline, next.auth_time, now);
        let ttl = (next.expires_at - now).max(1) as u64;
        if !self.store.swap(&key, &family, &next, ttl).await? {
            return Err(OAuthError::invalid_grant());
        }
        let refresh = Some(format!("{family_id}.{new_secret}"));
        self.respond(client, &account, &scopes, None, family.auth_time, refresh)
    }

    async fn new_family(
        &self,
        client: &Client,
        grant: &CodeGrant,
        offline: bool,
    ) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let id = random_token(16);
        let secret = random_token(TOKEN_BYTES);
        let family = RefreshFamily {
            client_id: client.id.clone(),
            username: grant.username.clone(),
            scopes: grant.scopes.clone(),
            auth_time: grant.auth_time,
            offline,
            current: storage_key(&secret),
            replaced: Vec::new(),
            expires_at: self.refresh_expiry(offline, grant.auth_time, now),
        };
        let ttl = (family.expires_at - now).max(1) as u64;
        self.store.put(&family_key(&id), &family, ttl).await?;
        Ok(format!("{id}.{secret}"))
    }

    /// Without `offline_access` a refresh token lasts as a browser session does: until it
    /// is idle for the session timeout, or the session's maximum age. With it, until it is
    /// idle for the offline timeout.
    fn refresh_expiry(&self, offline: bool, auth_time: Timestamp, now: Timestamp) -> Timestamp {
        let s = &self.settings;
        if offline {
            now + s.offline_idle_timeout as i64
        } else {
            (now + s.session_idle_timeout as i64).min(auth_time + s.session_max_age as i64)
        }
    }

    fn active_account(&self, username: &str) -> Result<Arc<Account>, OAuthError> {
        let account = self
            .registry
            .users()
            .get(username)
            .cloned()
            .filter(|a| a.is_active());
        account.ok_or_else(|| {
            tracing::warn!(user = %username, "grant refused: user deleted or not active");
            OAuthError::invalid_grant()
        })
    }

    fn respond(
        &self,
        client: &Client,
        account: &Account,
        scopes: &[String],
        nonce: Option<&str>,
        auth_time: Timestamp,
        refresh_token: Option<String>,
    ) -> Result<TokenResponse, OAuthError> {
        let lifetime = client
            .access_token_max_age
            .map(u64::from)
            .unwrap_or(self.settings.access_token_lifetime);
        let (access_token, _jti) =
            self.access_token(&account.username, &client.id, scopes, lifetime)?;
        let ctx = IdTokenContext {
            client_id: &client.id,
            nonce,
            auth_time,
            access_token: &access_token,
            lifetime,
        };
        let id_token = self.id_token(account, scopes, ctx)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: lifetime,
            id_token: Some(id_token),
            refresh_token,
            scope: scope::join(scopes),
        })
    }
}

/// The code's bindings: client, expiry, redirect URI and PKCE (with downgrade protection,
/// RFC 9700 §4.8.2).
fn check_code(
    grant: &CodeGrant,
    client: &Client,
    form: &Params,
    now: Timestamp,
) -> Result<(), OAuthError> {
    let refuse = |reason: &str| {
        tracing::warn!(client_id = %client.id, reason, "code refused");
        OAuthError::invalid_grant()
    };
    if grant.client_id != client.id {
        return Err(refuse("issued to another client"));
    }
    if grant.expires_at <= now {
        return Err(refuse("expired"));
    }
    if form.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(refuse(
            "redirect_uri differs from the authorization request",
        ));
    }
    match (&grant.code_challenge, form.get("code_verifier")) {
        (None, None) => Ok(()),
        (Some(challenge), Some(verifier)) if pkce_s256_matches(challenge, verifier) => Ok(()),
        (Some(_), _) => Err(refuse("PKCE verifier missing or wrong")),
        (None, Some(_)) => Err(refuse("PKCE verifier without a challenge")),
    }
}

/// RFC 7636 §4.1 and §4.6: a 43–128 character verifier whose S256 is the challenge.
fn pkce_s256_matches(challenge: &str, verifier: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    valid && SecretString::new(computed).matches(challenge)
}

/// The scopes of a refresh: the family's, or a subset of them (RFC 6749 §6).
fn narrowed_scopes(granted: &[String], requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.to_vec());
    };
    let wider = || OAuthError::new(ErrorCode::InvalidScope, "scope exceeds the original grant");
    let requested = scope::parse(requested).ok_or_else(wider)?;
    if requested.iter().any(|s| !scope::has(granted, s)) {
        return Err(wider());
    }
    Ok(requested)
}

/// Parses `Authorization: Basic`: base64 of the form-urlencoded client id and secret joined
/// by a colon (RFC 6749 §2.3.1). The secret is returned still encoded: the caller tries it
/// both decoded and as sent, for clients that skip the encoding.
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::invalid_client().with_challenge(Challenge::Basic);
    let (scheme, value) = header.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let bytes = STANDARD.decode(value.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    Ok((decode_component(id, true), secret.to_string()))
}

/// Decodes one form-urlencoded component; `plus` says whether `+` means a space.
fn decode_component(text: &str, plus: bool) -> String {
    let text = if plus {
        text.replace('+', " ")
    } else {
        text.to_string()
    };
    percent_encoding::percent_decode_str(&text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_verifier_matches() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_s256_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            verifier
        ));
        assert!(!pkce_s256_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
            verifier
        ));
    }

    #[test]
    fn short_verifier_is_refused() {
        let verifier = "abc";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
        assert!(!pkce_s256_matches(&challenge, verifier));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my+client%3A1:p%3Aw%25d%2B"));
        let (id, secret) = parse_basic(&header).unwrap();
        assert_eq!(id, "my client:1");
        assert_eq!(decode_component(&secret, true), "p:w%d+");
    }

    #[test]
    fn wider_refresh_scope_is_refused() {
        let granted = vec!["openid".to_string(), "email".to_string()];
        assert_eq!(
            narrowed_scopes(&granted, Some("openid")).unwrap(),
            ["openid"]
        );
        assert_eq!(
            narrowed_scopes(&granted, Some("openid profile"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
    }
}
