//! What `tiendo bench` is asked to do: the command-line flags ([`Args`]) and the plan they
//! resolve to ([`Options`]): which parts run, at which sizes, how many times.

use std::path::PathBuf;
use std::time::Duration;

/// One measured part of the benchmark. Each runs in its own subject prefix and database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Part {
    /// JetStream publish throughput into a stream nobody consumes: what the bus allows.
    Ceiling,
    /// End to end, one observation per message.
    Single,
    /// End to end, JSON arrays of `--batch` observations per message.
    Batched,
    /// Publish → province aggregate and publish → alert, at a steady offered load.
    Latency,
    /// Aggregation cost per observation as the organisation tree grows.
    Scale,
    /// End-to-end throughput with 1, 2 and 4 aggregation processes (PostgreSQL only).
    Instances,
    /// Peak resident memory of a `tiendo up` process after `--memory-observations`.
    Memory,
}

impl Part {
    /// Every part, in the order they run.
    pub const ALL: [Part; 7] =
        [Part::Ceiling, Part::Single, Part::Batched, Part::Latency, Part::Scale, Part::Instances, Part::Memory];

    /// The name used in `--skip`, prefixes and the JSON file.
    pub fn name(self) -> &'static str {
        match self {
            Part::Ceiling => "ceiling",
            Part::Single => "single",
            Part::Batched => "batched",
            Part::Latency => "latency",
            Part::Scale => "scale",
            Part::Instances => "instances",
            Part::Memory => "memory",
        }
    }
}

/// `tiendo bench` flags. Sizes left out take the full defaults, or tiny ones with `--smoke`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// NATS server to measure against. Default (or when it does not answer): a private
    /// nats-server started for the run, so other clients do not disturb the numbers.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// A PostgreSQL admin URL (e.g. postgres://postgres@127.0.0.1:5432/test): each run gets a
    /// fresh database created there and dropped afterwards. Default: a temporary SQLite file.
    #[arg(long)]
    pub database_url: Option<String>,
    /// With --database-url: each run of the batched part runs on SQLite too, and the report
    /// gives PostgreSQL ÷ SQLite from the two medians.
    #[arg(long, requires = "database_url")]
    pub also_sqlite: bool,
    /// Runs of each part; every figure is the median. Default 3 (1 with --smoke).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
    /// Observations for the ceiling and the two end-to-end parts. Default 100000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub observations: Option<u64>,
    /// Observations per message in the batched part. Default 1000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// Offered load of the latency part, observations per second. Default 1000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub latency_rate: Option<u64>,
    /// Seconds of steady load in the latency part. Default 10.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub latency_secs: Option<u64>,
    /// Organisation tree sizes (units, at least 4: three levels) for the scale part. Default
    /// 11,100,1000,10000.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(4..))]
    pub scale_sizes: Option<Vec<u64>>,
    /// Observations applied at each tree size. Default 20000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub scale_observations: Option<u64>,
    /// Aggregation processes in turn in the instances part. Default 1,2,4.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=16))]
    pub instances: Option<Vec<u64>>,
    /// Observations published to the `tiendo up` process of the memory part. Default 1000000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_observations: Option<u64>,
    /// Most seconds one run of a part may take before it is abandoned as failed. Default 900.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Parts not to run (comma separated).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub skip: Vec<Part>,
    /// Every part at a tiny size, once: checks that the benchmark works, in seconds.
    #[arg(long)]
    pub smoke: bool,
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "target/bench/bench.json")]
    pub json: PathBuf,
    /// The binary started as `tiendo up` for the memory part. Default: `tiendo` beside this
    /// executable.
    #[arg(long)]
    pub tiendo_binary: Option<PathBuf>,
    /// The folder of the `tiendo-<service>` binaries the instances part starts. Default: this
    /// executable's folder.
    #[arg(long)]
    pub service_binaries: Option<PathBuf>,
    /// Instead of measuring: removes what a benchmark killed with SIGKILL left on shared
    /// servers, its streams on --nats-url and, with --database-url, its PostgreSQL databases.
    /// PREFIX is the one that benchmark's first line names (`namespaces bench_<time>_<pid>_*`).
    #[arg(long, value_name = "PREFIX", value_parser = leftover_prefix, requires = "nats_url")]
    pub remove_leftovers: Option<String>,
}

/// A benchmark's namespace prefix, `bench_<10 digits>_<process id>_`, as its first line prints
/// it (with or without the `*`): nothing shorter, so no other benchmark's names, nor anything
/// that is not a benchmark's, can match it.
fn leftover_prefix(text: &str) -> Result<String, String> {
    let prefix = text.strip_suffix('*').unwrap_or(text);
    let parts: Vec<&str> = prefix.split('_').collect();
    let digits = |s: &str, n: Option<usize>| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && n.is_none_or(|n| s.len() == n)
    };
    match parts.as_slice() {
        ["bench", time, pid, ""] if digits(time, Some(10)) && digits(pid, None) => Ok(prefix.to_owned()),
        _ => Err(format!("`{text}` is not a benchmark's prefix, `bench_<10 digits>_<process id>_`")),
    }
}

/// The resolved plan of one benchmark.
#[derive(Debug, Clone)]
pub struct Options {
    pub nats_url: Option<String>,
    pub database_url: Option<String>,
    /// Run the batched part on SQLite as well as on `database_url`.
    pub also_sqlite: bool,
    pub runs: usize,
    pub observations: u64,
    pub batch: usize,
    pub latency_rate: u64,
    pub latency_secs: u64,
    pub scale_sizes: Vec<usize>,
    pub scale_observations: u64,
    /// Observations per aggregation transaction in the scale part, as the service batches.
    pub scale_batch: usize,
    /// Aggregation processes, in turn, in the instances part.
    pub instances: Vec<usize>,
    pub memory_observations: u64,
    /// Most time one run of a part may take.
    pub timeout: Duration,
    pub parts: Vec<Part>,
    pub smoke: bool,
    pub json: PathBuf,
    pub tiendo_binary: PathBuf,
    /// Where `tiendo-ingest`, `tiendo-aggregation`, … are, for the instances part.
    pub service_binaries: PathBuf,
    /// The settings file the child `tiendo up` of the memory part is given (`--config`).
    pub config: Option<PathBuf>,
    /// Remove what the benchmark of this namespace prefix left, and measure nothing.
    pub remove_leftovers: Option<String>,
}

impl Options {
    /// The full-size plan.
    pub fn full() -> Self {
        Self {
            nats_url: None,
            database_url: None,
            also_sqlite: false,
            runs: 3,
            observations: 100_000,
            batch: 1000,
            latency_rate: 1000,
            latency_secs: 10,
            scale_sizes: vec![11, 100, 1000, 10_000],
            scale_observations: 20_000,
            scale_batch: 512,
            instances: vec![1, 2, 4],
            memory_observations: 1_000_000,
            timeout: Duration::from_secs(900),
            parts: Part::ALL.to_vec(),
            smoke: false,
            json: PathBuf::from("target/bench/bench.json"),
            tiendo_binary: std::env::current_exe()
                .map(|exe| exe.with_file_name("tiendo"))
                .unwrap_or_else(|_| PathBuf::from("tiendo")),
            service_binaries: std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(".")),
            config: None,
            remove_leftovers: None,
        }
    }

    /// Every part, once, at a size that runs in seconds even in a debug build.
    pub fn smoke() -> Self {
        Self {
            runs: 1,
            observations: 1000,
            batch: 500,
            latency_rate: 500,
            latency_secs: 1,
            scale_sizes: vec![11, 100],
            scale_observations: 1000,
            memory_observations: 2000,
            smoke: true,
            ..Self::full()
        }
    }
}

impl From<Args> for Options {
    fn from(a: Args) -> Self {
        let base = if a.smoke { Options::smoke() } else { Options::full() };
        Options {
            nats_url: a.nats_url,
            database_url: a.database_url,
            also_sqlite: a.also_sqlite,
            runs: a.runs.map_or(base.runs, |n| n as usize),
            observations: a.observations.unwrap_or(base.observations),
            batch: a.batch.map_or(base.batch, |n| n as usize),
            latency_rate: a.latency_rate.unwrap_or(base.latency_rate),
            latency_secs: a.latency_secs.unwrap_or(base.latency_secs),
            scale_sizes: a.scale_sizes.map_or(base.scale_sizes, |s| s.into_iter().map(|n| n as usize).collect()),
            scale_observations: a.scale_observations.unwrap_or(base.scale_observations),
            scale_batch: base.scale_batch,
            instances: a.instances.map_or(base.instances, |s| s.into_iter().map(|n| n as usize).collect()),
            memory_observations: a.memory_observations.unwrap_or(base.memory_observations),
            timeout: a.timeout.map_or(base.timeout, Duration::from_secs),
            parts: Part::ALL.into_iter().filter(|p| !a.skip.contains(p)).collect(),
            smoke: a.smoke,
            json: a.json,
            tiendo_binary: a.tiendo_binary.unwrap_or(base.tiendo_binary),
            service_binaries: a.service_binaries.unwrap_or(base.service_binaries),
            config: None,
            remove_leftovers: a.remove_leftovers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(flags: &[&str]) -> Result<Options, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(flags.iter().copied())).map(|c| c.args.into())
    }

    #[test]
    fn skipped_parts_are_left_out_and_sizes_fall_back_to_the_defaults() {
        let o = parse(&["--skip", "memory,scale,instances", "--observations", "7"]).unwrap();
        assert_eq!(o.parts, vec![Part::Ceiling, Part::Single, Part::Batched, Part::Latency]);
        assert_eq!((o.observations, o.runs, o.memory_observations), (7, 3, 1_000_000));
        assert_eq!(o.scale_sizes, vec![11, 100, 1000, 10_000]);
        assert_eq!(o.instances, vec![1, 2, 4]);
        assert!(!o.also_sqlite);
    }

    #[test]
    fn smoke_sizes_are_tiny_and_explicit_flags_still_win() {
        let o = parse(&["--smoke", "--runs", "2", "--scale-sizes", "11,40"]).unwrap();
        assert!(o.smoke && o.observations <= 1000 && o.memory_observations <= 10_000);
        assert_eq!((o.runs, o.scale_sizes.clone()), (2, vec![11, 40]));
    }

    #[test]
    fn zero_sizes_and_trees_too_small_for_three_levels_are_refused() {
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--observations", "0"]).is_err());
        assert!(parse(&["--scale-sizes", "11,3"]).is_err());
        assert!(parse(&["--skip", "everything"]).is_err());
        assert!(parse(&["--instances", "0,2"]).is_err());
        assert!(parse(&["--also-sqlite"]).is_err(), "comparing with SQLite needs --database-url");
    }

    #[test]
    fn leftovers_are_named_by_a_whole_benchmark_prefix_and_need_a_shared_nats_server() {
        let nats = ["--nats-url", "nats://127.0.0.1:4222"];
        let o = parse(&[&nats[..], &["--remove-leftovers", "bench_1205120301_4242_*"]].concat()).unwrap();
        assert_eq!(o.remove_leftovers.as_deref(), Some("bench_1205120301_4242_"), "the printed `*` is dropped");
        let o = parse(&[&nats[..], &["--remove-leftovers", "bench_1205120301_4242_"]].concat()).unwrap();
        assert_eq!(o.remove_leftovers.as_deref(), Some("bench_1205120301_4242_"));
        for not_one in ["bench_", "bench_1205120301_", "bench_1205120301_4242", "bench_12051203_4242_", "tiendo", ""] {
            assert!(parse(&[&nats[..], &["--remove-leftovers", not_one]].concat()).is_err(), "{not_one:?}");
        }
        assert!(parse(&["--remove-leftovers", "bench_1205120301_4242_"]).is_err(), "without --nats-url");
        assert_eq!(parse(&[]).unwrap().remove_leftovers, None);
    }
}
