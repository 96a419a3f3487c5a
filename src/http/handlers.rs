//! Request handlers: parse, call the provider, render.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::{pages, AppState};
use crate::oidc::{Browser, Challenge, ErrorCode, Interaction, OAuthError, Params};

type Data = web::Data<AppState>;

pub async fn discovery(state: Data) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.provider.discovery())
}

pub async fn jwks(state: Data) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.provider.jwks())
}

pub async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(pages::STYLE_CSS)
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

pub async fn metrics(state: Data) -> HttpResponse {
    let registry = &state.provider.registry;
    let text = state
        .metrics
        .render(registry.clients().len(), registry.users().len());
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ))
        .body(text)
}

pub async fn readyz(state: Data) -> HttpResponse {
    let keys_loaded = !state.provider.keys.current().is_empty();
    if state.provider.registry.is_ready() && keys_loaded {
        HttpResponse::Ok().body("ready")
    } else {
        HttpResponse::ServiceUnavailable().body("not ready: clients and users not loaded yet")
    }
}

pub async fn authorize_get(state: Data, req: HttpRequest) -> HttpResponse {
    let params = Params::parse(req.query_string());
    authorize(&state, &req, &params).await
}

pub async fn authorize_post(state: Data, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    match form(&req, &body) {
        Ok(params) => authorize(&state, &req, &params).await,
        Err(e) => pages::error(&state.base, 400, &e.to_string()),
    }
}

async fn authorize(state: &AppState, req: &HttpRequest, params: &Params) -> HttpResponse {
    let browser = browser(state, req);
    let interaction = state.provider.authorize(params, &browser).await;
    respond(state, &browser, interaction, false)
}

pub async fn login(state: Data, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let browser = browser(&state, &req);
    let interaction = match form(&req, &body) {
        Ok(params) => state.provider.login(&params, &browser).await,
        Err(e) => Interaction::Page {
            status: 400,
            message: e.to_string(),
        },
    };
    match &interaction {
        Interaction::Redirect {
            session: Some(_), ..
        }
        | Interaction::Consent {
            session: Some(_), ..
        } => state.metrics.login(true),
        Interaction::Login(_) => state.metrics.login(false),
        _ => {}
    }
    respond(&state, &browser, interaction, true)
}

pub async fn consent(state: Data, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let browser = browser(&state, &req);
    let interaction = match form(&req, &body) {
        Ok(params) => state.provider.consent(&params, &browser).await,
        Err(e) => Interaction::Page {
            status: 400,
            message: e.to_string(),
        },
    };
    respond(&state, &browser, interaction, true)
}

pub async fn logout(state: Data, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let browser = browser(&state, &req);
    let is_post = req.method() == actix_web::http::Method::POST;
    let params = if is_post {
        form(&req, &body)
    } else {
        Ok(Params::parse(req.query_string()))
    };
    let interaction = match params {
        Ok(params) => state.provider.logout(&params, &browser).await,
        Err(e) => Interaction::Page {
            status: 400,
            message: e.to_string(),
        },
    };
    respond(&state, &browser, interaction, is_post)
}

pub async fn revoke(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = form(&req, &body)?;
    let authorization = header_str(&req, header::AUTHORIZATION);
    state
        .provider
        .revoke(&params, authorization, peer(&state, &req))
        .await?;
    Ok(uncached().finish())
}

pub async fn introspect(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = form(&req, &body)?;
    let authorization = header_str(&req, header::AUTHORIZATION);
    let answer = state
        .provider
        .introspect(&params, authorization, peer(&state, &req))
        .await?;
    Ok(uncached().json(answer))
}

pub async fn token(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = form(&req, &body)?;
    let authorization = header_str(&req, header::AUTHORIZATION);
    let response = state
        .provider
        .token(&params, authorization, peer(&state, &req))
        .await?;
    state
        .metrics
        .token_issued(grant_label(params.get("grant_type")));
    Ok(uncached().json(response))
}

pub async fn userinfo(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&req, &body)?;
    let claims = state.provider.userinfo(&token).await?;
    Ok(uncached().json(claims))
}

/// A 200 that no cache may keep, for answers that carry or describe tokens (RFC 6749 §5.1,
/// RFC 6750 §5.3): `Cache-Control: no-store` and, for HTTP/1.0 caches, `Pragma: no-cache`.
fn uncached() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response.insert_header((header::PRAGMA, "no-cache"));
    response
}

/// The metrics label of a grant type that succeeded: a closed set.
fn grant_label(grant_type: Option<&str>) -> &'static str {
    match grant_type {
        Some("authorization_code" | "code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        Some("password") => "password",
        _ => "other",
    }
}

/// RFC 6750 §2: the token in the `Authorization` header, or in a POSTed form body; never
/// both. A request without a bearer token gets a bare challenge (§3.1).
fn bearer_token(req: &HttpRequest, body: &[u8]) -> Result<String, OAuthError> {
    let with_challenge = |e: OAuthError| e.with_challenge(Challenge::Bearer);
    let from_header = header_str(req, header::AUTHORIZATION).and_then(|h| {
        let (scheme, token) = h.split_once(' ').unwrap_or((h, ""));
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
    });
    let in_body = req.method() == actix_web::http::Method::POST && is_form(req);
    let from_body = in_body
        .then(|| {
            Params::parse(std::str::from_utf8(body).unwrap_or(""))
                .get("access_token")
                .map(str::to_owned)
        })
        .flatten();
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(with_challenge(OAuthError::invalid_request(
            "send the token one way only",
        ))),
        (Some(token), None) if token.is_empty() => Err(with_challenge(
            OAuthError::invalid_request("the bearer token is empty"),
        )),
        (Some(token), None) | (None, Some(token)) => Ok(token),
        (None, None) => Err(with_challenge(OAuthError::bare(ErrorCode::InvalidToken))),
    }
}

fn is_form(req: &HttpRequest) -> bool {
    header_str(req, header::CONTENT_TYPE)
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A form-urlencoded body as parameters.
fn form(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    if !is_form(req) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
    Ok(Params::parse(text))
}

/// The client's address, for throttling.
fn peer(state: &AppState, req: &HttpRequest) -> Option<std::net::IpAddr> {
    let forwarded = header_str(req, header::HeaderName::from_static("x-forwarded-for"));
    super::client_address(
        &state.trusted_proxies,
        req.peer_addr().map(|a| a.ip()),
        forwarded,
    )
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn browser(state: &AppState, req: &HttpRequest) -> Browser {
    let cookie = |name| {
        req.cookie(name)
            .map(|c| c.value().to_string())
            .filter(|v| !v.is_empty())
    };
    Browser {
        session: cookie(state.session_cookie),
        binding: cookie(state.browser_cookie).unwrap_or_else(|| crate::secret::random_token(32)),
        source: peer(state, req),
    }
}

/// Renders an interaction and sets or clears the cookies it calls for.
fn respond(
    state: &AppState,
    browser: &Browser,
    interaction: Interaction,
    after_post: bool,
) -> HttpResponse {
    let mut response = match &interaction {
        Interaction::Redirect { location, .. } => redirect(location, after_post),
        Interaction::SignedOut {
            location: Some(location),
        } => redirect(location, after_post),
        Interaction::SignedOut { location: None } => pages::signed_out(&state.base),
        Interaction::Login(form) => pages::login(&state.base, form),
        Interaction::Consent { form, .. } => pages::consent(&state.base, form),
        Interaction::ConfirmLogout(form) => pages::logout(&state.base, form),
        Interaction::Page { status, message } => pages::error(&state.base, *status, message),
    };
    let cookie = |name: &'static str, value: String| {
        let path = if state.base.is_empty() {
            "/".to_string()
        } else {
            state.base.clone()
        };
        Cookie::build(name, value)
            .path(path)
            .http_only(true)
            .secure(state.secure_cookies)
            .same_site(SameSite::Lax)
            .finish()
    };
    let _ = response.add_cookie(&cookie(state.browser_cookie, browser.binding.clone()));
    match interaction {
        Interaction::Redirect {
            session: Some(new), ..
        }
        | Interaction::Consent {
            session: Some(new), ..
        } => {
            let mut c = cookie(state.session_cookie, new.id);
            c.set_max_age(actix_web::cookie::time::Duration::seconds(
                new.max_age as i64,
            ));
            let _ = response.add_cookie(&c);
        }
        Interaction::SignedOut { .. } => {
            let mut gone = cookie(state.session_cookie, String::new());
            gone.make_removal();
            let _ = response.add_cookie(&gone);
        }
        _ => {}
    }
    response
}

/// A redirect; after a form POST it is a 303 so the browser does not resubmit (RFC 9700
/// §4.12).
fn redirect(location: &str, after_post: bool) -> HttpResponse {
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
