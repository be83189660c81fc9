//! `tiendo`: run the pipeline, the demo, or print the trajectory table.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tiendo_settings::Settings;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "tiendo", about = "Is An Giang's digital transformation on track? Event-driven, over NATS.")]
struct Cli {
    /// Settings file (default: ./tiendo.toml when present). Environment variables
    /// TIENDO__SECTION__KEY override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all four services in one process, with one HTTP listener (http.listen).
    Up,
    /// A scripted 2023–2025 story through the real pipeline on SQLite; starts a local
    /// nats-server when none is reachable.
    Demo,
    /// Print the trajectory table of a running system (reads database.url).
    Status,
    /// Apply database migrations and exit.
    Migrate,
    /// Publish a department's observations: a JSON file (one object or an array) or a CSV
    /// spreadsheet with the same field names as its header. `-` reads JSON from stdin.
    Publish {
        /// The department publishing (its code, e.g. `dic`).
        #[arg(long)]
        department: String,
        /// Seconds to wait for rejections to print (0: don't wait).
        #[arg(long, default_value_t = 3)]
        wait: u64,
        /// The file: `.csv` is read as a spreadsheet, anything else as JSON.
        file: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    tiendo_telemetry::init_tracing();
    match cli.command {
        Command::Up => {
            let up = tiendo::Up::build(settings).await?;
            tracing::info!(http = %up.http_addr(), prefix = up.deps.bus.names.prefix(), "tiendo is up");
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                tiendo_runtime::shutdown_signal().await;
                tracing::info!("stopping");
                stop.cancel();
            });
            up.run_until_stopped(shutdown).await
        }
        Command::Demo => {
            let mut settings = settings;
            settings.http.listen = "127.0.0.1:0".parse()?;
            tiendo::demo::run(settings, &mut std::io::stdout()).await
        }
        Command::Status => {
            let catalog = tiendo_runtime::load_catalog(&settings)?;
            let db = tiendo_store::connect(&settings.database).await?;
            print!("{}", tiendo::status::render(&tiendo::status::rows(&db, &catalog).await?));
            Ok(())
        }
        Command::Publish { department, wait, file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?
            };
            let payload = if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
                serde_json::to_vec(&tiendo::publish::csv_to_json(&text)?)?
            } else {
                text.into_bytes()
            };
            let bus = tiendo_bus::Bus::connect(&settings.nats, "tiendo-publish").await?;
            let wait = std::time::Duration::from_secs(wait);
            tiendo::publish::run(&bus, &department, payload, wait, &mut std::io::stdout()).await
        }
        Command::Migrate => {
            let db = tiendo_store::connect(&settings.database).await?;
            tiendo_store::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
    }
}
