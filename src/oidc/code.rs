//! Redeeming an authorization code (RFC 6749 §4.1.3, §10.5; RFC 7636 §4.6; RFC 9700
//! §4.8.2).
//!
//! A code's key holds its grant until the code is first presented; that presentation swaps
//! the grant, in one atomic step, for a record of what it issued, or of its refusal (a code
//! presented with the wrong client, redirect URI or verifier is spent, so an injected code
//! cannot be tried again). The ids in the record are decided, and the refresh family is
//! written, before the swap, so a second presentation finds them at any moment and revokes
//! every token the code produced (RFC 6749 §4.1.2).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::refresh::{new_family_id, IssuedAccess, SWAP_ATTEMPTS};
use super::scope;
use super::session::{code_key, CodeGrant};
use super::Provider;
use crate::model::{Account, Client};
use crate::secret::SecretString;
use crate::time::Timestamp;

/// What a code's key holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum CodeState {
    /// Issued and not presented yet; stored as the bare grant.
    Issued(CodeGrant),
    /// Presented once.
    Redeemed(RedeemedCode),
}

/// What the first presentation of a code issued; nothing when it was refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RedeemedCode {
    redeemed_at: Timestamp,
    family: Option<String>,
    access_token: Option<IssuedAccess>,
}

/// What a successful redemption gives the client.
pub(crate) struct Redemption {
    /// The code's grant.
    pub grant: CodeGrant,
    /// The signed-in account, still active.
    pub account: Arc<Account>,
    /// The access token to sign.
    pub access: IssuedAccess,
    /// The first refresh token of the grant's family, if it has one.
    pub refresh_token: Option<String>,
}

impl Provider {
    /// Redeems `code` for `client`: once, and only with the client, redirect URI and PKCE
    /// verifier it was issued for.
    pub(crate) async fn redeem_code(
        &self,
        client: &Client,
        code: &str,
        form: &Params,
    ) -> Result<Redemption, OAuthError> {
        let key = code_key(code);
        for _ in 0..SWAP_ATTEMPTS {
            match self.store.get::<CodeState>(&key).await? {
                None => {
                    tracing::warn!(client_id = %client.id, "code refused: unknown or expired");
                    return Err(OAuthError::invalid_grant());
                }
                Some(CodeState::Redeemed(_)) => {
                    self.revoke_replayed(&key, client).await?;
                    return Err(OAuthError::invalid_grant());
                }
                Some(CodeState::Issued(grant)) => {
                    let presented = self.first_presentation(&key, grant, client, form);
                    if let Some(redemption) = presented.await? {
                        return Ok(redemption);
                    }
                }
            }
        }
        Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "code redemption contention; retry",
        ))
    }

    /// Checks the code and swaps its grant for the record of what this presentation issues,
    /// or of its refusal. `None` when another presentation swapped it first.
    async fn first_presentation(
        &self,
        key: &str,
        grant: CodeGrant,
        client: &Client,
        form: &Params,
    ) -> Result<Option<Redemption>, OAuthError> {
        let now = self.clock.now();
        let checked = check_code(&grant, client, form, now)
            .and_then(|()| self.active_account(&grant.username));
        let account = match checked {
            Ok(account) => account,
            Err(refused) => {
                let spent = RedeemedCode {
                    redeemed_at: now,
                    family: None,
                    access_token: None,
                };
                let ttl = self.settings.code_lifetime;
                let swapped = self.swap_code(key, &grant, spent, ttl).await?;
                return if swapped { Err(refused) } else { Ok(None) };
            }
        };
        let (access, family) = self.plan_code_tokens(client, &grant).await?;
        let record = RedeemedCode {
            redeemed_at: now,
            family: family.as_ref().map(|(id, _)| id.clone()),
            access_token: Some(access.clone()),
        };
        let ttl = (access.expires_at - now).max(1) as u64;
        if !self.swap_code(key, &grant, record, ttl).await? {
            if let Some((id, _)) = &family {
                self.revoke_family(id).await?;
            }
            return Ok(None);
        }
        Ok(Some(Redemption {
            grant,
            account,
            access,
            refresh_token: family.map(|(_, token)| token),
        }))
    }

    /// Replaces the issued `grant` under `key` with `record`; false when it is not there any
    /// more (another presentation came first).
    async fn swap_code(
        &self,
        key: &str,
        grant: &CodeGrant,
        record: RedeemedCode,
        ttl: u64,
    ) -> Result<bool, OAuthError> {
        let expected = CodeState::Issued(grant.clone());
        let redeemed = CodeState::Redeemed(record);
        Ok(self.store.swap(key, &expected, &redeemed, ttl).await?)
    }

    /// The access token and, for a confidential client or `offline_access`, the refresh
    /// family (id and first token) a code will produce; the family is stored already.
    async fn plan_code_tokens(
        &self,
        client: &Client,
        grant: &CodeGrant,
    ) -> Result<(IssuedAccess, Option<(String, String)>), OAuthError> {
        let access = self.plan_access_token(client);
        if !client.is_confidential() && !scope::has(&grant.scopes, scope::OFFLINE_ACCESS) {
            return Ok((access, None));
        }
        let id = new_family_id();
        let token = self
            .new_family(
                &id,
                client,
                &grant.username,
                &grant.scopes,
                grant.auth_time,
                &access,
            )
            .await?;
        Ok((access, Some((id, token))))
    }

    /// A code presented after its first presentation: revoke what that one issued. Of
    /// several replays one takes the record; the others find nothing left to do.
    async fn revoke_replayed(&self, key: &str, client: &Client) -> Result<(), OAuthError> {
        let Some(CodeState::Redeemed(record)) = self.store.take::<CodeState>(key).await? else {
            tracing::warn!(client_id = %client.id, "code refused: already presented");
            return Ok(());
        };
        if record.access_token.is_none() {
            tracing::warn!(client_id = %client.id, "code refused: presented again after a refusal");
            return Ok(());
        }
        tracing::warn!(client_id = %client.id, "code reused; revoking the tokens it produced");
        if let Some(access) = &record.access_token {
            self.revoke_access_token(&access.jti, access.expires_at)
                .await?;
        }
        if let Some(family) = &record.family {
            self.revoke_family(family).await?;
        }
        Ok(())
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

    fn grant(nonce: &str) -> CodeGrant {
        CodeGrant {
            client_id: "harbor".into(),
            redirect_uri: "https://h.example/cb?a=1&b=\"2\"".into(),
            username: "admin".into(),
            scopes: vec!["openid".into(), "email".into()],
            nonce: Some(nonce.into()),
            code_challenge: None,
            auth_time: 1_700_000_000,
            expires_at: 1_700_000_060,
        }
    }

    /// The swap compares bytes: a grant read back must encode exactly as it was stored.
    #[test]
    fn an_issued_code_reads_back_to_the_bytes_it_was_stored_as() {
        for nonce in ["n", "ünï\u{1}\"\\/\u{7f}\u{2028}😀", ""] {
            let stored = serde_json::to_vec(&grant(nonce)).unwrap();
            let read: CodeState = serde_json::from_slice(&stored).unwrap();
            assert!(matches!(read, CodeState::Issued(_)));
            assert_eq!(serde_json::to_vec(&read).unwrap(), stored, "{nonce:?}");
        }
    }

    #[test]
    fn a_redeemed_code_is_not_mistaken_for_a_grant() {
        let record = CodeState::Redeemed(RedeemedCode {
            redeemed_at: 1,
            family: None,
            access_token: None,
        });
        let bytes = serde_json::to_vec(&record).unwrap();
        let read: CodeState = serde_json::from_slice(&bytes).unwrap();
        assert!(matches!(read, CodeState::Redeemed(_)));
    }
}
