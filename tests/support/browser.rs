//! A browser for tests: keeps cookies, never follows redirects, reads the login form.

use reqwest::header::LOCATION;
use reqwest::redirect::Policy;
use url::Url;

use super::idp::TestIdp;

/// What the provider answered a browser.
#[derive(Debug)]
pub enum Step {
    /// A redirect; `status` is 302 or 303.
    Redirect { status: u16, location: String },
    /// The login form, with its hidden fields.
    Login {
        status: u16,
        request: String,
        csrf: String,
        html: String,
    },
    /// A form with the same hidden fields posting elsewhere: consent or logout confirmation.
    Form {
        status: u16,
        action: String,
        request: String,
        csrf: String,
        html: String,
    },
    /// Any other page.
    Page { status: u16, html: String },
}

impl Step {
    /// The redirect target, or a panic naming what came instead.
    pub fn location(&self) -> &str {
        match self {
            Step::Redirect { location, .. } => location,
            other => panic!("expected a redirect, got {other:?}"),
        }
    }
}

/// A cookie-keeping HTTP client that does not follow redirects.
pub struct Browser {
    /// The client.
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with an empty cookie jar.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .expect("HTTP client");
        Self { http }
    }

    /// GETs `url` and classifies the answer.
    pub async fn open(&self, url: &str) -> Step {
        step(
            self.http
                .get(url)
                .send()
                .await
                .expect("GET reaches kube-idp"),
        )
        .await
    }

    /// Submits the login form shown in `form`.
    pub async fn log_in(&self, idp: &TestIdp, form: &Step, username: &str, password: &str) -> Step {
        self.log_in_at(&idp.url(""), form, username, password).await
    }

    /// Submits the login form shown in `form` to the provider at `base`
    /// (`http://127.0.0.1:PORT`).
    pub async fn log_in_at(&self, base: &str, form: &Step, username: &str, password: &str) -> Step {
        let Step::Login { request, csrf, .. } = form else {
            panic!("expected the login form, got {form:?}");
        };
        let fields = [
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", password),
        ];
        let response = self
            .http
            .post(format!("{base}/oauth/login"))
            .form(&fields)
            .send()
            .await;
        step(response.expect("POST reaches kube-idp")).await
    }

    /// Opens an authorization URL, logs in, and returns the redirect back to the client.
    pub async fn sign_in(
        &self,
        idp: &TestIdp,
        url: &str,
        username: &str,
        password: &str,
    ) -> String {
        let form = self.open(url).await;
        self.log_in(idp, &form, username, password)
            .await
            .location()
            .to_string()
    }
}

async fn step(response: reqwest::Response) -> Step {
    let status = response.status().as_u16();
    if let Some(location) = response.headers().get(LOCATION) {
        let location = location.to_str().expect("ASCII Location").to_string();
        return Step::Redirect { status, location };
    }
    let html = response.text().await.expect("a body");
    let action = form_action(&html);
    match (
        hidden_input(&html, "request"),
        hidden_input(&html, "csrf"),
        action,
    ) {
        (Some(request), Some(csrf), Some(a)) if a.ends_with("/oauth/login") => Step::Login {
            status,
            request,
            csrf,
            html,
        },
        (Some(request), Some(csrf), Some(action)) => Step::Form {
            status,
            action,
            request,
            csrf,
            html,
        },
        _ => Step::Page { status, html },
    }
}

/// The `action` of the page's form.
fn form_action(html: &str) -> Option<String> {
    let marker = "action=\"";
    let start = html.find(marker)? + marker.len();
    Some(html[start..start + html[start..].find('"')?].to_string())
}

/// The value of `<input type="hidden" name="{name}" value="...">`.
fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = Url::parse(url).expect("an absolute URL");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An authorization URL for `client_id`; `extra` parameters add to or replace the defaults
/// (`response_type=code`, `scope=openid email profile`, `state=state-123`).
pub fn authorize_url(
    idp: &TestIdp,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params = vec![
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", "openid email profile"),
        ("state", "state-123"),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        params.push((name, value));
    }
    let mut url = Url::parse(&idp.url("/oauth/authorize")).expect("issuer URL");
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}
