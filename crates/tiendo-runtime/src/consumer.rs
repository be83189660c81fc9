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
}

impl Consumer {
    /// Creates the streams and `service`'s durable consumer on the stream of `kind`, reports
    /// its backlog in `/metrics`, creates the service's counters at zero and marks it ready.
    pub async fn prepare(deps: &Deps, kind: StreamKind, service: &'static str) -> anyhow::Result<Self> {
        deps.bus.ensure_streams(&deps.settings.pipeline).await?;
        let inner = deps.bus.ensure_consumer(kind, service, &deps.settings.pipeline).await?;
        deps.watch_consumer(service, inner.clone());
        deps.telemetry.pipeline().touch(service);
        deps.telemetry.readiness().set(service, true);
        Ok(Self { inner })
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
        consume::run(&deps.bus, self.inner, service, p.batch_size, p.max_deliver, handler, shutdown).await
    }
}
