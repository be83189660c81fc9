//! A service's durable consumer: created with the streams, its backlog reported in
//! `/metrics`, and run under the pipeline settings.

use tiendo_bus::async_nats::jetstream::consumer::PullConsumer;
use tiendo_bus::consume::{self, Handler};
use tiendo_bus::StreamKind;
use tokio_util::sync::CancellationToken;

use crate::Deps;

/// A service's durable pull consumer, ready to run.
pub struct Consumer {
    inner: PullConsumer,
    /// How many consumers the process runs together, this one included.
    sharing: usize,
}

impl Consumer {
    /// Creates the streams and `service`'s durable consumer on the stream of `kind`, reports
    /// its backlog in `/metrics`, creates the service's counters at zero and marks it ready.
    pub async fn prepare(deps: &Deps, kind: StreamKind, service: &'static str) -> anyhow::Result<Self> {
        deps.bus.ensure_streams(&deps.settings.pipeline).await?;
        let inner = deps.bus.ensure_consumer(kind, service, &deps.settings.pipeline).await?;
        Ok(Self::announce(deps, service, vec![inner]).remove(0))
    }

    /// `service`'s consumers on the stream of `kind`: `wanted` (durable name, filter subject),
    /// taking over from the service's other consumers (see
    /// [`tiendo_bus::Bus::take_over_consumers`]); their backlog reported in `/metrics` as
    /// the service's, its counters created at zero, the service marked ready.
    pub async fn prepare_all(
        deps: &Deps,
        kind: StreamKind,
        service: &'static str,
        wanted: &[(String, Option<String>)],
    ) -> anyhow::Result<Vec<Self>> {
        deps.bus.ensure_streams(&deps.settings.pipeline).await?;
        let consumers = deps.bus.take_over_consumers(kind, service, wanted, &deps.settings.pipeline).await?;
        Ok(Self::announce(deps, service, consumers))
    }

    /// `service`'s backlog over all of `consumers` reported in `/metrics` (every instance
    /// reports the whole service's, its own partitions or not: an instance that is down still
    /// has its backlog shown by the others), its counters created at zero, the service ready.
    fn announce(deps: &Deps, service: &'static str, consumers: Vec<PullConsumer>) -> Vec<Self> {
        deps.watch_consumers(service, consumers.clone());
        deps.telemetry.pipeline().touch(service);
        deps.telemetry.readiness().set(service, true);
        consumers.into_iter().map(|inner| Self { inner, sharing: 1 }).collect()
    }

    /// The same consumer, run together with others in this process, `sharing` in all: it
    /// takes that share of a batch's messages and bytes (see [`consume::run`]).
    pub fn sharing(self, sharing: usize) -> Self {
        Self { sharing: sharing.max(1), ..self }
    }

    /// Hands batches to `handler` until `shutdown` ([`consume::run`] with the pipeline settings).
    pub async fn run<H: Handler>(
        self,
        deps: &Deps,
        service: &str,
        handler: &H,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let p = &deps.settings.pipeline;
        consume::run(&deps.bus, self.inner, service, p.batch_size, self.sharing, p.max_deliver, handler, shutdown).await
    }
}
