//! A real `redis-server` (Debian's package) on a free loopback port, without persistence,
//! stopped on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::eventually;

/// A running Redis.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts Redis on a free port and waits until it answers.
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("bound address")
            .port();
        let mut redis = Self { child: None, port };
        redis.launch().await;
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops Redis (its data is gone: nothing is persisted).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `CONFIG SET name value`: `maxmemory 1` makes Redis refuse every write that may grow
    /// it (`OOM command not allowed`) while reads and deletes go on; `maxmemory 0` lifts it.
    pub async fn config_set(&self, name: &str, value: &str) {
        let client = redis::Client::open(self.url()).expect("a valid URL");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis answers");
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(&mut connection)
            .await
            .expect("CONFIG SET succeeds");
    }

    /// Starts Redis again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    async fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server is installed (make deps installs it)");
        self.child = Some(child);
        let url = self.url();
        eventually("redis-server to answer", Duration::from_secs(20), || {
            let url = url.clone();
            async move { ping(&url).await.then_some(()) }
        })
        .await;
    }
}

/// True when Redis at `url` answers PING.
async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
    pong.is_ok_and(|p| p == "PONG")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
