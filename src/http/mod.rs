//! The HTTP layer: routes, cookies, headers and rendering. Handlers parse the request into
//! [`Params`], call the [`Provider`] and render what it returns; OAuth errors are rendered
//! only by [`error::render`].

pub mod error;
mod handlers;
mod middleware;
pub mod pages;

use actix_web::web;

use crate::oidc::Provider;

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
                    .route(
                        "/.well-known/openid-configuration",
                        web::get().to(handlers::discovery),
                    )
                    .route("/oauth/keys", web::get().to(handlers::jwks))
                    .route("/oauth/authorize", web::get().to(handlers::authorize_get))
                    .route("/oauth/authorize", web::post().to(handlers::authorize_post))
                    .route("/oauth/login", web::post().to(handlers::login))
                    .route("/oauth/consent", web::post().to(handlers::consent))
                    .route("/oauth/token", web::post().to(handlers::token))
                    .route("/oauth/logout", web::get().to(handlers::logout))
                    .route("/oauth/logout", web::post().to(handlers::logout))
                    .route("/oauth/revoke", web::post().to(handlers::revoke))
                    .route("/oauth/introspect", web::post().to(handlers::introspect))
                    .route("/oauth/userinfo", web::get().to(handlers::userinfo))
                    .route("/oauth/userinfo", web::post().to(handlers::userinfo))
                    .route("/oauth/static/style.css", web::get().to(handlers::style))
                    .route("/healthz", web::get().to(handlers::healthz))
                    .route("/readyz", web::get().to(handlers::readyz)),
            );
    }
}

pub use middleware::{request_id, security_headers};
