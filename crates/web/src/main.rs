//! `tiendo-web`: the web pages and JSON API alone, on `http.listen`.

use clap::Parser as _;
use tiendo_runtime::ServiceArgs;
use tiendo_settings::Settings;
use tokio_util::sync::CancellationToken;

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
