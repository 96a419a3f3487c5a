//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.3, §6; RFC 7636 §4.6): the
//! authorization-code, refresh-token and (for trusted clients) password grants.

use std::net::IpAddr;

use serde::Serialize;

use super::claims::IdTokenContext;
use super::error::{ErrorCode, OAuthError};
use super::login::LoginFailure;
use super::params::Params;
use super::refresh::{new_family_id, IssuedAccess};
use super::scope;
use super::Provider;
use crate::model::{Account, Client};
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

/// The grant behind a token response.
struct Grant<'a> {
    account: &'a Account,
    scopes: &'a [String],
    nonce: Option<&'a str>,
    auth_time: Timestamp,
    refresh_token: Option<String>,
    /// The access token's planned `jti` and expiry.
    access: IssuedAccess,
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
        let redemption = self.redeem_code(client, code, form).await?;
        let issued = Grant {
            account: &redemption.account,
            scopes: &redemption.grant.scopes,
            nonce: redemption.grant.nonce.as_deref(),
            auth_time: redemption.grant.auth_time,
            refresh_token: redemption.refresh_token,
            access: redemption.access,
        };
        let response = self.respond(client, issued)?;
        tracing::info!(client_id = %client.id, user = %redemption.account.username, "tokens issued for a code");
        Ok(response)
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
        let access = self.plan_access_token(client);
        let refreshed = self.rotate(client, token, &access).await?;
        let grant = Grant {
            account: &account,
            scopes: &scopes,
            nonce: None,
            auth_time: refreshed.family.auth_time,
            refresh_token: Some(refreshed.token),
            access,
        };
        self.respond(client, grant)
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
                LoginFailure::Store(error) => error,
            })?;
        let now = self.clock.now();
        let access = self.plan_access_token(client);
        let refresh_token =
            if client.is_confidential() || scope::has(&scopes, scope::OFFLINE_ACCESS) {
                let (id, username) = (new_family_id(), &account.username);
                let family = self.new_family(&id, client, username, &scopes, now, &access);
                Some(family.await?)
            } else {
                None
            };
        let grant = Grant {
            account: &account,
            scopes: &scopes,
            nonce: None,
            auth_time: now,
            refresh_token,
            access,
        };
        self.respond(client, grant)
    }

    pub(crate) fn active_account(
        &self,
        username: &str,
    ) -> Result<std::sync::Arc<Account>, OAuthError> {
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

    /// Signs the tokens of a grant.
    fn respond(&self, client: &Client, grant: Grant<'_>) -> Result<TokenResponse, OAuthError> {
        let lifetime = self.access_token_lifetime(client);
        let username = &grant.account.username;
        let access_token = self.access_token(username, &client.id, grant.scopes, &grant.access)?;
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
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: lifetime,
            id_token,
            refresh_token: grant.refresh_token,
            scope: scope::join(grant.scopes),
        })
    }
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
