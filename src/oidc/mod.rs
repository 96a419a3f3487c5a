//! The OpenID Connect provider's protocol logic: what each endpoint decides, independent of
//! the web framework. Handlers in `http` parse a request into [`Params`], call a method of
//! [`Provider`] and render what it returns.
//!
//! Implements OpenID Connect Core 1.0 (authorization code flow), RFC 6749, RFC 7636 (PKCE,
//! S256 only), RFC 9207 (`iss` in responses) and the choices in DESIGN.md.

mod authorize;
mod claims;
mod client_auth;
mod code;
mod consent;
mod discovery;
mod error;
#[cfg(test)]
mod fuzz_tests;
mod hint;
mod lockout;
mod log_safe;
mod login;
mod logout;
mod params;
mod redirect;
mod refresh;
mod revoke;
mod scope;
#[cfg(test)]
mod security_tests;
mod session;
#[cfg(test)]
mod store_tests;
mod token;

use std::sync::Arc;

pub use authorize::AuthorizationRequest;
pub use consent::ConsentForm;
pub use error::{Challenge, ErrorCode, OAuthError};
pub use lockout::{LockoutListener, LockoutPolicy};
pub(crate) use log_safe::Untrusted;
pub use login::{Browser, Interaction, LoginForm, NewSession};
pub use logout::LogoutForm;
pub use params::Params;
pub use redirect::redirect_uri_matches;
pub use token::TokenResponse;

use crate::keys::Keys;
use crate::registry::Registry;
use crate::store::StateStore;
use crate::time::SharedClock;

/// The authorization endpoint, under the issuer.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// The login form's target.
pub const LOGIN_PATH: &str = "/oauth/login";
/// The consent form's target.
pub const CONSENT_PATH: &str = "/oauth/consent";
/// The token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// The userinfo endpoint.
pub const USERINFO_PATH: &str = "/oauth/userinfo";
/// The end-session endpoint.
pub const LOGOUT_PATH: &str = "/oauth/logout";
/// The revocation endpoint.
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// The introspection endpoint.
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
/// The JWKS.
pub const JWKS_PATH: &str = "/oauth/keys";
/// The discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Lifetimes and other protocol settings, in seconds.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer URL, without a trailing slash.
    pub issuer: String,
    /// Access-token (and ID-token) lifetime, unless a client sets its own.
    pub access_token_lifetime: u64,
    /// How long an authorization code may wait to be redeemed.
    pub code_lifetime: u64,
    /// How long a login form stays valid.
    pub login_request_lifetime: u64,
    /// The longest a browser session lasts after login.
    pub session_max_age: u64,
    /// A browser session (and a refresh token without `offline_access`) ends after this
    /// long unused.
    pub session_idle_timeout: u64,
    /// How long an `offline_access` refresh token lasts unused.
    pub offline_idle_timeout: u64,
    /// How often the signing key is replaced.
    pub key_rotation_period: u64,
}

impl Settings {
    /// Settings with the defaults for `issuer`.
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            access_token_lifetime: 7200,
            code_lifetime: 60,
            login_request_lifetime: 600,
            session_max_age: 86_400,
            session_idle_timeout: 7200,
            offline_idle_timeout: 30 * 86_400,
            key_rotation_period: 30 * 86_400,
        }
    }

    /// The absolute URL of an endpoint path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// Everything an endpoint needs: settings, the registry, keys, state and the clock.
#[derive(Clone)]
pub struct Provider {
    /// Protocol settings.
    pub settings: Arc<Settings>,
    /// Clients and accounts.
    pub registry: Arc<Registry>,
    /// Signing keys.
    pub keys: Arc<Keys>,
    /// Sessions, codes, refresh tokens.
    pub store: StateStore,
    /// The time.
    pub clock: SharedClock,
    /// Limits on failed logins.
    pub lockout: LockoutPolicy,
    /// Told when an account is locked.
    lockout_listener: Option<Arc<dyn LockoutListener>>,
    /// A bcrypt hash verified when the login name is unknown, so that an unknown user costs
    /// the same time as a wrong password.
    dummy_hash: Arc<str>,
}

impl Provider {
    /// Assembles a provider.
    pub fn new(
        settings: Settings,
        registry: Arc<Registry>,
        keys: Arc<Keys>,
        store: StateStore,
        clock: SharedClock,
    ) -> Self {
        let dummy = crate::secret::random_token(16);
        let dummy_hash = bcrypt::hash(dummy, crate::model::PASSWORD_COST).expect("bcrypt hashes");
        Self {
            settings: Arc::new(settings),
            registry,
            keys,
            store,
            clock,
            lockout: LockoutPolicy::default(),
            lockout_listener: None,
            dummy_hash: dummy_hash.into(),
        }
    }

    /// The discovery document.
    pub fn discovery(&self) -> serde_json::Value {
        discovery::document(&self.settings)
    }

    /// The JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.current().jwks()
    }
}
