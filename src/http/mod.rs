//! The HTTP layer: routes, cookies, headers and rendering. Handlers parse the request into
//! [`Params`], call the [`Provider`] and render what it returns; OAuth errors are rendered
//! only by [`error::render`].

pub mod error;
mod handlers;
mod middleware;
pub mod pages;

use std::net::IpAddr;

use actix_web::web::{self, resource};
use ipnet::IpNet;

use crate::metrics::SharedMetrics;
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
    /// The session cookie's name.
    pub session_cookie: &'static str,
    /// The browser-binding cookie's name (login CSRF protection).
    pub browser_cookie: &'static str,
    /// Proxies whose `X-Forwarded-For` names the client's address.
    pub trusted_proxies: Vec<IpNet>,
    /// What `/metrics` exports.
    pub metrics: SharedMetrics,
    /// Whether `/metrics` is served with the endpoints (or on a listener of its own).
    pub metrics_here: bool,
}

impl AppState {
    /// State for `provider`, deriving the route prefix and cookie security from the issuer.
    /// Under an https issuer without a path the cookies carry the `__Host-` prefix, so no
    /// sibling domain can plant them.
    pub fn new(provider: Provider, trusted_proxies: Vec<IpNet>, metrics: SharedMetrics) -> Self {
        let issuer = url::Url::parse(&provider.settings.issuer).ok();
        let base = issuer
            .as_ref()
            .map(|u| u.path().trim_end_matches('/').to_string());
        let base = base.unwrap_or_default();
        let secure_cookies = issuer.as_ref().is_some_and(|u| u.scheme() == "https");
        let host_only = secure_cookies && base.is_empty();
        Self {
            provider,
            base,
            secure_cookies,
            session_cookie: if host_only {
                "__Host-kube_idp_session"
            } else {
                "kube_idp_session"
            },
            browser_cookie: if host_only {
                "__Host-kube_idp_browser"
            } else {
                "kube_idp_browser"
            },
            trusted_proxies,
            metrics,
            metrics_here: true,
        }
    }
}

/// The client's address: the peer, or when the peer is a trusted proxy, the right-most
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_address(
    trusted_proxies: &[IpNet],
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
) -> Option<IpAddr> {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let peer = peer?;
    if !trusted(&peer) {
        return Some(peer);
    }
    let hops = forwarded_for
        .unwrap_or("")
        .rsplit(',')
        .map(|h| h.trim().parse::<IpAddr>());
    for hop in hops {
        match hop {
            Ok(ip) if trusted(&ip) => continue,
            Ok(ip) => return Some(ip),
            Err(_) => break,
        }
    }
    Some(peer)
}

/// Registers every route under the issuer's path.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let base = state.base.clone();
        let state_metrics_here = state.metrics_here;
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
                    .service(resource("/readyz").get(handlers::readyz))
                    .configure(|cfg| {
                        if state_metrics_here {
                            cfg.service(resource("/metrics").get(handlers::metrics));
                        }
                    }),
            );
    }
}

/// Registers `/metrics` alone, for a listener of its own.
pub fn configure_metrics(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .service(resource("/metrics").get(handlers::metrics));
    }
}

pub use middleware::{request_id, security_headers};

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let peer = "203.0.113.9".parse().ok();
        assert_eq!(client_address(&[], peer, Some("198.51.100.1")), peer);
    }

    #[test]
    fn the_rightmost_untrusted_hop_behind_trusted_proxies_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = "10.1.2.3".parse().ok();
        let forwarded = Some("198.51.100.7, 203.0.113.5, 10.9.9.9");
        assert_eq!(
            client_address(&trusted, peer, forwarded),
            "203.0.113.5".parse().ok()
        );
        assert_eq!(client_address(&trusted, peer, None), peer);
        assert_eq!(client_address(&trusted, peer, Some("junk")), peer);
    }
}
