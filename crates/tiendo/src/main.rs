//! `tiendo`: run the pipeline, the demo, or print the trajectory table.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tiendo_settings::Settings;
use tokio_util::sync::CancellationToken;

/// jemalloc instead of the system's malloc: faster (17–29% more observations a second
/// through the pipeline) and less fragmented (docs/performance.md, issue 15, change 7).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Run all five services (ingest, validation, aggregation, alerting, web) in one process,
    /// with one HTTP listener (http.listen): the web pages, /metrics and /readyz.
    Up,
    /// A scripted 2023–2025 story through the real pipeline on SQLite; starts a local
    /// nats-server when none is reachable.
    Demo {
        /// After the story, keep serving its web pages on http.listen (or a free port if that
        /// one is taken) until Ctrl-C.
        #[arg(long)]
        serve: bool,
    },
    /// Print every plan's status table: the verdict where there is one, the current status
    /// otherwise (reads database.url).
    Status {
        /// Instead: per indicator, its latest period whose reports are due: expected,
        /// received and on-time counts, and the missing units.
        #[arg(long)]
        reporting: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Measure throughput, latency, scale and memory (docs/performance.md): runs the
    /// `tiendo-bench` binary beside this one with these arguments (`tiendo bench --help`).
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Rebuild figures and alert states from the retained valid-observation stream into an
    /// empty database (database.url, or --into).
    Replay {
        /// Target database URL; default: database.url.
        #[arg(long)]
        into: Option<String>,
    },
    /// List the messages the services gave up on, or send them back after a fix.
    Deadletters {
        #[command(subcommand)]
        action: DeadletterAction,
    },
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

#[derive(Subcommand)]
enum DeadletterAction {
    /// Print every dead letter: sequence, service, reason, original subject.
    List,
    /// Republish dead letters to their original subjects and remove them (all, or --seq).
    Redrive {
        /// Only these dead-letter sequences (repeatable).
        #[arg(long)]
        seq: Vec<u64>,
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
        Command::Demo { serve } => {
            let mut settings = settings;
            let free = std::net::TcpListener::bind(settings.http.listen).is_ok();
            if !serve || !free {
                settings.http.listen.set_port(0);
            }
            let serve = if serve {
                tiendo::demo::Serve::Until(Box::pin(tiendo_runtime::shutdown_signal()))
            } else {
                tiendo::demo::Serve::No
            };
            tiendo::demo::run(settings, &mut std::io::stdout(), serve).await
        }
        Command::Status { reporting } => {
            let catalog = tiendo_runtime::load_catalog(&settings)?;
            let db = tiendo_store::connect(&settings.database).await?;
            if reporting {
                let rows = tiendo::status::reporting(&db, &catalog, chrono::Utc::now()).await?;
                print!("{}", tiendo::status::render_reporting(&rows));
            } else {
                print!("{}", tiendo::status::render(&catalog, &tiendo::status::rows(&db, &catalog).await?));
            }
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
            tiendo::publish::run(&bus, &department, payload, wait, &mut std::io::stdout()).await.map(|_| ())
        }
        Command::Replay { into } => {
            let mut target = settings.database.clone();
            if let Some(url) = into {
                target.url = url.into();
            }
            let catalog = tiendo_runtime::load_catalog(&settings)?;
            let bus = tiendo_bus::Bus::connect(&settings.nats, "tiendo-replay").await?;
            let db = tiendo_store::connect(&target).await?;
            let judging = tiendo_alerting::Judging { min_coverage: settings.alerting.min_coverage };
            let report = tiendo::replay::replay(&bus, &db, &catalog, judging, settings.pipeline.batch_size).await?;
            println!(
                "replayed {} messages, {} observations: {} applied, {} reused event ids ignored, {} undecodable messages",
                report.messages, report.observations, report.applied, report.duplicates, report.undecodable
            );
            Ok(())
        }
        Command::Deadletters { action } => {
            let bus = tiendo_bus::Bus::connect(&settings.nats, "tiendo-deadletters").await?;
            match action {
                DeadletterAction::List => {
                    let letters = tiendo::deadletters::list(&bus).await?;
                    for d in &letters {
                        println!("{:>6}  {:<12} {:<40} {}", d.seq, d.service, d.subject, d.reason);
                    }
                    println!("{} dead letter(s)", letters.len());
                }
                DeadletterAction::Redrive { seq } => {
                    println!("redriven: {}", tiendo::deadletters::redrive(&bus, &seq).await?);
                }
            }
            Ok(())
        }
        Command::Bench { args } => {
            let exe = std::env::current_exe()?;
            let bench = exe.with_file_name("tiendo-bench");
            let mut command = std::process::Command::new(&bench);
            if let Some(config) = &cli.config {
                command.arg("--config").arg(config);
            }
            command.args(args);
            let running = |e| anyhow::anyhow!("running {} (cargo build -p tiendo-bench): {e}", bench.display());
            // In place of this process, so that Ctrl-C and SIGTERM reach the benchmark, which
            // cleans up after itself.
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt as _;
                Err(running(command.exec()))
            }
            #[cfg(not(unix))]
            {
                let status = command.status().map_err(running)?;
                std::process::exit(status.code().unwrap_or(1))
            }
        }
        Command::Migrate => {
            let db = tiendo_store::connect(&settings.database).await?;
            tiendo_store::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
    }
}
