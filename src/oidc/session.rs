//! What the provider remembers between requests: browser sessions, pending logins and
//! authorization codes. Each is stored under the SHA-256 of its bearer value.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::authorize::AuthorizationRequest;
use super::{OAuthError, Provider};
use crate::model::Account;
use crate::secret::{random_token, storage_key};
use crate::time::Timestamp;

/// Bytes of randomness in session ids, codes, login ids and refresh secrets (256 bits).
pub(crate) const TOKEN_BYTES: usize = 32;

/// A signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The account.
    pub username: String,
    /// When the user authenticated.
    pub auth_time: Timestamp,
    /// When the session ends regardless of use.
    pub expires_at: Timestamp,
}

/// An authorization request waiting for the user to log in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingLogin {
    /// The validated request.
    pub request: AuthorizationRequest,
    /// The storage key of the browser cookie it is bound to (login CSRF protection).
    pub browser: String,
    /// The form's CSRF token.
    pub csrf: String,
}

/// An issued authorization code, bound to its client, redirect URI and PKCE challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeGrant {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI of the request.
    pub redirect_uri: String,
    /// The account.
    pub username: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// `nonce` of the request.
    pub nonce: Option<String>,
    /// The S256 challenge, when the request had one.
    pub code_challenge: Option<String>,
    /// When the user authenticated.
    pub auth_time: Timestamp,
    /// When the code expires.
    pub expires_at: Timestamp,
}

pub(crate) fn session_key(id: &str) -> String {
    format!("session:{}", storage_key(id))
}

pub(crate) fn login_key(id: &str) -> String {
    format!("login:{}", storage_key(id))
}

pub(crate) fn code_key(code: &str) -> String {
    format!("code:{}", storage_key(code))
}

impl Provider {
    /// The live session behind a session cookie, with its account, if the account still
    /// exists and is active. Using a session extends its idle timeout.
    pub(crate) async fn session(
        &self,
        cookie: Option<&str>,
    ) -> Result<Option<(Session, Arc<Account>)>, OAuthError> {
        let Some(cookie) = cookie else {
            return Ok(None);
        };
        let key = session_key(cookie);
        let Some(session) = self.store.get::<Session>(&key).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let account = self.registry.users().get(&session.username).cloned();
        match account.filter(|a| a.is_active()) {
            Some(account) if session.expires_at > now => {
                self.store
                    .put(&key, &session, self.session_ttl(&session, now))
                    .await?;
                Ok(Some((session, account)))
            }
            _ => {
                self.store.delete(&key).await?;
                Ok(None)
            }
        }
    }

    /// Starts a session for `username`; returns the cookie value.
    pub(crate) async fn start_session(
        &self,
        username: &str,
        now: Timestamp,
    ) -> Result<(String, Session), OAuthError> {
        let id = random_token(TOKEN_BYTES);
        let session = Session {
            username: username.to_string(),
            auth_time: now,
            expires_at: now + self.settings.session_max_age as i64,
        };
        self.store
            .put(&session_key(&id), &session, self.session_ttl(&session, now))
            .await?;
        Ok((id, session))
    }

    /// Ends the session behind a cookie.
    pub async fn end_session(&self, cookie: &str) -> Result<(), OAuthError> {
        Ok(self.store.delete(&session_key(cookie)).await?)
    }

    fn session_ttl(&self, session: &Session, now: Timestamp) -> u64 {
        let remaining = (session.expires_at - now).max(1) as u64;
        remaining.min(self.settings.session_idle_timeout)
    }

    /// Issues a code for a request the user has authorized.
    pub(crate) async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
    ) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let code = random_token(TOKEN_BYTES);
        let grant = CodeGrant {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            username: session.username.clone(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: session.auth_time,
            expires_at: now + self.settings.code_lifetime as i64,
        };
        self.store
            .put(&code_key(&code), &grant, self.settings.code_lifetime)
            .await?;
        Ok(code)
    }
}
