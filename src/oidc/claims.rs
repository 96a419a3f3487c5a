//! Tokens and claims: the ID token (OIDC Core §2, §3.1.3.6), the JWT access token
//! (RFC 9068) and userinfo (OIDC Core §5.3), all filtered by the granted scopes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::error::{Challenge, ErrorCode, OAuthError};
use super::log_safe::Untrusted;
use super::refresh::IssuedAccess;
use super::scope;
use super::Provider;
use crate::model::{Account, Client};
use crate::secret::random_token;
use crate::time::Timestamp;

/// The JOSE `typ` of access tokens (RFC 9068 §2.1); ID tokens carry `JWT`.
pub(crate) const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims about the user that the scopes allow; shared by ID tokens and userinfo.
pub(crate) fn user_claims(account: &Account, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(account.username));
    if scope::has(scopes, "profile") {
        claims.insert("name".into(), json!(account.name()));
        claims.insert("preferred_username".into(), json!(account.username));
        if let Some(lang) = &account.lang {
            claims.insert("locale".into(), json!(lang));
        }
    }
    if let (true, Some(email)) = (scope::has(scopes, "email"), &account.email) {
        claims.insert("email".into(), json!(email));
        // Emails are set by cluster administrators in the User resource, not self-asserted.
        claims.insert("email_verified".into(), json!(true));
    }
    if !account.groups.is_empty() {
        claims.insert("groups".into(), json!(account.groups));
    }
    claims
}

/// What an ID token is about beyond the user.
pub(crate) struct IdTokenContext<'a> {
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: Timestamp,
    pub access_token: &'a str,
    pub lifetime: u64,
}

/// `at_hash`: the left half of the SHA-256 of the access token (OIDC Core §3.1.3.6).
fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

impl Provider {
    /// Signs an ID token.
    pub(crate) fn id_token(
        &self,
        account: &Account,
        scopes: &[String],
        ctx: IdTokenContext<'_>,
    ) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let mut claims = user_claims(account, scopes);
        claims.insert("iss".into(), json!(self.settings.issuer));
        claims.insert("aud".into(), json!(ctx.client_id));
        claims.insert("azp".into(), json!(ctx.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + ctx.lifetime as i64));
        claims.insert("auth_time".into(), json!(ctx.auth_time));
        claims.insert("at_hash".into(), json!(at_hash(ctx.access_token)));
        if let Some(nonce) = ctx.nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        Ok(self.keys.current().sign(now, "JWT", claims)?)
    }

    /// Signs the access token planned as `access` (its `jti` and expiry decided beforehand,
    /// so that it can be recorded for revocation before it exists).
    pub(crate) fn access_token(
        &self,
        username: &str,
        client_id: &str,
        scopes: &[String],
        access: &IssuedAccess,
    ) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let claims = json!({
            "iss": self.settings.issuer,
            "sub": username,
            "aud": client_id,
            "client_id": client_id,
            "scope": scope::join(scopes),
            "iat": now,
            "exp": access.expires_at,
            "jti": access.jti,
        });
        let Value::Object(claims) = claims else {
            unreachable!("a JSON object literal")
        };
        Ok(self.keys.current().sign(now, ACCESS_TOKEN_TYP, claims)?)
    }

    /// Plans an access token for `client`: a fresh `jti` and its expiry.
    pub(crate) fn plan_access_token(&self, client: &Client) -> IssuedAccess {
        IssuedAccess {
            jti: random_token(16),
            expires_at: self.clock.now() + self.access_token_lifetime(client) as i64,
        }
    }

    /// The client's access- and ID-token lifetime, in seconds.
    pub(crate) fn access_token_lifetime(&self, client: &Client) -> u64 {
        client
            .access_token_max_age
            .map(u64::from)
            .unwrap_or(self.settings.access_token_lifetime)
    }

    /// Userinfo (OIDC Core §5.3): the claims the access token's scopes allow, for a user who
    /// still exists and is active. Only access tokens are accepted.
    pub async fn userinfo(&self, token: &str) -> Result<Map<String, Value>, OAuthError> {
        let claims = self.verify_access_token(token).await?;
        let username = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        let scopes: Vec<String> = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default();
        let users = self.registry.users();
        let account = users.get(username).filter(|a| a.is_active());
        let account = account.ok_or_else(|| invalid_token("the user is no longer active"))?;
        Ok(user_claims(account, &scopes))
    }

    /// Verifies an access token's signature, type, issuer, expiry and revocation.
    pub(crate) async fn verify_access_token(
        &self,
        token: &str,
    ) -> Result<Map<String, Value>, OAuthError> {
        let (typ, claims) = self.keys.current().verify(token).map_err(|e| {
            tracing::warn!(error = %Untrusted(&e), "bearer token refused");
            invalid_token("the access token is invalid")
        })?;
        if typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(invalid_token("not an access token"));
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(invalid_token("the access token is from another issuer"));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp <= self.clock.now() {
            return Err(invalid_token("the access token has expired"));
        }
        let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
        if self.is_revoked(jti).await? {
            return Err(invalid_token("the access token was revoked"));
        }
        Ok(claims)
    }
}

/// `invalid_token` with the Bearer challenge (RFC 6750 §3).
pub(crate) fn invalid_token(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, description).with_challenge(Challenge::Bearer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectRef;

    fn account() -> Account {
        Account {
            username: "admin".into(),
            email: Some("admin@example.com".into()),
            display_name: Some("Administrator".into()),
            lang: Some("en".into()),
            groups: vec!["ops".into()],
            password: None,
            state: "Active".into(),
            origin: ObjectRef::default(),
        }
    }

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn openid_alone_gives_sub_and_groups() {
        let c = user_claims(&account(), &scopes(&["openid"]));
        assert_eq!(Value::Object(c), json!({"sub": "admin", "groups": ["ops"]}));
    }

    #[test]
    fn profile_and_email_add_their_claims() {
        let c = user_claims(&account(), &scopes(&["openid", "profile", "email"]));
        assert_eq!(c["name"], "Administrator");
        assert_eq!(c["preferred_username"], "admin");
        assert_eq!(c["locale"], "en");
        assert_eq!(c["email"], "admin@example.com");
        assert_eq!(c["email_verified"], json!(true));
    }

    #[test]
    fn at_hash_matches_the_spec_example() {
        // OIDC Core A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
