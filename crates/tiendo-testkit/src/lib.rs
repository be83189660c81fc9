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

/// A free TCP port on the loopback interface, for a server this process starts (its own
/// listener, a child's, a nats-server's), and no one else's while this process lives.
///
/// A port the kernel hands out for `bind(…:0)` is free only until that listener closes: the
/// kernel may then give it to any outgoing connection or to another test process asking the
/// same, before the server this one was picked for binds it. A service restarted in one test
/// once bound such a port after another test's service had taken it, and the test read the
/// other service's `/readyz`. So ports come from below the kernel's ephemeral range
/// ([`PORTS`]), which it never hands out on its own, and each is reserved with an exclusive
/// lock on a file named after it, held until this process ends, so no two test processes
/// (nor one, twice) are given the same port.
pub fn free_port() -> u16 {
    ports::reserve().expect("a free loopback port below the ephemeral range")
}

/// [`free_port`] on the loopback address: where a server this process starts listens.
pub fn free_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Where [`free_port`] looks: below Linux's default ephemeral range (32768–60999), above
/// the well-known servers' ports.
pub const PORTS: std::ops::Range<u16> = 20_000..32_768;

mod ports {
    use std::fs::{File, OpenOptions};
    use std::net::TcpListener;
    use std::sync::Mutex;

    /// The lock files this process holds: one per port it was given.
    static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

    pub(super) fn reserve() -> Option<u16> {
        let dir = std::env::temp_dir().join("tiendo-test-ports");
        std::fs::create_dir_all(&dir).ok()?;
        let span = super::PORTS.end - super::PORTS.start;
        let start = rand::random::<u16>() % span;
        (0..span).map(|i| super::PORTS.start + (start + i) % span).find_map(|port| {
            let lock =
                OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(port.to_string())).ok()?;
            lock.try_lock().ok()?;
            // Held, so no other test process is given it; bound briefly, so nothing else holds it.
            TcpListener::bind(("127.0.0.1", port)).ok()?;
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            Some(port)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_given_once_below_the_ephemeral_range_and_stays_reserved() {
        let given: Vec<u16> = (0..64).map(|_| free_port()).collect();
        let mut distinct = given.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), given.len(), "no port twice: {given:?}");
        for port in given {
            assert!(PORTS.contains(&port), "{port} is below the ephemeral range");
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("a given port is free to bind");
            // Another process opening the port's lock file finds it taken.
            let lock = std::env::temp_dir().join("tiendo-test-ports").join(port.to_string());
            let other = std::fs::File::open(lock).expect("the port's lock file");
            assert!(other.try_lock().is_err(), "{port} stays reserved while this process lives");
        }
    }
}
