//! The browser side of the flow: the authorization endpoint's decision (code, login form or
//! error) and the login form's submission.
//!
//! A pending login is bound to a browser cookie and carries a CSRF token, so a form cannot
//! be submitted from another browser or site (login CSRF).

use std::sync::Arc;

use super::authorize::{self, AuthorizationRequest, Rejection};
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::redirect::with_params;
use super::session::{login_key, PendingLogin, Session, TOKEN_BYTES};
use super::Provider;
use crate::model::{Account, GrantMethod};
use crate::secret::{random_token, storage_key, SecretString};

/// The longest login name or password accepted, in bytes.
const MAX_CREDENTIAL_LEN: usize = 1024;
/// The one message for every failed login.
const LOGIN_FAILED: &str = "Invalid username or password.";

/// What the HTTP layer knows about the browser.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    /// The session cookie, if any.
    pub session: Option<String>,
    /// The browser-binding cookie; the HTTP layer sets one when absent.
    pub binding: String,
}

/// A session cookie to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie value.
    pub id: String,
    /// Seconds until it expires.
    pub max_age: u64,
}

/// The login form to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginForm {
    /// The pending request's id.
    pub request_id: String,
    /// The CSRF token.
    pub csrf: String,
    /// The client being signed in to.
    pub client_id: String,
    /// A login name to prefill.
    pub login_hint: Option<String>,
    /// An error to show above the form.
    pub error: Option<String>,
}

/// What the browser gets next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// Go to `location` (the client, with a code or an error), setting a session cookie.
    Redirect {
        /// Where.
        location: String,
        /// A new session cookie, after a login.
        session: Option<NewSession>,
    },
    /// Show the login form.
    Login(LoginForm),
    /// Show an error page; nothing is sent to the client.
    Page {
        /// The HTTP status.
        status: u16,
        /// What to tell the user.
        message: String,
    },
}

impl Interaction {
    fn page(status: u16, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            message: message.into(),
        }
    }
}

impl Provider {
    /// The authorization endpoint: validates the request, then issues a code to a signed-in
    /// browser or asks for a login.
    pub async fn authorize(&self, params: &Params, browser: &Browser) -> Interaction {
        let request = match authorize::validate(params, &self.registry.clients()) {
            Ok(request) => request,
            Err(Rejection::Page(message)) => return Interaction::page(400, message),
            Err(Rejection::Redirect {
                redirect_uri,
                state,
                error,
            }) => return self.error_redirect(&redirect_uri, state.as_deref(), &error),
        };
        match self.decide(request.clone(), browser).await {
            Ok(interaction) => interaction,
            Err(error) => {
                self.error_redirect(&request.redirect_uri, request.state.as_deref(), &error)
            }
        }
    }

    async fn decide(
        &self,
        request: AuthorizationRequest,
        browser: &Browser,
    ) -> Result<Interaction, OAuthError> {
        let denied = self
            .registry
            .clients()
            .get(&request.client_id)
            .map(|c| c.grant_method);
        if denied == Some(GrantMethod::Deny) {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "this client may not sign users in",
            ));
        }
        let now = self.clock.now();
        let fresh = |s: &Session| request.max_age.is_none_or(|max| now - s.auth_time <= max);
        match self.session(browser.session.as_deref()).await? {
            Some((session, _)) if !request.prompt.login && fresh(&session) => {
                self.complete(&request, &session, None).await
            }
            _ if request.prompt.none => Err(OAuthError::bare(ErrorCode::LoginRequired)),
            _ => self.ask_for_login(request, browser).await,
        }
    }

    async fn ask_for_login(
        &self,
        request: AuthorizationRequest,
        browser: &Browser,
    ) -> Result<Interaction, OAuthError> {
        let id = random_token(TOKEN_BYTES);
        let pending = PendingLogin {
            request,
            browser: storage_key(&browser.binding),
            csrf: random_token(TOKEN_BYTES),
        };
        let ttl = self.settings.login_request_lifetime;
        self.store.put(&login_key(&id), &pending, ttl).await?;
        Ok(Interaction::Login(LoginForm {
            request_id: id,
            csrf: pending.csrf,
            client_id: pending.request.client_id,
            login_hint: pending.request.login_hint,
            error: None,
        }))
    }

    /// The login form's submission.
    pub async fn login(&self, form: &Params, browser: &Browser) -> Interaction {
        let id = form.get("request").unwrap_or("");
        let pending =
            match self.store.get::<PendingLogin>(&login_key(id)).await {
                Ok(Some(pending)) => pending,
                Ok(None) => return Interaction::page(
                    400,
                    "This sign-in form has expired. Go back to the application and sign in again.",
                ),
                Err(e) => return Interaction::page(503, OAuthError::from(e).to_string()),
            };
        let csrf = SecretString::new(pending.csrf.clone());
        let same_browser = pending.browser == storage_key(&browser.binding);
        if !same_browser || !csrf.matches(form.get("csrf").unwrap_or("")) {
            tracing::warn!(client_id = %pending.request.client_id, "login refused: CSRF check failed");
            return Interaction::page(403, "This sign-in form could not be verified. Go back to the application and sign in again.");
        }
        let login = form.get("username").unwrap_or("").trim();
        let password = form.get("password").unwrap_or("");
        match self.check_password(login, password).await {
            Some(account) => self.logged_in(id, pending, &account).await,
            None => Interaction::Login(LoginForm {
                request_id: id.to_string(),
                csrf: pending.csrf,
                client_id: pending.request.client_id,
                login_hint: Some(login.to_string()).filter(|l| l.len() <= MAX_CREDENTIAL_LEN),
                error: Some(LOGIN_FAILED.into()),
            }),
        }
    }

    async fn logged_in(&self, id: &str, pending: PendingLogin, account: &Account) -> Interaction {
        let request = pending.request;
        let result = async {
            self.store.delete(&login_key(id)).await?;
            let now = self.clock.now();
            let (cookie, session) = self.start_session(&account.username, now).await?;
            tracing::info!(user = %account.username, client_id = %request.client_id, "login succeeded");
            let new = NewSession {
                id: cookie,
                max_age: self.settings.session_max_age,
            };
            self.complete(&request, &session, Some(new)).await
        };
        match result.await {
            Ok(interaction) => interaction,
            Err(error) => {
                self.error_redirect(&request.redirect_uri, request.state.as_deref(), &error)
            }
        }
    }

    /// Verifies a login name (username or email) and password. Unknown names cost the same
    /// bcrypt work as known ones; every failure looks the same to the caller.
    async fn check_password(&self, login: &str, password: &str) -> Option<Arc<Account>> {
        if login.is_empty()
            || login.len() > MAX_CREDENTIAL_LEN
            || password.len() > MAX_CREDENTIAL_LEN
        {
            return None;
        }
        let account = self.registry.users().find_login(login).cloned();
        let hash = account
            .as_ref()
            .and_then(|a| a.password.as_ref())
            .map(|h| h.as_str().to_owned());
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.to_owned();
        let verified =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        match account {
            Some(a) if known && verified && a.is_active() => Some(a),
            Some(a) if known && verified => {
                tracing::warn!(user = %a.username, state = %a.state, "login refused: account not active");
                None
            }
            Some(a) => {
                tracing::warn!(user = %a.username, "login refused: wrong password");
                None
            }
            None => {
                tracing::warn!("login refused: unknown login name");
                None
            }
        }
    }

    /// Issues a code and sends the browser back to the client.
    async fn complete(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        new_session: Option<NewSession>,
    ) -> Result<Interaction, OAuthError> {
        let clients = self.registry.clients();
        let client = clients.get(&request.client_id).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::AccessDenied,
                "the client is no longer registered",
            )
        })?;
        if client.grant_method == GrantMethod::Deny {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "this client may not sign users in",
            ));
        }
        // TODO(#4): grantMethod prompt shows a consent page, remembered per user and client.
        let code = self.issue_code(request, session).await?;
        let location = with_params(
            &request.redirect_uri,
            &self.response_params(&[("code", &code)], request.state.as_deref()),
        );
        Ok(Interaction::Redirect {
            location,
            session: new_session,
        })
    }

    /// An error sent back to the client, with `state` and `iss` (RFC 9207).
    fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &OAuthError,
    ) -> Interaction {
        let mut params = vec![("error", error.code.as_str())];
        if let Some(d) = &error.description {
            params.push(("error_description", d));
        }
        let location = with_params(redirect_uri, &self.response_params(&params, state));
        Interaction::Redirect {
            location,
            session: None,
        }
    }

    fn response_params<'a>(
        &'a self,
        params: &[(&'a str, &'a str)],
        state: Option<&'a str>,
    ) -> Vec<(&'a str, &'a str)> {
        let mut all = params.to_vec();
        if let Some(state) = state {
            all.push(("state", state));
        }
        all.push(("iss", &self.settings.issuer));
        all
    }
}
