//! HTML pages: the login form and the error page, rendered by askama with HTML escaping.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use crate::oidc::{ConsentForm, LoginForm, LogoutForm};

/// The stylesheet served at `/oauth/static/style.css`.
pub const STYLE_CSS: &str = include_str!("../../static/style.css");

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    base: &'a str,
    form: &'a LoginForm,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    base: &'a str,
    form: &'a ConsentForm,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    base: &'a str,
    form: &'a LogoutForm,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage<'a> {
    base: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    base: &'a str,
    message: &'a str,
}

/// The login form. `base` is the issuer's path prefix.
pub fn login(base: &str, form: &LoginForm) -> HttpResponse {
    let status = if form.error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    html(status, LoginPage { base, form }.render())
}

/// The consent page.
pub fn consent(base: &str, form: &ConsentForm) -> HttpResponse {
    html(StatusCode::OK, ConsentPage { base, form }.render())
}

/// The sign-out confirmation.
pub fn logout(base: &str, form: &LogoutForm) -> HttpResponse {
    html(StatusCode::OK, LogoutPage { base, form }.render())
}

/// The page after signing out, when no client asked to get the browser back.
pub fn signed_out(base: &str) -> HttpResponse {
    html(StatusCode::OK, SignedOutPage { base }.render())
}

/// An error page that sends nothing to the client.
pub fn error(base: &str, status: u16, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    html(status, ErrorPage { base, message }.render())
}

fn html(status: StatusCode, body: askama::Result<String>) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}
