//! Token revocation (RFC 7009) and introspection (RFC 7662), both for authenticated clients
//! and only for tokens issued to the caller. Access tokens are JWTs; revoking one records its
//! `jti` until it would have expired. A refresh token is known by its family whether it is
//! current or was replaced: revoking either ends the family, and introspection calls it
//! active exactly while the token endpoint would accept it.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::error::OAuthError;
use super::params::Params;
use super::refresh::Issuer;
use super::Provider;
use crate::model::Client;
use crate::time::Timestamp;

fn revoked_key(jti: &str) -> String {
    format!("revoked:{jti}")
}

/// A presented token, recognised.
enum Known {
    /// An unexpired, unrevoked access token, with its claims.
    Access(Map<String, Value>),
    /// A refresh token of a live family, current or replaced.
    Refresh(Issuer),
}

impl Provider {
    /// Records an access token's `jti` as revoked until `expires_at`.
    pub(crate) async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: Timestamp,
    ) -> Result<(), OAuthError> {
        let ttl = (expires_at - self.clock.now()).max(1) as u64;
        Ok(self.store.put(&revoked_key(jti), &true, ttl).await?)
    }

    /// True when an access token's `jti` was revoked.
    pub(crate) async fn is_revoked(&self, jti: &str) -> Result<bool, OAuthError> {
        Ok(self
            .store
            .get::<bool>(&revoked_key(jti))
            .await?
            .unwrap_or(false))
    }

    /// RFC 7009 §2: revokes a refresh token (its whole family, RFC 7009 §2.1, whether the
    /// token is current or was replaced: RFC 9700 §4.14.2) or an access token. Unknown
    /// tokens and other clients' tokens are answered the same way, with success.
    pub async fn revoke(
        &self,
        form: &Params,
        authorization: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<(), OAuthError> {
        let (client, token) = self.back_channel(form, authorization, source).await?;
        match self.recognise(&client, token).await? {
            Some(Known::Refresh(issuer)) => {
                let user = &issuer.family.username;
                tracing::info!(client_id = %client.id, user = %user, refreshes = issuer.refreshes, "refresh token revoked with its family");
                self.revoke_family(&issuer.id).await
            }
            Some(Known::Access(claims)) => {
                let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
                let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
                tracing::info!(client_id = %client.id, "access token revoked");
                self.revoke_access_token(jti, exp).await
            }
            None => Ok(()),
        }
    }

    /// RFC 7662 §2: whether a token is active, and what it is about.
    pub async fn introspect(
        &self,
        form: &Params,
        authorization: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<Value, OAuthError> {
        let (client, token) = self.back_channel(form, authorization, source).await?;
        let active = |mut fields: Map<String, Value>| {
            fields.insert("active".into(), json!(true));
            Value::Object(fields)
        };
        Ok(match self.recognise(&client, token).await? {
            Some(Known::Access(claims)) if self.account_active(&claims) => {
                let mut fields = claims;
                fields.insert("token_type".into(), json!("Bearer"));
                let sub = fields.get("sub").cloned().unwrap_or(Value::Null);
                fields.insert("username".into(), sub);
                active(fields)
            }
            Some(Known::Refresh(Issuer {
                family,
                refreshes: true,
                ..
            })) if self
                .registry
                .users()
                .get(&family.username)
                .is_some_and(|a| a.is_active()) =>
            {
                active(Map::from_iter([
                    ("client_id".into(), json!(family.client_id)),
                    ("sub".into(), json!(family.username)),
                    ("username".into(), json!(family.username)),
                    ("scope".into(), json!(family.scopes.join(" "))),
                    ("exp".into(), json!(family.expires_at)),
                    ("iss".into(), json!(self.settings.issuer)),
                ]))
            }
            _ => json!({ "active": false }),
        })
    }

    fn account_active(&self, claims: &Map<String, Value>) -> bool {
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        self.registry
            .users()
            .get(sub)
            .is_some_and(|a| a.is_active())
    }

    /// Authenticates the client and reads the `token` parameter.
    async fn back_channel<'a>(
        &self,
        form: &'a Params,
        authorization: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<(std::sync::Arc<Client>, &'a str), OAuthError> {
        form.reject_repeated()?;
        let client = self
            .authenticate_client(form, authorization, source)
            .await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        Ok((client, token))
    }

    /// A token issued to `client`: a refresh token of one of its live families (current
    /// or replaced), or an unexpired, unrevoked access token.
    async fn recognise(&self, client: &Client, token: &str) -> Result<Option<Known>, OAuthError> {
        if let Some(issuer) = self.issuing_family(client, token).await? {
            return Ok(Some(Known::Refresh(issuer)));
        }
        let Ok(claims) = self.verify_access_token(token).await else {
            return Ok(None);
        };
        let mine = claims.get("client_id").and_then(Value::as_str) == Some(client.id.as_str());
        Ok(mine.then_some(Known::Access(claims)))
    }
}
