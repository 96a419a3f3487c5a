//! kube-idp started in this process on a free loopback port.

use std::net::{SocketAddr, TcpListener};

use kube_idp::config::{Config, ServeArgs};
use kube_idp::server::{self, Running};
use kube_idp::time::{Clock, ManualClock, SystemClock};

use tempfile::TempDir;

use super::manifests::Manifests;

/// A running provider, its manifests and its state directory.
pub struct TestIdp {
    /// The issuer URL, `http://127.0.0.1:PORT`.
    pub issuer: String,
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
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let state = tempfile::tempdir().expect("state directory");
        let mut idp = Self {
            issuer: format!("http://{addr}"),
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

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Rotates the signing key now if the clock says it is due; true when it rotated.
    pub async fn rotate_keys_if_due(&self) -> bool {
        let running = self.running.as_ref().expect("running");
        let retention = server::token_retention(&running.provider);
        running
            .keys
            .rotate_if_due(self.clock.now(), retention)
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
