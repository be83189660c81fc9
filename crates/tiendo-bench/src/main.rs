//! `tiendo-bench` (also `tiendo bench`): measures throughput, latency, scale and memory,
//! prints a table and writes the figures as JSON. Build with --release for real figures.

use std::path::PathBuf;

use clap::Parser;
use tiendo_settings::Settings;

/// jemalloc instead of the system's malloc: faster (17–29% more observations a second
/// through the pipeline) and less fragmented (docs/performance.md, issue 15, change 7).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "tiendo-bench", version = tiendo_bench::VERSION, about = "How fast tiendo goes (docs/performance.md).")]
struct Cli {
    /// Settings file (default: ./tiendo.toml when present); pipeline settings apply to the
    /// services measured.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    args: tiendo_bench::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    tiendo_telemetry::init_tracing();
    let mut options = tiendo_bench::Options::from(cli.args);
    options.config = cli.config;
    tiendo_bench::main_until(settings, &options, &mut std::io::stdout(), tiendo_runtime::shutdown_signal()).await
}
