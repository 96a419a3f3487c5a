//! Assembles the provider from a [`Config`] and runs it: keys, registry, source, state store
//! and the HTTP server. `main` and the tests start servers through [`start`]; tests of the
//! Kubernetes source hand in their own client through [`start_with`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};

use crate::config::{Config, SourceConfig};
use crate::http::{self, AppState};
use crate::keys::{self, KeyRotator, KeySet, Keys, StoredKeySet};
use crate::oidc::Provider;
use crate::registry::Registry;
use crate::sources::directory::DirectorySource;
use crate::sources::kube::{KubeError, KubeSource};
use crate::store::{MemoryStore, StateStore};
use crate::time::{SharedClock, SystemClock};

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The signing keys could not be loaded or created.
    #[error("signing keys: {0}")]
    Keys(#[from] keys::KeyError),
    /// The manifest directory could not be read.
    #[error(transparent)]
    Directory(#[from] crate::sources::directory::DirectoryError),
    /// No Kubernetes client could be made.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The provider, for inspection in tests.
    pub provider: Provider,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    source: tokio::task::JoinHandle<()>,
    rotation: tokio::task::JoinHandle<()>,
    /// The signing-key rotator, for tests that move the clock.
    pub keys: Arc<KeyRotator>,
}

impl Running {
    /// Stops accepting, drains in-flight requests, and stops the source.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.server.await;
        self.source.abort();
        self.rotation.abort();
    }

    /// Runs until the server stops (on SIGINT or SIGTERM, after draining).
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self.server.await.unwrap_or(Ok(()));
        self.source.abort();
        self.rotation.abort();
        result
    }
}

/// Starts the provider. With `listener`, serves on it (tests bind port 0 first); otherwise
/// binds `config.listen`.
pub async fn start(config: Config, listener: Option<TcpListener>) -> Result<Running, StartError> {
    start_with(config, listener, StartOptions::default()).await
}

/// What a caller may supply instead of the defaults: tests move a manual clock and point the
/// Kubernetes source at an API server double.
#[derive(Default)]
pub struct StartOptions {
    /// The clock; the system clock when `None`.
    pub clock: Option<SharedClock>,
    /// The Kubernetes client; the in-cluster or `KUBECONFIG` configuration when `None`.
    pub kube_client: Option<kube::Client>,
}

/// [`start`] with options.
pub async fn start_with(
    config: Config,
    listener: Option<TcpListener>,
    options: StartOptions,
) -> Result<Running, StartError> {
    let clock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let kube_client = options.kube_client;
    let (keys, rotator) = load_keys(&config, clock.now())?;
    let registry = Registry::new();
    let source = start_source(&config, registry.clone(), kube_client).await?;
    let store = StateStore::new(Arc::new(MemoryStore::new(clock.clone())));
    let provider = Provider::new(config.settings.clone(), registry, keys, store, clock);
    let rotation = tokio::spawn(rotate_keys(rotator.clone(), provider.clone()));
    let state = AppState::new(provider.clone(), config.trusted_proxies.clone());

    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?,
    };
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(http::security_headers())
            .wrap(from_fn(http::request_id))
            .configure(http::configure(state.clone()))
    })
    .shutdown_timeout(25)
    .listen(listener)
    .map_err(|source| StartError::Bind { addr, source })?
    .run();
    let handle = server.handle();
    tracing::info!(%addr, issuer = %config.settings.issuer, "kube-idp listening");
    Ok(Running {
        addr,
        provider,
        handle,
        server: tokio::spawn(server),
        source,
        rotation,
        keys: rotator,
    })
}

fn load_keys(config: &Config, now: i64) -> Result<(Arc<Keys>, Arc<KeyRotator>), StartError> {
    let stored = match &config.state_dir {
        Some(dir) => keys::load_or_create_in_dir(dir, now)?,
        None => {
            tracing::warn!(
                "no --state-dir: signing keys live in memory and tokens die with the process"
            );
            StoredKeySet::generate(now)?
        }
    };
    let keys = Keys::new(KeySet::load(&stored)?);
    let period = config.settings.key_rotation_period;
    let rotator = KeyRotator::new(keys.clone(), stored, config.state_dir.clone(), period);
    Ok((keys, Arc::new(rotator)))
}

/// How often the rotator looks at the signing key's age.
const ROTATION_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Rotates the signing key when it is due, keeping retired keys as long as the longest
/// access-token lifetime any client has.
async fn rotate_keys(rotator: Arc<KeyRotator>, provider: Provider) {
    let mut tick = tokio::time::interval(ROTATION_CHECK);
    loop {
        tick.tick().await;
        let retention = token_retention(&provider);
        if let Err(e) = rotator.rotate_if_due(provider.clock.now(), retention).await {
            tracing::error!(error = %e, "signing key rotation failed; the current key stays");
        }
    }
}

/// The longest any token signed now may live.
pub fn token_retention(provider: &Provider) -> u64 {
    let default = provider.settings.access_token_lifetime;
    let clients = provider.registry.clients();
    clients
        .iter()
        .filter_map(|c| c.access_token_max_age)
        .map(u64::from)
        .fold(default, u64::max)
}

/// Starts the source. The directory is loaded once first (so the server starts with its
/// clients); the Kubernetes source syncs in the background and `/readyz` waits for it.
async fn start_source(
    config: &Config,
    registry: Arc<Registry>,
    kube_client: Option<kube::Client>,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    match &config.source {
        SourceConfig::Directory(dir) => {
            let source = DirectorySource::new(dir.clone(), registry);
            source.load()?;
            Ok(tokio::spawn(async move {
                if let Err(e) = source.run().await {
                    tracing::error!(error = %e, "manifest watcher stopped; serving the last loaded set");
                }
            }))
        }
        SourceConfig::Kubernetes { namespace } => {
            let client = match kube_client {
                Some(client) => client,
                None => crate::sources::kube::default_client().await?,
            };
            let source = KubeSource::new(client, namespace.clone(), registry);
            Ok(tokio::spawn(source.run()))
        }
    }
}
