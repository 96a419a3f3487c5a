//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ends the browser session,
//! then returns to the client only at a `post_logout_redirect_uri` registered for it.
//!
//! With a valid `id_token_hint` for the signed-in user the session ends at once; otherwise
//! the user confirms on a form, so a third-party page cannot sign people out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::login::{Browser, Interaction};
use super::params::Params;
use super::redirect::with_params;
use super::session::TOKEN_BYTES;
use super::{OAuthError, Provider};
use crate::secret::{random_token, storage_key, SecretString};

/// The confirmation form to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutForm {
    /// The pending request's id.
    pub request_id: String,
    /// The CSRF token.
    pub csrf: String,
}

/// A validated logout request.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogoutRequest {
    /// Where to go afterwards, already checked against the client's registration.
    redirect: Option<String>,
    state: Option<String>,
}

/// A logout waiting for confirmation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingLogout {
    request: LogoutRequest,
    browser: String,
    csrf: String,
}

fn pending_key(id: &str) -> String {
    format!("logout-request:{}", storage_key(id))
}

impl Provider {
    /// The end-session endpoint (GET or POST).
    pub async fn logout(&self, params: &Params, browser: &Browser) -> Interaction {
        if params.has("csrf") {
            return self.confirm_logout(params, browser).await;
        }
        let hint = params
            .get("id_token_hint")
            .and_then(|t| self.verified_id_token(t));
        let request = match self.logout_request(params, hint.as_ref()) {
            Ok(request) => request,
            Err(message) => return Interaction::page(400, message),
        };
        let session = self
            .session(browser.session.as_deref())
            .await
            .ok()
            .flatten();
        let hinted_user = hint
            .as_ref()
            .and_then(|h| h.get("sub"))
            .and_then(Value::as_str);
        match session {
            None => self.signed_out(browser, request).await,
            Some((s, _)) if hinted_user == Some(s.username.as_str()) => {
                self.signed_out(browser, request).await
            }
            Some(_) => self.ask_to_confirm(request, browser).await,
        }
    }

    /// Validates `post_logout_redirect_uri` against the client named by the hint's `aud` or
    /// by `client_id`.
    fn logout_request(
        &self,
        params: &Params,
        hint: Option<&serde_json::Map<String, Value>>,
    ) -> Result<LogoutRequest, String> {
        let hinted = hint.and_then(|h| h.get("aud")).and_then(Value::as_str);
        let client_id = match (hinted, params.get("client_id")) {
            (Some(a), Some(b)) if a != b => {
                return Err("client_id does not match the ID token.".into())
            }
            (a, b) => a.or(b),
        };
        let state = params.get("state").map(str::to_owned);
        let Some(uri) = params.get("post_logout_redirect_uri") else {
            return Ok(LogoutRequest {
                redirect: None,
                state,
            });
        };
        let clients = self.registry.clients();
        let client = client_id.and_then(|id| clients.get(id));
        match client {
            Some(c) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => Ok(LogoutRequest {
                redirect: Some(uri.to_string()),
                state,
            }),
            _ => {
                tracing::warn!(client_id = ?client_id, "logout redirect refused: not registered");
                Err("The address to return to after signing out is not registered for this application.".into())
            }
        }
    }

    async fn ask_to_confirm(&self, request: LogoutRequest, browser: &Browser) -> Interaction {
        let id = random_token(TOKEN_BYTES);
        let pending = PendingLogout {
            request,
            browser: storage_key(&browser.binding),
            csrf: random_token(TOKEN_BYTES),
        };
        let ttl = self.settings.login_request_lifetime;
        match self.store.put(&pending_key(&id), &pending, ttl).await {
            Ok(()) => Interaction::ConfirmLogout(LogoutForm {
                request_id: id,
                csrf: pending.csrf,
            }),
            Err(e) => Interaction::page(503, OAuthError::from(e).to_string()),
        }
    }

    async fn confirm_logout(&self, form: &Params, browser: &Browser) -> Interaction {
        let id = form.get("request").unwrap_or("");
        let pending = match self.store.take::<PendingLogout>(&pending_key(id)).await {
            Ok(Some(p)) => p,
            Ok(None) => return Interaction::page(400, "This sign-out form has expired."),
            Err(e) => return Interaction::page(503, OAuthError::from(e).to_string()),
        };
        let csrf = SecretString::new(pending.csrf.clone());
        if pending.browser != storage_key(&browser.binding)
            || !csrf.matches(form.get("csrf").unwrap_or(""))
        {
            return Interaction::page(403, "This sign-out form could not be verified.");
        }
        self.signed_out(browser, pending.request).await
    }

    async fn signed_out(&self, browser: &Browser, request: LogoutRequest) -> Interaction {
        if let Some(cookie) = &browser.session {
            if let Err(e) = self.end_session(cookie).await {
                return Interaction::page(503, e.to_string());
            }
            tracing::info!("browser session ended by logout");
        }
        let location = request.redirect.map(|uri| match &request.state {
            Some(state) => with_params(&uri, &[("state", state)]),
            None => uri,
        });
        Interaction::SignedOut { location }
    }
}
