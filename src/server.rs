//! Assembles the provider from a [`Config`] and runs it: keys, registry, source, state store
//! and the HTTP server (plain or TLS). `main` and the tests start servers through [`start`];
//! tests of the Kubernetes source hand in their own client through [`start_with`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};

use crate::config::{Config, SourceConfig, TlsConfig};
use crate::http::{self, AppState};
use crate::keys::{
    self, FileKeyStorage, KeyRotator, MemoryKeyStorage, RedisKeyStorage, SecretKeyStorage,
    SharedKeyStorage,
};
use crate::metrics::{Metrics, SharedMetrics};
use crate::oidc::{LockoutListener, Provider};
use crate::registry::Registry;
use crate::sources::directory::DirectorySource;
use crate::sources::kube::{KubeError, KubeSource};
use crate::store::{MemoryStore, RedisStore, StateStore, Store, StoreError};
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
    /// The Redis URL was refused by the client library.
    #[error("redis: {0}")]
    Redis(#[from] StoreError),
    /// The TLS certificate or key could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
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
    metrics_handle: Option<ServerHandle>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    source: tokio::task::JoinHandle<()>,
    rotation: tokio::task::JoinHandle<()>,
    /// The signing-key rotator, for tests that move the clock.
    pub keys: Arc<KeyRotator>,
}

impl Running {
    /// Stops accepting, drains in-flight requests, and stops the source.
    pub async fn stop(self) {
        if let Some(metrics) = &self.metrics_handle {
            metrics.stop(true).await;
        }
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
    let parts = assemble(&config, clock, options.kube_client).await?;
    let mut state = AppState::new(
        parts.provider.clone(),
        config.trusted_proxies.clone(),
        parts.metrics,
    );
    let metrics_server = match config.metrics_listen {
        Some(addr) => {
            state.metrics_here = false;
            Some(metrics_server(addr, state.clone())?)
        }
        None => None,
    };
    let (server, addr) = http_server(&config, listener, state)?;
    let handle = server.handle();
    let metrics_handle = metrics_server.as_ref().map(|m| m.handle());
    let server = async move {
        match metrics_server {
            Some(metrics) => {
                let (main, metrics) = futures::join!(server, metrics);
                main.and(metrics)
            }
            None => server.await,
        }
    };
    tracing::info!(%addr, issuer = %config.settings.issuer, tls = config.tls.is_some(), "kube-idp listening");
    Ok(Running {
        addr,
        provider: parts.provider,
        handle,
        metrics_handle,
        server: tokio::spawn(server),
        source: parts.source,
        rotation: parts.rotation,
        keys: parts.rotator,
    })
}

/// The provider and what runs beside it, before any HTTP.
struct Assembled {
    provider: Provider,
    rotator: Arc<KeyRotator>,
    metrics: SharedMetrics,
    source: tokio::task::JoinHandle<()>,
    rotation: tokio::task::JoinHandle<()>,
}

/// Makes the clients of the outside world (Kubernetes, Redis), loads the signing keys,
/// starts the source and the key sync, and assembles the provider.
async fn assemble(
    config: &Config,
    clock: SharedClock,
    kube_client: Option<kube::Client>,
) -> Result<Assembled, StartError> {
    let kube_client = match &config.source {
        SourceConfig::Kubernetes { .. } => Some(match kube_client {
            Some(client) => client,
            None => crate::sources::kube::default_client().await?,
        }),
        SourceConfig::Directory(_) => None,
    };
    let redis = config.redis.as_deref().map(RedisStore::open).transpose()?;
    let key_storage = key_storage(config, kube_client.as_ref(), redis.as_ref());
    let (keys, rotator) = KeyRotator::new(key_storage, config.settings.key_rotation_period);
    let rotator = Arc::new(rotator);
    load_keys(&rotator, config, clock.now()).await?;

    let metrics: SharedMetrics = Arc::new(Metrics::new());
    let registry = Registry::new();
    let (source, lockout_listener) = start_source(
        config,
        registry.clone(),
        kube_client,
        metrics.clone(),
        clock.clone(),
    )?;
    let backend: Arc<dyn Store> = match redis {
        Some(redis) => Arc::new(redis),
        None => Arc::new(MemoryStore::new(clock.clone())),
    };
    let store = StateStore::new(backend);
    let mut provider = Provider::new(config.settings.clone(), registry, keys, store, clock);
    if let Some(listener) = lockout_listener {
        provider = provider.with_lockout_listener(listener);
    }
    let rotation = tokio::spawn(sync_keys(rotator.clone(), provider.clone()));
    Ok(Assembled {
        provider,
        rotator,
        metrics,
        source,
        rotation,
    })
}

/// The HTTP server for `state` on `listener` (or `config.listen`), plain or TLS.
fn http_server(
    config: &Config,
    listener: Option<TcpListener>,
    state: AppState,
) -> Result<(actix_web::dev::Server, SocketAddr), StartError> {
    let bind_error = |addr, source| StartError::Bind { addr, source };
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(config.listen).map_err(|e| bind_error(config.listen, e))?,
    };
    let addr = listener
        .local_addr()
        .map_err(|e| bind_error(config.listen, e))?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(http::security_headers())
            .wrap(from_fn(http::request_id))
            .configure(http::configure(state.clone()))
    })
    .shutdown_timeout(25);
    let server = match &config.tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls_config(tls)?),
        None => server.listen(listener),
    };
    let server = server.map_err(|e| bind_error(addr, e))?.run();
    Ok((server, addr))
}

/// `/metrics` alone on `addr`, stopping with the main server's signals.
fn metrics_server(addr: SocketAddr, state: AppState) -> Result<actix_web::dev::Server, StartError> {
    let server =
        HttpServer::new(move || App::new().configure(http::configure_metrics(state.clone())))
            .workers(1)
            .shutdown_timeout(5)
            .bind(addr)
            .map_err(|source| StartError::Bind { addr, source })?
            .run();
    tracing::info!(%addr, "metrics listening");
    Ok(server)
}

/// Where the signing keys live: a Secret in a cluster; Redis when replicas share one;
/// the state directory; or, failing all, memory (tokens then die with the process).
fn key_storage(
    config: &Config,
    kube_client: Option<&kube::Client>,
    redis: Option<&RedisStore>,
) -> SharedKeyStorage {
    if let (Some(client), SourceConfig::Kubernetes { namespace }) = (kube_client, &config.source) {
        return Arc::new(SecretKeyStorage::new(
            client.clone(),
            namespace,
            &config.keys_secret,
        ));
    }
    if let Some(redis) = redis {
        return Arc::new(RedisKeyStorage::new(redis.connection()));
    }
    match &config.state_dir {
        Some(dir) => Arc::new(FileKeyStorage::new(dir)),
        None => {
            tracing::warn!(
                "no --state-dir: signing keys live in memory and tokens die with the process"
            );
            Arc::new(MemoryKeyStorage::default())
        }
    }
}

/// The rustls configuration for `tls`: its certificate chain and private key.
fn tls_config(tls: &TlsConfig) -> Result<rustls::ServerConfig, StartError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let error = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        StartError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| error("certificate", &tls.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error("certificate", &tls.cert, &e))?;
    if certs.is_empty() {
        return Err(error(
            "certificate",
            &tls.cert,
            &"no certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| error("key", &tls.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| StartError::Tls(e.to_string()))
}

/// Loads the signing keys before serving. A file or Redis that fails now stops the start;
/// an API server that fails is waited for in the background (the provider serves, not
/// ready, answering 503 where it would sign), as the Kubernetes source waits for it too.
async fn load_keys(rotator: &KeyRotator, config: &Config, now: i64) -> Result<(), StartError> {
    match rotator
        .sync(now, config.settings.access_token_lifetime)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if matches!(config.source, SourceConfig::Kubernetes { .. }) => {
            tracing::warn!(error = %e, "signing keys not loaded yet; retrying");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// How soon a replica without keys tries its storage again.
const KEY_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// Takes up other replicas' key changes every [`keys::SYNC_PERIOD`] (sooner while no keys
/// are loaded) and rotates the signing key when due, keeping retired keys as long as the
/// longest access-token lifetime.
async fn sync_keys(rotator: Arc<KeyRotator>, provider: Provider) {
    loop {
        let wait = if rotator.is_loaded().await {
            keys::SYNC_PERIOD
        } else {
            KEY_RETRY
        };
        tokio::time::sleep(wait).await;
        let retention = token_retention(&provider);
        if let Err(e) = rotator.sync(provider.clock.now(), retention).await {
            tracing::error!(error = %e, "signing key sync failed; the current keys stay");
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

/// A running source, and the listener that records locked accounts where it can.
type StartedSource = (
    tokio::task::JoinHandle<()>,
    Option<Arc<dyn LockoutListener>>,
);

/// Starts the source. The directory is loaded once first (so the server starts with its
/// clients); the Kubernetes source syncs in the background and `/readyz` waits for it. In a
/// cluster, locked accounts are recorded on their User.
fn start_source(
    config: &Config,
    registry: Arc<Registry>,
    kube_client: Option<kube::Client>,
    metrics: SharedMetrics,
    clock: SharedClock,
) -> Result<StartedSource, StartError> {
    match (&config.source, kube_client) {
        (SourceConfig::Directory(dir), _) => {
            let source = DirectorySource::new(dir.clone(), registry);
            source.load()?;
            let task = tokio::spawn(async move {
                if let Err(e) = source.run().await {
                    tracing::error!(error = %e, "manifest watcher stopped; serving the last loaded set");
                }
            });
            Ok((task, None))
        }
        (SourceConfig::Kubernetes { namespace }, Some(client)) => {
            let source =
                KubeSource::new(client, namespace.clone(), registry, metrics).with_clock(clock);
            let listener = source.lockout_listener();
            Ok((tokio::spawn(source.run()), Some(listener)))
        }
        (SourceConfig::Kubernetes { .. }, None) => {
            unreachable!("start_with makes a client for the Kubernetes source")
        }
    }
}
