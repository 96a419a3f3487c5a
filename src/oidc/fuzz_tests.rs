//! Property tests that throw arbitrary input at the request parsers: authorization requests,
//! token requests (with any `Authorization` header) and client configurations. None may panic,
//! and every token-endpoint failure must be an RFC error other than `server_error`.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;

use super::{authorize, ErrorCode, Params, Provider, Settings};
use crate::keys::{KeySet, Keys, StoredKeySet};
use crate::model::{client_from_secret, Client, GrantMethod, ObjectRef};
use crate::registry::{ClientSet, Registry, UserSet};
use crate::secret::SecretString;
use crate::store::{MemoryStore, StateStore};
use crate::time::{Clock, ManualClock};

fn clients() -> Vec<Client> {
    let client = |id: &str, secret: Option<&str>| Client {
        id: id.into(),
        secret: secret.map(SecretString::new),
        grant_method: GrantMethod::Auto,
        scope_restrictions: vec!["openid".into(), "email".into()],
        redirect_uris: vec!["https://a.example/cb".into(), "http://127.0.0.1/cb".into()],
        post_logout_redirect_uris: vec![],
        trusted: true,
        access_token_max_age: None,
        access_token_inactivity_timeout: None,
        origin: ObjectRef::default(),
    };
    vec![client("harbor", Some("password123")), client("cli", None)]
}

/// One provider for every case: building one generates an RSA key and a bcrypt hash.
fn provider() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let clock = ManualClock::at(1_700_000_000);
        let registry = Registry::new();
        registry.set_clients(ClientSet::build(clients()).0);
        registry.set_users(UserSet::build(vec![]));
        let stored = StoredKeySet::generate(clock.now()).expect("a key");
        let keys = Keys::new(KeySet::load(&stored).expect("a key set"));
        let store = StateStore::new(Arc::new(MemoryStore::new(Arc::new(clock.clone()))));
        let settings = Settings::new("https://idp.example");
        Provider::new(settings, registry, keys, store, Arc::new(clock))
    })
}

/// Form-ish text: real parameter names, odd values, stray separators and escapes.
fn form_text() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code",
        "code_challenge",
        "code_challenge_method",
        "code_verifier",
        "grant_type",
        "prompt",
        "max_age",
        "refresh_token",
        "client_secret",
        "username",
        "password",
        "request",
    ]);
    let value = prop_oneof![
        Just("harbor".to_string()),
        Just("https://a.example/cb".to_string()),
        Just("openid email".to_string()),
        Just("authorization_code".to_string()),
        Just("S256".to_string()),
        "[ -~]{0,60}",
        "%[0-9A-Fa-f]{0,2}[+&=]{0,3}",
        ".{0,40}",
    ];
    prop::collection::vec((name, value), 0..12).prop_map(|pairs| {
        let mut text = String::new();
        for (name, value) in pairs {
            text.push_str(name);
            text.push('=');
            text.push_str(&value);
            text.push('&');
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn authorization_requests_never_panic(text in prop_oneof![form_text(), ".{0,300}"]) {
        let clients = ClientSet::build(clients()).0;
        let _ = authorize::validate(&Params::parse(&text), &clients);
    }

    #[test]
    fn token_requests_never_panic_or_fail_internally(
        text in prop_oneof![form_text(), ".{0,300}"],
        header in prop_oneof![
            Just(None),
            "Basic [A-Za-z0-9+/=:%]{0,40}".prop_map(Some),
            ".{0,60}".prop_map(Some),
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let form = Params::parse(&text);
        let result = runtime.block_on(provider().token(&form, header.as_deref(), None));
        if let Err(e) = result {
            prop_assert_ne!(e.code, ErrorCode::ServerError);
        }
    }

    #[test]
    fn client_configurations_never_panic(config in prop_oneof![
        ".{0,300}",
        "(name|secret|grantMethod|redirectURIs|scopeRestrictions|trusted|accessTokenMaxAgeSeconds): ([ -~]{0,30}|\\[[ -~]{0,30}\\]|-?[0-9]{1,12})\n{0,1}",
    ]) {
        let mut secret = k8s_openapi::api::core::v1::Secret::default();
        secret.metadata.labels = Some([("config.kubesphere.io/type".into(), "oauthclient".into())].into());
        secret.type_ = Some("config.kubesphere.io/oauthclient".into());
        secret.string_data = Some([("configuration.yaml".into(), config)].into());
        let _ = client_from_secret(&secret);
    }
}
