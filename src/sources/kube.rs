//! The Kubernetes source: kube-runtime watchers on client Secrets in one namespace and on
//! cluster-scoped `User`s, each change rebuilding the whole set from a reflector store.
//!
//! A set is published only after its first complete list, and a failing API server never
//! clears the registry: the last good set stays in force while the watcher retries with
//! backoff. Rejected objects are logged and reported as Events by [`events`].

mod events;
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
use self::users::UserBuilder;
use crate::model::{client_from_secret, ClientError, CLIENT_LABEL_KEY, CLIENT_LABEL_VALUE};
use crate::registry::{ClientSet, Registry};

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
}

impl KubeSource {
    /// A source reading client Secrets from `namespace` through `client`.
    pub fn new(client: Client, namespace: impl Into<String>, registry: Arc<Registry>) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            registry,
        }
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
        };
        let typed_users = Api::all(self.client.clone());
        let reporter = Reporter::new(recorder);
        let mut accounts = UserBuilder::new(self.registry.clone(), reporter, typed_users);
        let user_resource = users::resource();
        let users = Api::all_with(self.client.clone(), &user_resource);
        tracing::info!(namespace = %self.namespace, "watching client Secrets and Users");
        let secret_store = reflector::store::Writer::default();
        let user_store = reflector::store::Writer::new(user_resource);
        let user_config = watcher::Config::default();
        tokio::join!(
            follow("Secret", secrets, secret_config, secret_store, |s| clients
                .rebuild(s)),
            follow("User", users, user_config, user_store, |u| accounts
                .rebuild(u)),
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
            Err(error) => tracing::warn!(kind, %error,
                "watch failed; keeping the current set and retrying with backoff"),
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

/// Turns the Secret store into the client set.
struct ClientBuilder {
    registry: Arc<Registry>,
    reporter: Reporter,
}

impl ClientBuilder {
    fn rebuild(&mut self, secrets: &[Arc<Secret>]) {
        let mut clients = Vec::with_capacity(secrets.len());
        let mut rejections = Vec::new();
        for secret in secrets {
            match client_from_secret(secret) {
                Ok((client, warnings)) => {
                    self.reporter.note_warnings(secret.as_ref(), &warnings);
                    clients.push(client);
                }
                Err(ClientError::MissingLabel) => {}
                Err(e) => {
                    let reference = secret.object_ref(&());
                    rejections.push(Rejection::new(reference, "InvalidClient", e));
                }
            }
        }
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
