//! Shared test support: a kube-idp on a loopback port serving a temporary folder of
//! manifests, and a cookie-keeping browser that does not follow redirects.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod browser;
pub mod idp;
pub mod manifests;
pub mod python;
pub mod redis_server;
pub mod rp;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Some`, or panics after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
