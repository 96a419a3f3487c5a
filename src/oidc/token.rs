//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.3, §6; RFC 7636 §4.6): the
//! authorization-code, refresh-token and (for trusted clients) password grants.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::claims::IdTokenContext;
use super::error::{ErrorCode, OAuthError};
use super::login::LoginFailure;
use super::params::Params;
use super::scope;
use super::session::{code_key, CodeGrant};
use super::Provider;
use crate::model::{Account, Client};
use crate::secret::{storage_key, SecretString};
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
    /// The ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes.
    pub scope: String,
}

/// What a redeemed code led to, so that a second redemption can revoke it (RFC 6749 §4.1.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RedeemedCode {
    family: Option<String>,
    jti: String,
    expires_at: Timestamp,
}

fn redeemed_key(code: &str) -> String {
    format!("redeemed:{}", storage_key(code))
}

/// The grant behind a token response.
struct Grant<'a> {
    account: &'a Account,
    scopes: &'a [String],
    nonce: Option<&'a str>,
    auth_time: Timestamp,
    refresh_token: Option<String>,
}

impl Provider {
    /// The token endpoint. `authorization` is the `Authorization` header; `source` the
    /// client's address (for password-grant throttling).
    pub async fn token(
        &self,
        form: &Params,
        authorization: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<TokenResponse, OAuthError> {
        form.reject_repeated()?;
        let client = self
            .authenticate_client(form, authorization, source)
            .await?;
        match form.get("grant_type") {
            Some("authorization_code") | Some("code") => self.code_grant(&client, form).await,
            Some("refresh_token") => self.refresh_grant(&client, form).await,
            Some("password") => self.password_grant(&client, form, source).await,
            Some(_) => Err(OAuthError::bare(ErrorCode::UnsupportedGrantType)),
            None => Err(OAuthError::invalid_request("grant_type is required")),
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
            self.revoke_redeemed(code, client).await?;
            return Err(OAuthError::invalid_grant());
        };
        check_code(&grant, client, form, self.clock.now())?;
        let account = self.active_account(&grant.username)?;
        let offline = scope::has(&grant.scopes, scope::OFFLINE_ACCESS);
        let family = if client.is_confidential() || offline {
            Some(
                self.new_family(client, &grant.username, &grant.scopes, grant.auth_time)
                    .await?,
            )
        } else {
            None
        };
        let (refresh_token, family_id) = family.map_or((None, None), |(t, id)| (Some(t), Some(id)));
        let issued = Grant {
            account: &account,
            scopes: &grant.scopes,
            nonce: grant.nonce.as_deref(),
            auth_time: grant.auth_time,
            refresh_token,
        };
        let (response, jti) = self.respond(client, issued)?;
        let redeemed = RedeemedCode {
            family: family_id,
            jti,
            expires_at: self.clock.now() + response.expires_in as i64,
        };
        self.store
            .put(&redeemed_key(code), &redeemed, response.expires_in)
            .await?;
        tracing::info!(client_id = %client.id, user = %account.username, "tokens issued for a code");
        Ok(response)
    }

    /// A code presented after it was redeemed: revoke what it produced.
    async fn revoke_redeemed(&self, code: &str, client: &Client) -> Result<(), OAuthError> {
        let Some(redeemed) = self.store.take::<RedeemedCode>(&redeemed_key(code)).await? else {
            tracing::warn!(client_id = %client.id, "code refused: unknown or expired");
            return Ok(());
        };
        tracing::warn!(client_id = %client.id, "code reused; revoking the tokens it produced");
        if let Some(family) = &redeemed.family {
            self.revoke_family(family).await?;
        }
        self.revoke_access_token(&redeemed.jti, redeemed.expires_at)
            .await
    }

    async fn refresh_grant(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let token = form.get("refresh_token");
        let token =
            token.ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let family = self
            .family_of(token)
            .await?
            .filter(|f| f.client_id == client.id);
        let family = family.ok_or_else(OAuthError::invalid_grant)?;
        let scopes = narrowed_scopes(&family.scopes, form.get("scope"))?;
        let account = self.active_account(&family.username)?;
        let refreshed = self.rotate(client, token).await?;
        let grant = Grant {
            account: &account,
            scopes: &scopes,
            nonce: None,
            auth_time: refreshed.family.auth_time,
            refresh_token: Some(refreshed.token),
        };
        Ok(self.respond(client, grant)?.0)
    }

    /// RFC 6749 §4.3, for clients marked `trusted` only; throttled like the login form.
    async fn password_grant(
        &self,
        client: &Client,
        form: &Params,
        source: Option<IpAddr>,
    ) -> Result<TokenResponse, OAuthError> {
        if !client.trusted {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the client may not use the password grant",
            ));
        }
        let username = form
            .get("username")
            .ok_or_else(|| OAuthError::invalid_request("username is required"))?;
        let password = form
            .get("password")
            .ok_or_else(|| OAuthError::invalid_request("password is required"))?;
        let requested =
            scope::parse(form.get("scope").unwrap_or(scope::OPENID)).ok_or_else(|| {
                OAuthError::new(ErrorCode::InvalidScope, "scope has invalid characters")
            })?;
        let scopes = scope::restrict(&requested, client);
        let account = self
            .authenticate(username, password, source.as_ref())
            .await
            .map_err(|f| match f {
                LoginFailure::Invalid => {
                    OAuthError::new(ErrorCode::InvalidGrant, "invalid username or password")
                }
                LoginFailure::Throttled => OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "too many failed attempts; try later",
                ),
            })?;
        let now = self.clock.now();
        let refresh_token =
            if client.is_confidential() || scope::has(&scopes, scope::OFFLINE_ACCESS) {
                Some(
                    self.new_family(client, &account.username, &scopes, now)
                        .await?
                        .0,
                )
            } else {
                None
            };
        let grant = Grant {
            account: &account,
            scopes: &scopes,
            nonce: None,
            auth_time: now,
            refresh_token,
        };
        Ok(self.respond(client, grant)?.0)
    }

    fn active_account(&self, username: &str) -> Result<std::sync::Arc<Account>, OAuthError> {
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

    /// Signs the tokens of a grant; returns the response and the access token's `jti`.
    fn respond(
        &self,
        client: &Client,
        grant: Grant<'_>,
    ) -> Result<(TokenResponse, String), OAuthError> {
        let lifetime = client
            .access_token_max_age
            .map(u64::from)
            .unwrap_or(self.settings.access_token_lifetime);
        let (access_token, jti) =
            self.access_token(&grant.account.username, &client.id, grant.scopes, lifetime)?;
        let id_token = if scope::has(grant.scopes, scope::OPENID) {
            let ctx = IdTokenContext {
                client_id: &client.id,
                nonce: grant.nonce,
                auth_time: grant.auth_time,
                access_token: &access_token,
                lifetime,
            };
            Some(self.id_token(grant.account, grant.scopes, ctx)?)
        } else {
            None
        };
        let response = TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: lifetime,
            id_token,
            refresh_token: grant.refresh_token,
            scope: scope::join(grant.scopes),
        };
        Ok((response, jti))
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
    fn wider_refresh_scope_is_refused() {
        let granted = vec!["openid".to_string(), "email".to_string()];
        assert_eq!(
            narrowed_scopes(&granted, Some("openid")).unwrap(),
            ["openid"]
        );
        let wider = narrowed_scopes(&granted, Some("openid profile")).unwrap_err();
        assert_eq!(wider.code, ErrorCode::InvalidScope);
    }
}
