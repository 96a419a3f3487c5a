//! The discovery document (OpenID Connect Discovery 1.0 §3): exactly what is supported.

use serde_json::{json, Value};

use super::{
    Settings, AUTHORIZE_PATH, INTROSPECT_PATH, JWKS_PATH, LOGOUT_PATH, REVOKE_PATH, TOKEN_PATH,
    USERINFO_PATH,
};
use crate::model::DEFAULT_SCOPES;

/// The claims kube-idp can put in ID tokens and userinfo.
const CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    "name",
    "preferred_username",
    "locale",
    "email",
    "email_verified",
    "groups",
];

/// Client authentication at the token, revocation and introspection endpoints.
const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];

/// Builds the document for these settings.
pub fn document(settings: &Settings) -> Value {
    let mut scopes: Vec<&str> = DEFAULT_SCOPES.to_vec();
    scopes.push(super::scope::OFFLINE_ACCESS);
    json!({
        "issuer": settings.issuer,
        "authorization_endpoint": settings.url(AUTHORIZE_PATH),
        "token_endpoint": settings.url(TOKEN_PATH),
        "userinfo_endpoint": settings.url(USERINFO_PATH),
        "jwks_uri": settings.url(JWKS_PATH),
        "end_session_endpoint": settings.url(LOGOUT_PATH),
        "revocation_endpoint": settings.url(REVOKE_PATH),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint": settings.url(INTROSPECT_PATH),
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "password"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "claims_supported": CLAIMS,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        // `select_account` is accepted and ignored (there is no account chooser), so it is
        // not advertised.
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
    })
}
