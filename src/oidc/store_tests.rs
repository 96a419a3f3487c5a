//! Regression tests for the protocol logic on stores that behave as a shared one does. A
//! store that fails: its error is a `temporarily_unavailable` (a 503), never mistaken for a
//! refused credential, and spends nothing the user needs to try again. A store that yields
//! at every call, so that concurrent requests interleave as they do across replicas.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::security_tests::{provider_on, ADMIN_PASSWORD};
use super::{Browser, ErrorCode, Interaction, Params, Provider};
use crate::store::{MemoryStore, Store, StoreError};

/// A memory store that, while `full`, refuses every write that may grow it, as Redis does
/// past `maxmemory` (`OOM command not allowed`); reads and deletes go on.
struct FullStore {
    inner: MemoryStore,
    full: AtomicBool,
    /// While set, `take` fails as a Redis that went away mid-request would.
    takes_fail: AtomicBool,
}

impl FullStore {
    fn refuse(&self) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "redis ExecAbortError: OOM command not allowed".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FullStore {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: u64) -> Result<(), StoreError> {
        self.refuse()?;
        self.inner.put(key, value, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if self.takes_fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "redis IoError: connection refused".into(),
            ));
        }
        self.inner.take(key).await
    }

    async fn swap(
        &self,
        key: &str,
        expected: &[u8],
        value: Vec<u8>,
        ttl: u64,
    ) -> Result<bool, StoreError> {
        self.refuse()?;
        self.inner.swap(key, expected, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn incr(&self, key: &str, ttl: u64) -> Result<u64, StoreError> {
        self.refuse()?;
        self.inner.incr(key, ttl).await
    }

    async fn decr(&self, key: &str) -> Result<u64, StoreError> {
        self.refuse()?;
        self.inner.decr(key).await
    }
}

/// The fixture provider on a [`FullStore`], and the store, not full yet.
fn provider() -> (Provider, Arc<FullStore>) {
    let mut store = None;
    let provider = provider_on(|clock| {
        let full = Arc::new(FullStore {
            inner: MemoryStore::new(clock),
            full: AtomicBool::new(false),
            takes_fail: AtomicBool::new(false),
        });
        store = Some(full.clone());
        full
    });
    (provider, store.expect("the provider made its store"))
}

fn browser() -> Browser {
    Browser {
        binding: "browser-binding".into(),
        ..Browser::default()
    }
}

/// The login form of an authorization request by `harbor`.
async fn login_form(provider: &Provider) -> super::LoginForm {
    let request = Params::from_pairs(vec![
        ("client_id", "harbor"),
        ("redirect_uri", "https://a.example/cb"),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
    ]);
    match provider.authorize(&request, &browser()).await {
        Interaction::Login(form) => form,
        other => panic!("expected the login form, got {other:?}"),
    }
}

async fn submit(provider: &Provider, form: &super::LoginForm, password: &str) -> Interaction {
    let fields = Params::from_pairs(vec![
        ("request", form.request_id.as_str()),
        ("csrf", form.csrf.as_str()),
        ("username", "admin"),
        ("password", password),
    ]);
    provider.login(&fields, &browser()).await
}

#[tokio::test]
async fn a_revocation_cut_short_by_the_store_has_already_revoked_the_access_tokens() {
    let (provider, store) = provider();
    let grant = Params::from_pairs(vec![
        ("grant_type", "password"),
        ("client_id", "harbor"),
        ("client_secret", "password123"),
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
    ]);
    let tokens = provider.token(&grant, None, None).await.expect("tokens");
    let refresh = tokens.refresh_token.expect("a refresh token");
    assert!(provider.userinfo(&tokens.access_token).await.is_ok());

    store.takes_fail.store(true, Ordering::SeqCst);
    let revoke = Params::from_pairs(vec![
        ("client_id", "harbor"),
        ("client_secret", "password123"),
        ("token", refresh.as_str()),
    ]);
    let failed = provider.revoke(&revoke, None, None).await.unwrap_err();
    assert_eq!(failed.code, ErrorCode::TemporarilyUnavailable, "{failed}");
    let refused = provider.userinfo(&tokens.access_token).await.unwrap_err();
    assert_eq!(
        refused.code,
        ErrorCode::InvalidToken,
        "revoked before the store failed"
    );

    store.takes_fail.store(false, Ordering::SeqCst);
    provider
        .revoke(&revoke, None, None)
        .await
        .expect("a retry finds the family");
    let form = Params::from_pairs(vec![
        ("grant_type", "refresh_token"),
        ("client_id", "harbor"),
        ("client_secret", "password123"),
        ("refresh_token", refresh.as_str()),
    ]);
    let gone = provider.token(&form, None, None).await.unwrap_err();
    assert_eq!(gone.code, ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn password_grant_is_temporarily_unavailable_not_throttled_when_the_store_is_full() {
    let (provider, store) = provider();
    store.full.store(true, Ordering::SeqCst);
    let form = Params::from_pairs(vec![
        ("grant_type", "password"),
        ("client_id", "harbor"),
        ("client_secret", "password123"),
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
    ]);
    let refused = provider.token(&form, None, None).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::TemporarilyUnavailable, "{refused}");
    assert_eq!(refused.code.status(), 503);

    store.full.store(false, Ordering::SeqCst);
    let tokens = provider.token(&form, None, None).await;
    assert!(tokens.is_ok_and(|t| t.id_token.is_some()));
}

#[tokio::test]
async fn login_form_is_a_503_page_while_the_store_is_full_and_signs_in_once_it_recovers() {
    let (provider, store) = provider();
    let form = login_form(&provider).await;
    store.full.store(true, Ordering::SeqCst);
    for password in [ADMIN_PASSWORD, "wrong"] {
        let page = submit(&provider, &form, password).await;
        let Interaction::Page { status, message } = &page else {
            panic!("expected the 503 page, got {page:?}")
        };
        assert_eq!(*status, 503, "{message}");
        assert!(message.contains("temporarily_unavailable"), "{message}");
    }

    store.full.store(false, Ordering::SeqCst);
    let back = submit(&provider, &form, ADMIN_PASSWORD).await;
    let Interaction::Redirect { location, session } = &back else {
        panic!("the same form signs in once the store recovers: {back:?}")
    };
    assert!(location.contains("code="), "{location}");
    assert!(session.is_some(), "{back:?}");
}

/// A memory store that yields before every call, as a network round trip does.
struct YieldingStore(MemoryStore);

#[async_trait]
impl Store for YieldingStore {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: u64) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        self.0.put(key, value, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        tokio::task::yield_now().await;
        self.0.get(key).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        tokio::task::yield_now().await;
        self.0.take(key).await
    }

    async fn swap(
        &self,
        key: &str,
        expected: &[u8],
        value: Vec<u8>,
        ttl: u64,
    ) -> Result<bool, StoreError> {
        tokio::task::yield_now().await;
        self.0.swap(key, expected, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        self.0.delete(key).await
    }

    async fn incr(&self, key: &str, ttl: u64) -> Result<u64, StoreError> {
        tokio::task::yield_now().await;
        self.0.incr(key, ttl).await
    }

    async fn decr(&self, key: &str) -> Result<u64, StoreError> {
        tokio::task::yield_now().await;
        self.0.decr(key).await
    }
}

#[tokio::test]
async fn sixteen_interleaved_refreshes_of_one_token_all_succeed_in_every_round() {
    let provider = provider_on(|clock| Arc::new(YieldingStore(MemoryStore::new(clock))));
    let client = provider.registry.clients().get("harbor").cloned().unwrap();
    let scopes = ["openid".to_string()];
    for round in 0..10 {
        let id = super::refresh::new_family_id();
        let access = provider.plan_access_token(&client);
        let now = provider.clock.now();
        let family = provider.new_family(&id, &client, "admin", &scopes, now, &access);
        let token = family.await.unwrap();
        let refreshes = (0..16).map(|_| async {
            let access = provider.plan_access_token(&client);
            provider.rotate(&client, &token, &access).await
        });
        for refreshed in futures::future::join_all(refreshes).await {
            if let Err(error) = refreshed {
                panic!("round {round}: {error}");
            }
        }
    }
}
