//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2): an ID token this provider
//! issued, naming the user the relying party believes is signed in.
//!
//! A hint is ours when its signature verifies with a published key, its JOSE `typ` is an ID
//! token's and its `iss` is this issuer. It may have expired: it is a hint, not a
//! credential (§3.1.2.1 does not require it to be current).

use serde_json::{Map, Value};

use super::error::OAuthError;
use super::Provider;

impl Provider {
    /// The claims of an ID token this provider signed, expired or not; `None` when the
    /// token is not one.
    pub(crate) fn verified_id_token(&self, token: &str) -> Option<Map<String, Value>> {
        let (typ, claims) = self.keys.current().verify(token).ok()?;
        let ours = claims.get("iss").and_then(Value::as_str) == Some(self.settings.issuer.as_str());
        (typ.as_deref() == Some("JWT") && ours).then_some(claims)
    }

    /// The `sub` of the authorization request's `id_token_hint`, if it has one.
    /// `invalid_request` when the hint is not an ID token of this provider with a subject.
    pub(crate) fn hinted_subject(&self, hint: Option<&str>) -> Result<Option<String>, OAuthError> {
        let Some(hint) = hint else {
            return Ok(None);
        };
        let claims = self.verified_id_token(hint);
        let subject = claims
            .as_ref()
            .and_then(|c| c.get("sub"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match subject {
            Some(subject) => Ok(Some(subject.to_string())),
            None => {
                tracing::warn!("authorization refused: id_token_hint is not an ID token of ours");
                Err(OAuthError::invalid_request(
                    "id_token_hint is not an ID token issued by this provider",
                ))
            }
        }
    }
}
