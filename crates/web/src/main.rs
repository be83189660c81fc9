//! `tiendo-web`: the web pages and JSON API alone, on `http.listen`.

use clap::Parser as _;
use tiendo_runtime::ServiceArgs;
use tiendo_settings::Settings;
use tokio_util::sync::CancellationToken;

/// jemalloc instead of the system's malloc: faster (17–29% more observations a second
/// through the pipeline) and less fragmented (docs/performance.md, issue 15, change 7).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let settings = Settings::load(args.config.as_deref())?;
    tiendo_telemetry::init_tracing();
    let shutdown = CancellationToken::new();
    let running = tiendo_web::start(settings, tiendo_runtime::system_clock(), shutdown.clone()).await?;
    tiendo_runtime::shutdown_signal().await;
    tracing::info!("stopping");
    running.stop().await;
    Ok(())
}
