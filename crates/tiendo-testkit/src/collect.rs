//! What arrives on a subject, collected in the background: each message parsed by a function
//! of the caller's, with when it arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tiendo_bus::Bus;
use tokio::task::JoinHandle;

/// The messages seen on a core subscription, reduced to `T`, with their arrival times.
pub struct Collector<T> {
    seen: Arc<Mutex<Vec<(T, Instant)>>>,
    task: JoinHandle<()>,
}

impl<T: Clone + Send + 'static> Collector<T> {
    /// Subscribes to `subject` (wildcards allowed); messages `parse` returns `None` for are
    /// left out. Returns once the server has the subscription.
    pub async fn start(
        bus: &Bus,
        subject: String,
        parse: impl Fn(&[u8]) -> Option<T> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let mut sub = bus.client.subscribe(subject).await?;
        bus.client.flush().await?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let at = Instant::now();
                if let Some(t) = parse(&m.payload) {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push((t, at));
                }
            }
        });
        Ok(Self { seen, task })
    }

    /// Every JSON message of type `T` on `subject`.
    pub async fn json(bus: &Bus, subject: String) -> anyhow::Result<Self>
    where
        T: serde::de::DeserializeOwned,
    {
        Self::start(bus, subject, |payload| serde_json::from_slice(payload).ok()).await
    }

    /// Everything so far, with arrival times.
    pub fn seen(&self) -> Vec<(T, Instant)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Everything so far.
    pub fn all(&self) -> Vec<T> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(t, _)| t.clone()).collect()
    }

    /// Everything so far, removed from the collector: what arrived since the last call.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner())).into_iter().map(|(t, _)| t).collect()
    }

    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until nothing new has arrived for `quiet`, at most `limit`.
    pub async fn wait_quiet(&self, quiet: Duration, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut n = self.len();
        while Instant::now() < deadline {
            tokio::time::sleep(quiet).await;
            let now = self.len();
            if now == n {
                return;
            }
            n = now;
        }
    }
}

impl<T> Drop for Collector<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
