//! The browser side of the flow: the authorization endpoint's decision (code, login form or
//! error) and the login form's submission.
//!
//! A pending login is bound to a browser cookie and carries a CSRF token, so a form cannot
//! be submitted from another browser or site (login CSRF). It is taken from the store only
//! once its credentials are accepted: a failed attempt, or a state store that fails, leaves
//! it for the next submission.

use std::sync::Arc;

use super::authorize::{self, AuthorizationRequest, Rejection};
use super::consent::ConsentForm;
use super::error::{ErrorCode, OAuthError};
use super::lockout::Attempt;
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
/// The message while a login name or address is locked.
const LOGIN_THROTTLED: &str = "Too many failed sign-in attempts. Wait a few minutes and try again.";
/// The page for a login form that is gone (expired, or used by a concurrent submission).
const LOGIN_EXPIRED: &str =
    "This sign-in form has expired. Go back to the application and sign in again.";

/// Why credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    /// Unknown name, wrong password, no password, or an inactive account.
    Invalid,
    /// Too many failures for this name or address.
    Throttled,
    /// The state store failed before the credentials were decided on: nothing about them is
    /// known (`temporarily_unavailable` when the store is unreachable).
    Store(OAuthError),
}

/// What the HTTP layer knows about the browser.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    /// The session cookie, if any.
    pub session: Option<String>,
    /// The browser-binding cookie; the HTTP layer sets one when absent.
    pub binding: String,
    /// The client's address, for login throttling.
    pub source: Option<std::net::IpAddr>,
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
    /// Show the consent page, setting a session cookie after a login.
    Consent {
        /// The page.
        form: ConsentForm,
        /// A new session cookie, after a login.
        session: Option<NewSession>,
    },
    /// Ask the user to confirm signing out.
    ConfirmLogout(super::logout::LogoutForm),
    /// The session has ended: clear the cookie, then go to `location` or show a page.
    SignedOut {
        /// The registered post-logout redirect, with `state`.
        location: Option<String>,
    },
    /// Show an error page; nothing is sent to the client.
    Page {
        /// The HTTP status.
        status: u16,
        /// What to tell the user.
        message: String,
    },
}

impl Interaction {
    pub(crate) fn page(status: u16, message: impl Into<String>) -> Self {
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
        let validated = authorize::validate(params, &self.registry.clients());
        let request = match validated.and_then(|r| self.with_hint(r, params)) {
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

    /// Adds the subject of a valid `id_token_hint` to a validated request; an invalid hint
    /// goes back to the client as `invalid_request`. The subject prefills the login form
    /// unless `login_hint` names someone.
    fn with_hint(
        &self,
        mut request: AuthorizationRequest,
        params: &Params,
    ) -> Result<AuthorizationRequest, Rejection> {
        match self.hinted_subject(params.get("id_token_hint")) {
            Ok(subject) => {
                if request.login_hint.is_none() {
                    request.login_hint.clone_from(&subject);
                }
                request.hinted_subject = subject;
                Ok(request)
            }
            Err(error) => Err(Rejection::Redirect {
                state: request.state.take(),
                redirect_uri: request.redirect_uri,
                error,
            }),
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
        // A session of someone other than the hinted user does not answer this request.
        let hinted = |s: &Session| {
            let other = request
                .hinted_subject
                .as_ref()
                .is_some_and(|h| *h != s.username);
            if other {
                tracing::info!(client_id = %request.client_id, "session is not the id_token_hint's user");
            }
            !other
        };
        match self.session(browser.session.as_deref()).await? {
            Some((session, _)) if !request.prompt.login && fresh(&session) && hinted(&session) => {
                self.complete(&request, &session, browser, None).await
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
        // Read, not taken: it is taken once the credentials are accepted (`logged_in`).
        let pending = match self.store.get::<PendingLogin>(&login_key(id)).await {
            Ok(Some(pending)) => pending,
            Ok(None) => return Interaction::page(400, LOGIN_EXPIRED),
            Err(e) => return store_failed(e.into()),
        };
        let csrf = SecretString::new(pending.csrf.clone());
        let same_browser = pending.browser == storage_key(&browser.binding);
        if !same_browser || !csrf.matches(form.get("csrf").unwrap_or("")) {
            tracing::warn!(client_id = %pending.request.client_id, "login refused: CSRF check failed");
            return Interaction::page(403, "This sign-in form could not be verified. Go back to the application and sign in again.");
        }
        let login = form.get("username").unwrap_or("").trim();
        let password = form.get("password").unwrap_or("");
        match self
            .authenticate(login, password, browser.source.as_ref())
            .await
        {
            Ok(account) => self.logged_in(id, &account, browser).await,
            Err(LoginFailure::Invalid) => login_again(id, pending, login, LOGIN_FAILED),
            Err(LoginFailure::Throttled) => login_again(id, pending, login, LOGIN_THROTTLED),
            Err(LoginFailure::Store(error)) => store_failed(error),
        }
    }

    /// Takes the pending login `id` whose credentials were accepted, then signs the account
    /// in. Taken, not read: of concurrent submissions of one form only one proceeds.
    async fn logged_in(&self, id: &str, account: &Account, browser: &Browser) -> Interaction {
        let request = match self.store.take::<PendingLogin>(&login_key(id)).await {
            Ok(Some(pending)) => pending.request,
            Ok(None) => return Interaction::page(400, LOGIN_EXPIRED),
            Err(e) => return store_failed(e.into()),
        };
        let result = async {
            let now = self.clock.now();
            let (cookie, session) = self.start_session(&account.username, now).await?;
            tracing::info!(user = %account.username, client_id = %request.client_id, "login succeeded");
            let new = NewSession {
                id: cookie,
                max_age: self.settings.session_max_age,
            };
            self.complete(&request, &session, browser, Some(new)).await
        };
        match result.await {
            Ok(interaction) => interaction,
            Err(error) => {
                self.error_redirect(&request.redirect_uri, request.state.as_deref(), &error)
            }
        }
    }

    /// Verifies a login name (username or email) and password, with throttling. Unknown
    /// names cost the same bcrypt work as known ones; every failure looks the same. The
    /// attempt is counted before the password is checked, so concurrent guesses cannot
    /// outrun the lockout.
    pub(crate) async fn authenticate(
        &self,
        login: &str,
        password: &str,
        source: Option<&std::net::IpAddr>,
    ) -> Result<Arc<Account>, LoginFailure> {
        if login.is_empty()
            || login.len() > MAX_CREDENTIAL_LEN
            || password.len() > MAX_CREDENTIAL_LEN
        {
            return Err(LoginFailure::Invalid);
        }
        let account = self.registry.users().find_login(login).cloned();
        let attempt = Attempt {
            subject: account
                .as_ref()
                .map_or_else(|| login.to_lowercase(), |a| a.username.clone()),
            known: account.is_some(),
            source,
        };
        let reserved = self.reserve_attempt(&attempt).await;
        let Some(reservation) = reserved.map_err(LoginFailure::Store)? else {
            tracing::warn!(user = %attempt.logged_name(), "login refused: locked out");
            return Err(LoginFailure::Throttled);
        };
        let verified = self.verify_password(account.as_deref(), password).await;
        let result = match account {
            Some(a) if verified && a.is_active() => Ok(a),
            Some(a) if verified => {
                tracing::warn!(user = %a.username, state = %a.state, "login refused: account not active");
                Err(LoginFailure::Invalid)
            }
            Some(a) => {
                tracing::warn!(user = %a.username, "login refused: wrong password");
                Err(LoginFailure::Invalid)
            }
            None => {
                tracing::warn!("login refused: unknown login name");
                Err(LoginFailure::Invalid)
            }
        };
        let recorded = match &result {
            Ok(_) => self.record_success(&attempt).await,
            Err(_) => self.record_failure(&attempt, &reservation).await,
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record the login attempt");
        }
        result
    }

    /// bcrypt verification off the async workers; an unknown name or an account without a
    /// password is checked against a dummy hash so that it costs the same and never matches.
    /// The work is always awaited: answering before it ends would tell the two apart.
    async fn verify_password(&self, account: Option<&Account>, password: &str) -> bool {
        let hash = account
            .and_then(|a| a.password.as_ref())
            .map(|h| h.as_str().to_owned());
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.to_owned();
        let verified =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false));
        let verified = verified.await.unwrap_or(false);
        known && verified
    }

    /// Issues a code and sends the browser back to the client; `login_required` instead
    /// when an `id_token_hint` named someone else than the session's user (OIDC Core
    /// §3.1.2.1), which keeps `new_session`: that user did sign in.
    pub(crate) async fn complete(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        browser: &Browser,
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
        if let Some(hinted) = request.hinted_subject.as_ref() {
            if *hinted != session.username {
                tracing::warn!(client_id = %request.client_id, user = %session.username, hinted = %hinted, "authorization refused: signed in as another user than the id_token_hint's");
                let error = OAuthError::new(
                    ErrorCode::LoginRequired,
                    "the user who signed in is not the one id_token_hint names",
                );
                let (uri, state) = (&request.redirect_uri, request.state.as_deref());
                return Ok(Interaction::Redirect {
                    location: self.error_location(uri, state, &error),
                    session: new_session,
                });
            }
        }
        if client.grant_method == GrantMethod::Prompt && !self.has_consent(request, session).await?
        {
            if request.prompt.none {
                return Err(OAuthError::bare(ErrorCode::ConsentRequired));
            }
            let form = self.ask_for_consent(request, session, browser).await?;
            return Ok(Interaction::Consent {
                form,
                session: new_session,
            });
        }
        self.redirect_with_code(request, session, new_session).await
    }

    /// Issues a code and builds the redirect that carries it.
    pub(crate) async fn redirect_with_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        new_session: Option<NewSession>,
    ) -> Result<Interaction, OAuthError> {
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
    pub(crate) fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &OAuthError,
    ) -> Interaction {
        Interaction::Redirect {
            location: self.error_location(redirect_uri, state, error),
            session: None,
        }
    }

    /// The client's redirect URI with an error, `state` and `iss`.
    fn error_location(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &OAuthError,
    ) -> String {
        let mut params = vec![("error", error.code.as_str())];
        if let Some(d) = &error.description {
            params.push(("error_description", d));
        }
        with_params(redirect_uri, &self.response_params(&params, state))
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

/// Shows the form again with `message`; the pending login is still stored.
fn login_again(id: &str, pending: PendingLogin, login: &str, message: &str) -> Interaction {
    Interaction::Login(LoginForm {
        request_id: id.to_string(),
        csrf: pending.csrf,
        client_id: pending.request.client_id,
        login_hint: Some(login.to_string()).filter(|l| l.len() <= MAX_CREDENTIAL_LEN),
        error: Some(message.into()),
    })
}

/// The page for a state store that failed: 503 when it is unreachable.
fn store_failed(error: OAuthError) -> Interaction {
    Interaction::page(error.code.status(), error.to_string())
}
