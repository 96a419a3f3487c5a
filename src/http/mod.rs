//! The HTTP layer: routes, cookies, headers and rendering. Handlers parse the request into
//! [`Params`], call the [`Provider`] and render what it returns; OAuth errors are rendered
//! only by [`error::render`].

pub mod error;
mod handlers;
mod middleware;
pub mod pages;

use actix_web::web::{self, resource};

use crate::oidc::{
    Provider, AUTHORIZE_PATH, CONSENT_PATH, DISCOVERY_PATH, INTROSPECT_PATH, JWKS_PATH, LOGIN_PATH,
    LOGOUT_PATH, REVOKE_PATH, TOKEN_PATH, USERINFO_PATH,
};

/// The largest form body accepted, in bytes.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The protocol logic.
    pub provider: Provider,
    /// The issuer's path, prefixed to every route (empty when the issuer has none).
    pub base: String,
    /// Whether cookies are `Secure`.
    pub secure_cookies: bool,
}

impl AppState {
    /// State for `provider`, deriving the route prefix and cookie security from the issuer.
    pub fn new(provider: Provider) -> Self {
        let issuer = url::Url::parse(&provider.settings.issuer).ok();
        let base = issuer
            .as_ref()
            .map(|u| u.path().trim_end_matches('/').to_string());
        let secure_cookies = issuer.as_ref().is_some_and(|u| u.scheme() == "https");
        Self {
            provider,
            base: base.unwrap_or_default(),
            secure_cookies,
        }
    }
}

/// Registers every route under the issuer's path.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let base = state.base.clone();
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(MAX_FORM_BYTES))
            .service(
                web::scope(&base)
                    .service(resource(DISCOVERY_PATH).get(handlers::discovery))
                    .service(resource(JWKS_PATH).get(handlers::jwks))
                    .service(
                        resource(AUTHORIZE_PATH)
                            .get(handlers::authorize_get)
                            .post(handlers::authorize_post),
                    )
                    .service(resource(LOGIN_PATH).post(handlers::login))
                    .service(resource(CONSENT_PATH).post(handlers::consent))
                    .service(resource(TOKEN_PATH).post(handlers::token))
                    .service(
                        resource(USERINFO_PATH)
                            .get(handlers::userinfo)
                            .post(handlers::userinfo),
                    )
                    .service(
                        resource(LOGOUT_PATH)
                            .get(handlers::logout)
                            .post(handlers::logout),
                    )
                    .service(resource(REVOKE_PATH).post(handlers::revoke))
                    .service(resource(INTROSPECT_PATH).post(handlers::introspect))
                    .service(resource("/oauth/static/style.css").get(handlers::style))
                    .service(resource("/healthz").get(handlers::healthz))
                    .service(resource("/readyz").get(handlers::readyz)),
            );
    }
}

pub use middleware::{request_id, security_headers};
