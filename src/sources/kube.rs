//! The Kubernetes source: kube-runtime watchers on client Secrets in one namespace and on
//! cluster-scoped `User`s, each change rebuilding the whole set from a reflector store.
//!
//! A set is published only after its first complete list, and a failing API server never
//! clears the registry: the last good set stays in force while the watcher retries with
//! backoff. Rejected objects are logged and reported as Events by [`events`]. Accounts the
//! provider locks are recorded on their User, and set back to `Active` when the lock period
//! is over, by [`lockout`].

mod events;
mod lockout;
mod passwords;
mod users;

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use self::events::{Rejection, Reporter};
use self::lockout::{LockedUsers, Unlocker, UserLockRecorder};
use self::users::UserBuilder;
use crate::metrics::SharedMetrics;
use crate::model::{client_from_secret, ClientError, CLIENT_LABEL_KEY, CLIENT_LABEL_VALUE};
use crate::oidc::{LockoutListener, LockoutPolicy};
use crate::registry::{ClientSet, Registry};
use crate::time::{SharedClock, SystemClock};

/// The name kube-idp reports Events under.
const CONTROLLER: &str = "kube-idp";

/// Errors in setting up the Kubernetes source.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig file could not be read or parsed.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No configuration was found, or the client could not be built from it.
    #[error("cannot make a Kubernetes client (in-cluster or KUBECONFIG): {0}")]
    Client(#[from] kube::Error),
}

/// A client from in-cluster configuration or `KUBECONFIG`, as `kubectl` would find it.
pub async fn default_client() -> Result<Client, KubeError> {
    Ok(Client::try_default().await?)
}

/// A client from one kubeconfig file, ignoring the environment.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, KubeError> {
    let error = |source| KubeError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(error)?;
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(error)?;
    Ok(Client::try_from(config)?)
}

/// Watches client Secrets and Users and keeps a registry current.
pub struct KubeSource {
    client: Client,
    namespace: String,
    registry: Arc<Registry>,
    metrics: SharedMetrics,
    clock: SharedClock,
    lock_period: u64,
    locked: LockedUsers,
}

impl KubeSource {
    /// A source reading client Secrets from `namespace` through `client`.
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        registry: Arc<Registry>,
        metrics: SharedMetrics,
    ) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            registry,
            metrics,
            clock: Arc::new(SystemClock),
            lock_period: LockoutPolicy::default().lock,
            locked: LockedUsers::default(),
        }
    }

    /// Uses `clock` (the provider's) for lock times; the system clock otherwise.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long, in seconds, a User stays `AuthLimitExceeded` after its `lastTransitionTime`
    /// before it is set back to `Active`: the provider's lock period (by default the
    /// default [`LockoutPolicy`]'s).
    pub fn with_lock_period(mut self, seconds: u64) -> Self {
        self.lock_period = seconds;
        self
    }

    /// The listener to register with
    /// [`Provider::with_lockout_listener`](crate::oidc::Provider::with_lockout_listener):
    /// it sets the User of a locked account to `AuthLimitExceeded`.
    pub fn lockout_listener(&self) -> Arc<dyn LockoutListener> {
        let api = Api::all(self.client.clone());
        Arc::new(UserLockRecorder::new(api, self.clock.clone()))
    }

    /// Watches both resources until the task is dropped.
    pub async fn run(self) {
        let recorder = kube::runtime::events::Recorder::new(self.client.clone(), CONTROLLER.into());
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let selector = format!("{CLIENT_LABEL_KEY}={CLIENT_LABEL_VALUE}");
        let secret_config = watcher::Config::default().labels(&selector);

        let mut clients = ClientBuilder {
            registry: self.registry.clone(),
            reporter: Reporter::new(recorder.clone()),
            parsed: HashMap::new(),
        };
        let typed_users = Api::all(self.client.clone());
        let reporter = Reporter::new(recorder);
        let mut accounts = UserBuilder::new(self.registry.clone(), reporter, typed_users.clone())
            .recording_locks(self.locked.clone());
        let unlocker = Unlocker {
            api: typed_users,
            clock: self.clock.clone(),
            period: self.lock_period,
            locked: self.locked.clone(),
        };
        let user_resource = users::resource();
        let users = Api::all_with(self.client.clone(), &user_resource);
        tracing::info!(namespace = %self.namespace, "watching client Secrets and Users");
        let secret_store = reflector::store::Writer::default();
        let user_store = reflector::store::Writer::new(user_resource);
        let user_config = watcher::Config::default();
        let metrics = &self.metrics;
        tokio::join!(
            follow(
                "Secret",
                secrets,
                secret_config,
                secret_store,
                metrics,
                |s| { clients.rebuild(s) }
            ),
            follow("User", users, user_config, user_store, metrics, |u| {
                accounts.rebuild(u)
            }),
            unlocker.run(),
        );
    }
}

/// Follows one resource for ever, calling `publish` with the whole store after the first
/// complete list and after every change since.
async fn follow<K>(
    kind: &'static str,
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    metrics: &SharedMetrics,
    mut publish: impl FnMut(&[Arc<K>]),
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let store = writer.as_reader();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut synced = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) if changes_published_set(&event, &mut synced) => {
                publish(&store.state());
            }
            Ok(_) => {}
            Err(error) => {
                metrics.watch_restarted(kind);
                tracing::warn!(kind, %error,
                    "watch failed; keeping the current set and retrying with backoff");
            }
        }
    }
    tracing::error!(kind, "watch stream ended; serving the last good set");
}

/// True when `event` should rebuild the published set: the end of a complete list, or a
/// change after one. Objects of a list in progress are buffered by the reflector.
fn changes_published_set<K>(event: &watcher::Event<K>, synced: &mut bool) -> bool {
    match event {
        watcher::Event::InitDone => {
            *synced = true;
            true
        }
        watcher::Event::Apply(_) | watcher::Event::Delete(_) => *synced,
        watcher::Event::Init | watcher::Event::InitApply(_) => false,
    }
}

/// What one version of a Secret reads as: a client and its warnings, or why it is not one.
type ParsedClient = Result<(crate::model::Client, Vec<String>), ClientError>;

/// Turns the Secret store into the client set. Each version of a Secret is parsed once:
/// a change to one Secret among a thousand re-reads one `configuration.yaml`.
struct ClientBuilder {
    registry: Arc<Registry>,
    reporter: Reporter,
    parsed: HashMap<(String, String), ParsedClient>,
}

impl ClientBuilder {
    fn rebuild(&mut self, secrets: &[Arc<Secret>]) {
        let mut clients = Vec::with_capacity(secrets.len());
        let mut rejections = Vec::new();
        let mut parsed = HashMap::with_capacity(secrets.len());
        for secret in secrets {
            let version = version_key(secret.as_ref());
            let client = self
                .parsed
                .remove(&version)
                .unwrap_or_else(|| client_from_secret(secret));
            match &client {
                Ok((client, warnings)) => {
                    self.reporter.note_warnings(secret.as_ref(), warnings);
                    clients.push(client.clone());
                }
                Err(ClientError::MissingLabel) => {}
                Err(e) => {
                    let reference = secret.object_ref(&());
                    rejections.push(Rejection::new(reference, "InvalidClient", e.clone()));
                }
            }
            parsed.insert(version, client);
        }
        self.parsed = parsed;
        let (set, duplicates) = ClientSet::build(clients);
        let by_name: HashMap<&str, &Arc<Secret>> = secrets
            .iter()
            .map(|s| (s.metadata.name.as_deref().unwrap_or(""), s))
            .collect();
        for duplicate in duplicates {
            if let Some(secret) = by_name.get(duplicate.origin.name.as_str()) {
                let reference = secret.object_ref(&());
                rejections.push(Rejection::new(
                    reference,
                    "DuplicateClient",
                    duplicate.reason,
                ));
            }
        }
        tracing::info!(
            clients = set.len(),
            rejected = rejections.len(),
            "client set rebuilt"
        );
        self.registry.set_clients(set);
        self.reporter.report(rejections);
    }
}

/// `uid` and `resourceVersion` of an object: one version of it, for deduplication.
fn version_key<K: ResourceExt>(object: &K) -> (String, String) {
    let uid = object.uid().unwrap_or_else(|| object.name_any());
    (uid, object.resource_version().unwrap_or_default())
}
