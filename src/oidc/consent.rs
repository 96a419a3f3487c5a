//! The consent page for clients with `grantMethod: prompt` (and `prompt=consent`): the user
//! approves the client and its scopes once; the approval is remembered per user and client.
//! The page lists what the client will receive, worked out from the very claims that ID
//! tokens and userinfo release for this account and these scopes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::authorize::AuthorizationRequest;
use super::claims::user_claims;
use super::error::{ErrorCode, OAuthError};
use super::login::{Browser, Interaction};
use super::params::Params;
use super::session::{Session, TOKEN_BYTES};
use super::{scope, Provider};
use crate::model::Account;
use crate::secret::{random_token, storage_key, SecretString};

/// How long an approval is remembered, in seconds (a year).
const CONSENT_TTL: u64 = 365 * 86_400;

/// The consent page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentForm {
    /// The pending request's id.
    pub request_id: String,
    /// The CSRF token.
    pub csrf: String,
    /// The client asking.
    pub client_id: String,
    /// What the client will receive and be able to do, one line each.
    pub scopes: Vec<String>,
}

/// A request waiting for the user's decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingConsent {
    request: AuthorizationRequest,
    browser: String,
    csrf: String,
    username: String,
}

fn pending_key(id: &str) -> String {
    format!("consent-request:{}", storage_key(id))
}

fn approval_key(username: &str, client_id: &str) -> String {
    format!(
        "consent:{}",
        storage_key(&format!("{username}\0{client_id}"))
    )
}

/// Claims that [`released`] describes by name; any other is listed as itself.
const DESCRIBED_CLAIMS: &[&str] = &[
    "sub",
    "name",
    "preferred_username",
    "locale",
    "email",
    "email_verified",
    "groups",
];
/// Groups named on the page before the rest are counted.
const GROUPS_SHOWN: usize = 10;

/// What the client receives, for the person approving it: one line per kind of claim that
/// `scopes` release for `account` (groups whenever the account has any, as in every ID
/// token), then what the other scopes allow.
fn released(account: &Account, scopes: &[String]) -> Vec<String> {
    let claims = user_claims(account, scopes);
    let mut lines = vec!["Sign you in with your account and see your username".to_string()];
    let profile: Vec<&str> = [
        ("name", "name"),
        ("preferred_username", "username"),
        ("locale", "language"),
    ]
    .into_iter()
    .filter(|(claim, _)| claims.contains_key(*claim))
    .map(|(_, words)| words)
    .collect();
    if !profile.is_empty() {
        lines.push(format!("See your {}", in_words(&profile)));
    }
    if claims.contains_key("email") {
        lines.push("See your email address".into());
    }
    if let Some(groups) = groups(&claims) {
        lines.push(format!("See the groups you belong to: {groups}"));
    }
    let others = claims
        .keys()
        .filter(|c| !DESCRIBED_CLAIMS.contains(&c.as_str()));
    lines.extend(others.map(|claim| format!("See your {claim}")));
    for granted in scopes {
        match granted.as_str() {
            scope::OPENID | "profile" | "email" | "groups" => {}
            scope::OFFLINE_ACCESS => {
                lines.push("Keep access while you are away (refresh tokens)".into())
            }
            other => lines.push(format!("Scope {other}")),
        }
    }
    lines
}

/// `a`, `a and b`, `a, b and c`.
fn in_words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The released groups, the first few by name.
fn groups(claims: &Map<String, Value>) -> Option<String> {
    let groups = claims.get("groups")?.as_array()?;
    let names: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
    let shown = names[..names.len().min(GROUPS_SHOWN)].join(", ");
    Some(match names.len().saturating_sub(GROUPS_SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    })
}

impl Provider {
    /// True when the user already approved every scope of this request for this client, and
    /// the request does not ask to be asked again.
    pub(crate) async fn has_consent(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
    ) -> Result<bool, OAuthError> {
        if request.prompt.consent {
            return Ok(false);
        }
        let key = approval_key(&session.username, &request.client_id);
        let approved: Vec<String> = self.store.get(&key).await?.unwrap_or_default();
        Ok(request.scopes.iter().all(|s| approved.contains(s)))
    }

    pub(crate) async fn ask_for_consent(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        browser: &Browser,
    ) -> Result<ConsentForm, OAuthError> {
        let users = self.registry.users();
        let account = users.get(&session.username).ok_or_else(|| {
            OAuthError::new(ErrorCode::AccessDenied, "the account no longer exists")
        })?;
        let id = random_token(TOKEN_BYTES);
        let pending = PendingConsent {
            request: request.clone(),
            browser: storage_key(&browser.binding),
            csrf: random_token(TOKEN_BYTES),
            username: session.username.clone(),
        };
        let ttl = self.settings.login_request_lifetime;
        self.store.put(&pending_key(&id), &pending, ttl).await?;
        Ok(ConsentForm {
            request_id: id,
            csrf: pending.csrf,
            client_id: request.client_id.clone(),
            scopes: released(account, &request.scopes),
        })
    }

    /// The consent form's submission: `decision` is `allow` or `deny`.
    pub async fn consent(&self, form: &Params, browser: &Browser) -> Interaction {
        let id = form.get("request").unwrap_or("");
        let pending =
            match self.store.take::<PendingConsent>(&pending_key(id)).await {
                Ok(Some(pending)) => pending,
                Ok(None) => return Interaction::page(
                    400,
                    "This consent form has expired. Go back to the application and sign in again.",
                ),
                Err(e) => return Interaction::page(503, OAuthError::from(e).to_string()),
            };
        let csrf = SecretString::new(pending.csrf.clone());
        if pending.browser != storage_key(&browser.binding)
            || !csrf.matches(form.get("csrf").unwrap_or(""))
        {
            tracing::warn!(client_id = %pending.request.client_id, "consent refused: CSRF check failed");
            return Interaction::page(403, "This consent form could not be verified. Go back to the application and sign in again.");
        }
        let request = pending.request;
        let back = |error: OAuthError| {
            self.error_redirect(&request.redirect_uri, request.state.as_deref(), &error)
        };
        let session = match self.session(browser.session.as_deref()).await {
            Ok(Some((session, _))) if session.username == pending.username => session,
            Ok(_) => {
                return back(OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the session ended",
                ))
            }
            Err(e) => return back(e),
        };
        if form.get("decision") != Some("allow") {
            tracing::info!(user = %session.username, client_id = %request.client_id, "consent denied");
            return back(OAuthError::new(
                ErrorCode::AccessDenied,
                "the user denied the request",
            ));
        }
        let result = async {
            self.remember_consent(&session.username, &request).await?;
            self.redirect_with_code(&request, &session, None).await
        };
        result.await.unwrap_or_else(back)
    }

    async fn remember_consent(
        &self,
        username: &str,
        request: &AuthorizationRequest,
    ) -> Result<(), OAuthError> {
        let key = approval_key(username, &request.client_id);
        let mut approved: Vec<String> = self.store.get(&key).await?.unwrap_or_default();
        for scope in &request.scopes {
            if !approved.contains(scope) {
                approved.push(scope.clone());
            }
        }
        tracing::info!(user = %username, client_id = %request.client_id, "consent given");
        Ok(self.store.put(&key, &approved, CONSENT_TTL).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectRef;

    fn account(groups: &[&str], email: Option<&str>, lang: Option<&str>) -> Account {
        Account {
            username: "admin".into(),
            email: email.map(str::to_owned),
            display_name: None,
            lang: lang.map(str::to_owned),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            password: None,
            state: "Active".into(),
            origin: ObjectRef::default(),
        }
    }

    fn scopes(list: &str) -> Vec<String> {
        list.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn groups_are_listed_whenever_they_are_released_even_without_the_groups_scope() {
        let lines = released(&account(&["ops", "dev"], None, None), &scopes("openid"));
        assert_eq!(
            lines,
            [
                "Sign you in with your account and see your username",
                "See the groups you belong to: ops, dev"
            ]
        );
    }

    #[test]
    fn scopes_that_release_nothing_for_this_account_are_not_listed() {
        let lines = released(&account(&[], None, None), &scopes("openid email groups"));
        assert_eq!(
            lines,
            ["Sign you in with your account and see your username"]
        );
    }

    #[test]
    fn profile_lists_what_it_releases() {
        let without_lang = released(&account(&[], None, None), &scopes("openid profile"));
        assert_eq!(without_lang[1], "See your name and username");
        let with_lang = released(&account(&[], None, Some("en")), &scopes("openid profile"));
        assert_eq!(with_lang[1], "See your name, username and language");
    }

    #[test]
    fn every_released_claim_is_described() {
        let everything = account(&["ops"], Some("a@example.com"), Some("en"));
        let all = scopes("openid profile email groups offline_access");
        let claims = user_claims(&everything, &all);
        let undescribed: Vec<&String> = claims
            .keys()
            .filter(|c| !DESCRIBED_CLAIMS.contains(&c.as_str()))
            .collect();
        assert!(
            undescribed.is_empty(),
            "describe {undescribed:?} on the consent page"
        );
        assert_eq!(
            released(&everything, &all),
            [
                "Sign you in with your account and see your username",
                "See your name, username and language",
                "See your email address",
                "See the groups you belong to: ops",
                "Keep access while you are away (refresh tokens)"
            ]
        );
    }

    #[test]
    fn many_groups_are_counted_after_the_first_ten() {
        let names: Vec<String> = (1..=12).map(|i| format!("g{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let lines = released(&account(&names, None, None), &scopes("openid"));
        assert_eq!(
            lines[1],
            "See the groups you belong to: g1, g2, g3, g4, g5, g6, g7, g8, g9, g10 and 2 more"
        );
    }
}
