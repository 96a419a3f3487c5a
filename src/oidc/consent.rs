//! The consent page for clients with `grantMethod: prompt` (and `prompt=consent`): the user
//! approves the client and its scopes once; the approval is remembered per user and client.

use serde::{Deserialize, Serialize};

use super::authorize::AuthorizationRequest;
use super::error::{ErrorCode, OAuthError};
use super::login::{Browser, Interaction};
use super::params::Params;
use super::session::{Session, TOKEN_BYTES};
use super::Provider;
use crate::secret::{random_token, storage_key, SecretString};

/// How long an approval is remembered, in seconds (a year).
const CONSENT_TTL: u64 = 365 * 86_400;

/// The consent page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentForm {
    /// The pending request's id.
    pub request_id: String,
    /// The CSRF token.
    pub csrf: String,
    /// The client asking.
    pub client_id: String,
    /// What each requested scope lets the client see.
    pub scopes: Vec<String>,
}

/// A request waiting for the user's decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingConsent {
    request: AuthorizationRequest,
    browser: String,
    csrf: String,
    username: String,
}

fn pending_key(id: &str) -> String {
    format!("consent-request:{}", storage_key(id))
}

fn approval_key(username: &str, client_id: &str) -> String {
    format!(
        "consent:{}",
        storage_key(&format!("{username}\0{client_id}"))
    )
}

/// What a scope means to the person approving it.
fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your account".into(),
        "profile" => "See your name, username and language".into(),
        "email" => "See your email address".into(),
        "groups" => "See the groups you belong to".into(),
        "offline_access" => "Keep access while you are away (refresh tokens)".into(),
        other => format!("Scope {other}"),
    }
}

impl Provider {
    /// True when the user already approved every scope of this request for this client, and
    /// the request does not ask to be asked again.
    pub(crate) async fn has_consent(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
    ) -> Result<bool, OAuthError> {
        if request.prompt.consent {
            return Ok(false);
        }
        let key = approval_key(&session.username, &request.client_id);
        let approved: Vec<String> = self.store.get(&key).await?.unwrap_or_default();
        Ok(request.scopes.iter().all(|s| approved.contains(s)))
    }

    pub(crate) async fn ask_for_consent(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        browser: &Browser,
    ) -> Result<ConsentForm, OAuthError> {
        let id = random_token(TOKEN_BYTES);
        let pending = PendingConsent {
            request: request.clone(),
            browser: storage_key(&browser.binding),
            csrf: random_token(TOKEN_BYTES),
            username: session.username.clone(),
        };
        let ttl = self.settings.login_request_lifetime;
        self.store.put(&pending_key(&id), &pending, ttl).await?;
        Ok(ConsentForm {
            request_id: id,
            csrf: pending.csrf,
            client_id: request.client_id.clone(),
            scopes: request.scopes.iter().map(|s| describe(s)).collect(),
        })
    }

    /// The consent form's submission: `decision` is `allow` or `deny`.
    pub async fn consent(&self, form: &Params, browser: &Browser) -> Interaction {
        let id = form.get("request").unwrap_or("");
        let pending =
            match self.store.take::<PendingConsent>(&pending_key(id)).await {
                Ok(Some(pending)) => pending,
                Ok(None) => return Interaction::page(
                    400,
                    "This consent form has expired. Go back to the application and sign in again.",
                ),
                Err(e) => return Interaction::page(503, OAuthError::from(e).to_string()),
            };
        let csrf = SecretString::new(pending.csrf.clone());
        if pending.browser != storage_key(&browser.binding)
            || !csrf.matches(form.get("csrf").unwrap_or(""))
        {
            tracing::warn!(client_id = %pending.request.client_id, "consent refused: CSRF check failed");
            return Interaction::page(403, "This consent form could not be verified. Go back to the application and sign in again.");
        }
        let request = pending.request;
        let back = |error: OAuthError| {
            self.error_redirect(&request.redirect_uri, request.state.as_deref(), &error)
        };
        let session = match self.session(browser.session.as_deref()).await {
            Ok(Some((session, _))) if session.username == pending.username => session,
            Ok(_) => {
                return back(OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the session ended",
                ))
            }
            Err(e) => return back(e),
        };
        if form.get("decision") != Some("allow") {
            tracing::info!(user = %session.username, client_id = %request.client_id, "consent denied");
            return back(OAuthError::new(
                ErrorCode::AccessDenied,
                "the user denied the request",
            ));
        }
        let result = async {
            self.remember_consent(&session.username, &request).await?;
            self.redirect_with_code(&request, &session, None).await
        };
        result.await.unwrap_or_else(back)
    }

    async fn remember_consent(
        &self,
        username: &str,
        request: &AuthorizationRequest,
    ) -> Result<(), OAuthError> {
        let key = approval_key(username, &request.client_id);
        let mut approved: Vec<String> = self.store.get(&key).await?.unwrap_or_default();
        for scope in &request.scopes {
            if !approved.contains(scope) {
                approved.push(scope.clone());
            }
        }
        tracing::info!(user = %username, client_id = %request.client_id, "consent given");
        Ok(self.store.put(&key, &approved, CONSENT_TTL).await?)
    }
}
