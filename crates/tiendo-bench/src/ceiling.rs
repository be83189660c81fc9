//! The ceiling: how fast JetStream stores the same observation messages when nothing
//! consumes them, published the way tiendo publishes (up to
//! [`tiendo_bus::publish::ACKS_IN_FLIGHT`] acknowledgements outstanding). The stream is an
//! ingest stream as tiendo creates it (file storage, duplicate window) under a fresh prefix,
//! with no consumer. No end-to-end figure can beat this on the same server.

use std::time::Instant;

use tiendo_bus::StreamKind;

use super::cpu;
use super::options::Part;
use super::report::{number, Sample};
use super::target::Environment;
use super::workload::{self, Country, Workload};
use super::Measured;

/// One run of [`Part::Ceiling`]: `workload`, one observation per message.
pub async fn run(env: &Environment, run: usize, country: &Country, workload: &Workload) -> anyhow::Result<Measured> {
    let ns = env.namespace(Part::Ceiling, run, "", Some(country)).await?;
    let result = async {
        ns.bus.ensure_stream(StreamKind::Ingest, &ns.settings.pipeline).await?;
        let messages = workload::messages(&ns.bus.names, country, &workload.observations, 1);
        let bytes: usize = messages.iter().map(|m| m.payload.len()).sum();
        let count = messages.len();
        let cpu = cpu::Clock::start();
        let start = Instant::now();
        ns.bus.publish_all(messages).await?;
        let secs = start.elapsed().as_secs_f64();
        let spent = cpu.stop();
        let per_s = count as f64 / secs;
        anyhow::Ok(Measured {
            samples: vec![Sample::new("ceiling_obs_per_s", "ceiling: JetStream publish, no consumer", "obs/s", per_s)],
            notes: vec![format!(
                "{count} messages of {} bytes on average stored in {secs:.2} s ({} obs/s); {}",
                bytes / count.max(1),
                number(per_s),
                spent.describe(count, cpu::cores())
            )],
        })
    }
    .await;
    ns.close().await;
    result
}
