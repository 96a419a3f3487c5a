//! Regression tests for attacks on the login and on the logs, run against the protocol logic
//! directly: user enumeration by timing, concurrent guesses outrunning the lockout, and
//! request-supplied text forging log lines or leaking a mistyped password.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::login::LoginFailure;
use super::{Params, Provider, Settings};
use crate::keys::{KeySet, Keys, StoredKeySet};
use crate::model::{Account, Client, GrantMethod, ObjectRef, PasswordHash};
use crate::registry::{ClientSet, Registry, UserSet};
use crate::secret::SecretString;
use crate::store::{MemoryStore, StateStore, Store};
use crate::time::{Clock, ManualClock, SharedClock};

/// The bcrypt hash (cost 10) of `P@88w0rd`.
const ADMIN_HASH: &str = "$2b$10$Cs0FMLN4DVtYpwmXOXKB2OA5yHgMU9pC0bw85G8LoTMh15a3LfUTa";
pub(super) const ADMIN_PASSWORD: &str = "P@88w0rd";

fn admin() -> Account {
    Account {
        username: "admin".into(),
        email: Some("admin@example.com".into()),
        display_name: None,
        lang: None,
        groups: vec![],
        password: Some(PasswordHash::from_hash(ADMIN_HASH)),
        state: "Active".into(),
        origin: ObjectRef::default(),
    }
}

fn harbor() -> Client {
    Client {
        id: "harbor".into(),
        secret: Some(SecretString::new("password123")),
        grant_method: GrantMethod::Auto,
        scope_restrictions: vec!["openid".into()],
        redirect_uris: vec!["https://a.example/cb".into()],
        post_logout_redirect_uris: vec![],
        trusted: true,
        access_token_max_age: None,
        access_token_inactivity_timeout: None,
        origin: ObjectRef::default(),
    }
}

/// A provider with the account `admin` and the trusted client `harbor`, in memory.
fn provider() -> Provider {
    provider_on(|clock| Arc::new(MemoryStore::new(clock)))
}

/// A provider with the account `admin` and the trusted client `harbor` (secret
/// `password123`, redirect URI `https://a.example/cb`), on the store `backend` makes.
pub(super) fn provider_on(backend: impl FnOnce(SharedClock) -> Arc<dyn Store>) -> Provider {
    let clock = ManualClock::at(1_700_000_000);
    let registry = Registry::new();
    registry.set_clients(ClientSet::build(vec![harbor()]).0);
    registry.set_users(UserSet::build(vec![admin()]));
    let stored = StoredKeySet::generate(clock.now()).expect("a key");
    let keys = Keys::new(KeySet::load(&stored).expect("a key set"));
    let store = StateStore::new(backend(Arc::new(clock.clone())));
    let settings = Settings::new("https://idp.example");
    Provider::new(settings, registry, keys, store, Arc::new(clock))
}

/// Runs `work` on a fresh runtime and returns its output with the text log it wrote (the
/// production text format, without colours).
fn logged<F: Future>(work: F) -> (F::Output, String) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::default());
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let output = tracing::subscriber::with_default(subscriber, || runtime.block_on(work));
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    (output, text)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn unknown_user_costs_the_same_bcrypt_work_as_a_wrong_password() {
    let mut provider = provider();
    provider.lockout.account_failures = 1_000;
    let (mut unknown, mut known) = (Vec::new(), Vec::new());
    // Interleaved, so that load on the machine falls on both alike.
    for i in 0..15 {
        let ghost = format!("ghost-{i}");
        let started = Instant::now();
        let result = provider.authenticate(&ghost, "wrong", None);
        assert_eq!(result.await.unwrap_err(), LoginFailure::Invalid);
        unknown.push(started.elapsed());
        let started = Instant::now();
        let result = provider.authenticate("admin", "wrong", None);
        assert_eq!(result.await.unwrap_err(), LoginFailure::Invalid);
        known.push(started.elapsed());
    }
    let (unknown, known) = (median(unknown), median(known));
    assert!(
        unknown * 3 >= known,
        "an unknown name answers in {unknown:?}, a wrong password in {known:?}"
    );
}

#[tokio::test]
async fn concurrent_wrong_passwords_get_at_most_the_limit_verified() {
    let provider = provider();
    let guesses = (0..30).map(|_| provider.authenticate("admin", "wrong", None));
    let results = futures::future::join_all(guesses).await;
    let verified = results
        .iter()
        .filter(|r| matches!(r, Err(LoginFailure::Invalid)))
        .count();
    assert_eq!(verified, 10, "{results:?}");
    let right = provider.authenticate("admin", ADMIN_PASSWORD, None).await;
    assert_eq!(right.unwrap_err(), LoginFailure::Throttled);
}

#[tokio::test]
async fn right_password_after_a_few_failures_signs_in_and_clears_the_count() {
    let provider = provider();
    for _ in 0..9 {
        let failed = provider.authenticate("admin", "wrong", None).await;
        assert_eq!(failed.unwrap_err(), LoginFailure::Invalid);
    }
    let account = provider.authenticate("admin", ADMIN_PASSWORD, None).await;
    assert_eq!(
        account.expect("the tenth attempt is allowed").username,
        "admin"
    );
    for _ in 0..9 {
        let failed = provider.authenticate("admin", "wrong", None).await;
        assert_eq!(
            failed.unwrap_err(),
            LoginFailure::Invalid,
            "counting afresh"
        );
    }
}

#[test]
fn password_typed_as_login_name_is_not_logged_when_it_locks() {
    let provider = provider();
    let typed = "Hunter2-Secret!";
    let (_, log) = logged(async {
        for _ in 0..11 {
            let _ = provider.authenticate(typed, "wrong", None).await;
        }
    });
    assert!(log.contains("login name locked"), "{log}");
    assert!(log.contains("login refused: locked out"), "{log}");
    assert!(!log.to_lowercase().contains("hunter2"), "{log}");
    assert!(log.contains("user=unknown:"), "{log}");
}

#[test]
fn locked_known_account_is_logged_by_its_username() {
    let provider = provider();
    let (_, log) = logged(async {
        for _ in 0..10 {
            let _ = provider
                .authenticate("ADMIN@example.com", "wrong", None)
                .await;
        }
    });
    let locked = log.lines().find(|l| l.contains("login name locked"));
    let locked = locked.unwrap_or_else(|| panic!("{log}"));
    assert!(locked.contains("user=admin known=true"), "{locked}");
}

#[test]
fn crlf_in_a_client_id_cannot_forge_a_log_line() {
    let provider = provider();
    let forged = "x\r\n2030-01-01T00:00:00.000000Z  INFO kube_idp: login succeeded user=admin";
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "password")
        .append_pair("client_id", forged)
        .append_pair("client_secret", "s")
        .finish();
    let authorize: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &format!("{forged}\u{1b}[2J"))
        .finish();
    let (_, log) = logged(async {
        let _ = provider.token(&Params::parse(&form), None, None).await;
        let browser = super::Browser::default();
        let _ = provider
            .authorize(&Params::parse(&authorize), &browser)
            .await;
    });
    assert_eq!(log.lines().count(), 2, "one line per refusal: {log}");
    assert!(!log.contains('\r') && !log.contains('\u{1b}'), "{log:?}");
    assert!(
        log.lines()
            .all(|l| l.contains(r#"client_id="x\r\n2030-01-01"#)),
        "{log}"
    );
}

#[test]
fn crlf_in_a_login_name_cannot_forge_a_log_line() {
    let provider = provider();
    let (_, log) = logged(async {
        let typed = "admin\nINFO login succeeded user=root";
        for _ in 0..11 {
            let _ = provider.authenticate(typed, "wrong", None).await;
        }
    });
    assert!(!log.contains("user=root"), "{log}");
    assert!(log.lines().all(|l| l.contains("WARN")), "{log}");
}
