//! HTML pages: the login form and the error page, rendered by askama with HTML escaping.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use crate::oidc::LoginForm;

/// The stylesheet served at `/oauth/static/style.css`.
pub const STYLE_CSS: &str = include_str!("../../static/style.css");

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    base: &'a str,
    form: &'a LoginForm,
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
