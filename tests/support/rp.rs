//! The relying party: the `openidconnect` crate, configured from kube-idp's discovery
//! document, as Harbor or any other client would be. Knows nothing of how the provider was
//! started, so directory-mode and cluster-mode tests share it.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreTokenResponse,
    CoreUserInfoClaims,
};
use openidconnect::{
    reqwest, AccessToken, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, RedirectUrl, Scope,
    TokenResponse,
};

/// A client built from discovery: authorization endpoint set, token and userinfo endpoints
/// as discovered.
pub type RpClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The relying party's HTTP client: it follows no redirects, as the spec requires of token
/// requests.
pub fn http() -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// Discovers `issuer` and registers as `id` (with `secret`, sent as `client_secret_basic`),
/// redirecting to `redirect`.
pub async fn discover(issuer: &str, id: &str, secret: Option<&str>, redirect: &str) -> RpClient {
    let issuer = IssuerUrl::new(issuer.to_string()).expect("issuer URL");
    let metadata = CoreProviderMetadata::discover_async(issuer, &http())
        .await
        .expect("discovery document is valid");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(id.into()),
        secret.map(|s| ClientSecret::new(s.into())),
    )
    .set_auth_type(AuthType::BasicAuth)
    .set_redirect_uri(RedirectUrl::new(redirect.into()).expect("redirect URL"))
}

/// An authorization request the relying party sent, with what it must check on the way back.
pub struct Authorization {
    /// The authorization URL to open in the browser.
    pub url: String,
    /// The `state` sent.
    pub state: CsrfToken,
    /// The `nonce` sent.
    pub nonce: Nonce,
}

/// A code-flow authorization URL asking for `openid` and `scopes`.
pub fn authorization(client: &RpClient, scopes: &[&str]) -> Authorization {
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in scopes {
        request = request.add_scope(Scope::new(scope.to_string()));
    }
    let (url, state, nonce) = request.url();
    Authorization {
        url: url.to_string(),
        state,
        nonce,
    }
}

/// Exchanges `code` at the token endpoint and verifies the ID token as the crate does
/// (signature against the JWKS, `iss`, `aud`, expiry and `nonce`); returns the response and
/// the verified claims.
pub async fn redeem(
    client: &RpClient,
    code: String,
    nonce: &Nonce,
) -> (CoreTokenResponse, CoreIdTokenClaims) {
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint discovered")
        .request_async(&http())
        .await
        .expect("the code is exchanged");
    let claims = tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), nonce)
        .expect("signature, iss, aud and nonce verify")
        .clone();
    (tokens, claims)
}

/// The userinfo endpoint's answer to `access_token`.
pub async fn userinfo(client: &RpClient, access_token: &AccessToken) -> CoreUserInfoClaims {
    client
        .user_info(access_token.clone(), None)
        .expect("userinfo endpoint discovered")
        .request_async(&http())
        .await
        .expect("userinfo answers")
}
