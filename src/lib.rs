//! kube-idp: an OpenID Connect provider whose users are `User` resources and whose
//! relying parties are labelled `Secret`s, in KubeSphere's formats.
//!
//! The layers, outermost first: `http` (actix-web handlers and pages) calls `oidc`
//! (protocol logic, no web framework), which reads the `registry` (clients and users fed
//! by a `sources` implementation), signs with `keys` and keeps state in a `store`.

pub mod config;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod oidc;
pub mod registry;
pub mod secret;
pub mod server;
pub mod sources;
pub mod store;
pub mod time;
