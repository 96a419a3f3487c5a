//! kube-idp started in this process on a free loopback port.

use std::net::{SocketAddr, TcpListener};

use kube_idp::config::{Config, ServeArgs};
use kube_idp::server::{self, Running};
use kube_idp::time::{Clock, ManualClock, SystemClock};

use tempfile::TempDir;

use super::manifests::Manifests;

/// What a test may change about how a provider starts.
#[derive(Default, Clone)]
pub struct Options {
    /// The issuer URL; its own address when `None`. Replicas behind one Service share one.
    pub issuer: Option<String>,
    /// A Redis URL for the state store.
    pub redis: Option<String>,
}

/// A running provider, its manifests and its state directory.
pub struct TestIdp {
    /// The issuer URL, `http://127.0.0.1:PORT` unless the options named another.
    pub issuer: String,
    /// Where this provider listens, `http://127.0.0.1:PORT`.
    pub base: String,
    options: Options,
    /// The folder it serves.
    pub manifests: Manifests,
    /// The provider's clock: it starts at the real time and moves only when told to.
    pub clock: ManualClock,
    addr: SocketAddr,
    state: TempDir,
    running: Option<Running>,
}

impl TestIdp {
    /// Starts a provider on a free port serving `manifests`.
    pub async fn start(manifests: Manifests) -> Self {
        Self::start_with(manifests, Options::default()).await
    }

    /// Starts a provider on a free port serving `manifests`, as `options` say.
    pub async fn start_with(manifests: Manifests, options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let state = tempfile::tempdir().expect("state directory");
        let base = format!("http://{addr}");
        let mut idp = Self {
            issuer: options.issuer.clone().unwrap_or_else(|| base.clone()),
            base,
            options,
            manifests,
            clock: ManualClock::at(SystemClock.now()),
            addr,
            state,
            running: None,
        };
        idp.running = Some(idp.launch(listener).await);
        idp
    }

    /// The examples from `deploy/examples`.
    pub async fn examples() -> Self {
        Self::start(Manifests::examples()).await
    }

    async fn launch(&self, listener: TcpListener) -> Running {
        let args = ServeArgs {
            issuer: Some(self.issuer.clone()),
            manifests: Some(self.manifests.path().to_path_buf()),
            state_dir: Some(self.state.path().to_path_buf()),
            redis: self.options.redis.clone(),
            ..Default::default()
        };
        let config = Config::resolve(args).expect("valid test configuration");
        let clock = std::sync::Arc::new(self.clock.clone());
        server::start_with(
            config,
            Some(listener),
            server::StartOptions {
                clock: Some(clock),
                ..Default::default()
            },
        )
        .await
        .expect("kube-idp starts")
    }

    /// An absolute URL of this provider (its own address, which is the issuer's unless the
    /// options named another issuer).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The running server, for inspection.
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// Rotates the signing key now if the clock says it is due; true when it rotated.
    pub async fn rotate_keys_if_due(&self) -> bool {
        let running = self.running.as_ref().expect("running");
        let retention = server::token_retention(&running.provider);
        running
            .keys
            .sync(self.clock.now(), retention)
            .await
            .expect("rotation")
    }

    /// Stops the server and starts a new one on the same port with the same state directory.
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        let listener = TcpListener::bind(self.addr).expect("rebind the same port");
        self.running = Some(self.launch(listener).await);
    }
}
