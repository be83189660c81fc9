//! What tiendo's integration tests, its benchmark and its demo share, so the three speak one
//! vocabulary: a real nats-server started on demand, a namespace of one's own on a shared
//! server (subject prefix, database, catalog), collectors of what the pipeline announces,
//! waiting until the pipeline has caught up, and the plumbing to start a tiendo binary as a
//! child process.
//!
//! Nothing here changes how a service works: it drives and watches the pipeline from outside.
//!
//! # Layout
//! - [`nats`]: [`NatsServer`], a nats-server with JetStream on a free port, killed on drop
//!   (and with this process, however it ends).
//! - [`cluster`]: [`NatsCluster`], three of them clustered on loopback, to kill a stream's leader.
//! - [`proxy`]: [`Proxy`], a TCP proxy to cut and restore, to make a server unreachable.
//! - [`namespace`]: [`Namespace`], a fresh prefix and database on shared servers.
//! - [`collect`]: [`Collector`], what arrives on a subject, parsed and timed.
//! - [`idle`]: how much is left in the pipeline, and waiting until nothing is.
//! - [`http`]: `GET` on a service's endpoints, and reading one sample of `/metrics`.
//! - [`child`]: the environment that gives a child process a namespace's settings, and
//!   [`child::dies_with_parent`], so no child outlives a killed parent.
//! - [`clock`]: [`ManualClock`], a clock set by hand.
//! - [`browser`]: [`browser::Browser`], headless Chromium over WebDriver, for the page tests.

pub mod browser;
pub mod child;
pub mod clock;
pub mod cluster;
pub mod collect;
pub mod http;
pub mod idle;
pub mod namespace;
pub mod nats;
pub mod proxy;

pub use clock::ManualClock;
pub use cluster::NatsCluster;
pub use collect::Collector;
pub use namespace::{DatabaseKind, Namespace};
pub use nats::NatsServer;
pub use proxy::Proxy;

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}
