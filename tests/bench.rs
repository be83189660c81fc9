//! `tiendo bench --smoke`, in-process: every part of the benchmark runs at a tiny size, and
//! every figure comes out present, consistent with the others, in the report and in the JSON
//! file. The SQLite run skips the instances part (it needs PostgreSQL); the second test runs
//! that part alone on the tests' PostgreSQL (`TIENDO_TEST_POSTGRES_URL`).
//!
//! The memory and instances parts start the `tiendo` and `tiendo-<service>` binaries
//! (`cargo build --workspace --bins`, as scripts/test does, builds them).

use std::path::PathBuf;

use serde_json::Value;
use tiendo_bench::{Options, Part};
use tiendo_settings::Settings;
use tiendo_testkit::child::alive;

/// Every figure a full run on SQLite reports; the ratios are derived from the others' medians.
const FIGURES: [&str; 25] = [
    "ceiling_obs_per_s",
    "single_obs_per_s",
    "single_to_aggregation_obs_per_s",
    "single_ratio_to_ceiling",
    "single_cpu_us_per_obs",
    "single_cpu_bound_obs_per_s",
    "single_cpu_bound_ratio_to_ceiling",
    "batched_obs_per_s",
    "batched_to_aggregation_obs_per_s",
    "batched_ratio_to_ceiling",
    "batched_cpu_us_per_obs",
    "batched_cpu_bound_obs_per_s",
    "batched_cpu_bound_ratio_to_ceiling",
    "latency_aggregate_p50_ms",
    "latency_aggregate_p99_ms",
    "latency_aggregate_max_ms",
    "latency_alert_p50_ms",
    "latency_alert_p99_ms",
    "latency_alert_max_ms",
    "scale_us_per_obs_11",
    "scale_us_per_obs_100",
    "scale_ancestor_writes_per_obs_11",
    "scale_ancestor_writes_per_obs_100",
    "scale_ratio_largest_to_smallest",
    "memory_peak_rss_mib",
];

/// The commit checked out here, as `git rev-parse --short HEAD` gives it.
fn head() -> String {
    let out = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"])
        .output()
        .expect("git runs");
    let head = String::from_utf8(out.stdout).expect("text").trim().to_owned();
    assert!(!head.is_empty(), "the tests run in a git work tree");
    head
}

/// Smoke options on the shared test NATS server, writing the JSON file into `dir`.
fn smoke(dir: &tempfile::TempDir) -> Options {
    let mut options = Options::smoke();
    // The shared test server; the benchmark starts a private one if it does not answer.
    options.nats_url = Some(tiendo_tests::nats_url());
    options.json = dir.path().join("bench").join("bench.json");
    options.tiendo_binary = tiendo_tests::fleet::binary("tiendo");
    options.service_binaries =
        tiendo_tests::fleet::binary("tiendo-aggregation").parent().map(PathBuf::from).expect("a folder");
    options
}

/// Runs the benchmark; its JSON file and what it printed.
async fn bench(options: &Options) -> (Value, String) {
    let mut out = Vec::new();
    let result = tiendo_bench::main(Settings::defaults(), options, &mut out).await;
    let out = String::from_utf8_lossy(&out).into_owned();
    if let Err(e) = result {
        panic!("the benchmark failed: {e:#}\n{out}");
    }
    let json = serde_json::from_str(&std::fs::read_to_string(&options.json).expect("the JSON file is written"))
        .expect("the JSON file parses");
    (json, out)
}

/// Checks that `key` has a positive median, one value per run (none when derived) and is in
/// the printed table; returns its median.
fn figure(json: &Value, out: &str, key: &str) -> f64 {
    let figure = &json["figures"][key];
    let median = figure["median"].as_f64().unwrap_or_else(|| panic!("{key} is missing from:\n{json:#}"));
    assert!(median > 0.0 && median.is_finite(), "{key} = {median}");
    let runs = figure["runs"].as_array().map_or(0, Vec::len);
    assert_eq!(runs, if key.contains("ratio") { 0 } else { 1 }, "{key}: one value per run");
    assert!(out.contains(figure["label"].as_str().unwrap()), "{key} is not in the printed table:\n{out}");
    median
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// A copy of the binary run outside any work tree (as for an interleaved comparison of two
/// builds) still names the commit it was built from: its reports say which code they measured.
#[test]
fn the_binary_names_the_commit_it_was_built_from_wherever_it_runs() {
    let elsewhere = tempfile::tempdir().expect("a temporary folder");
    let copy = elsewhere.path().join("tiendo-bench");
    std::fs::copy(tiendo_tests::fleet::binary("tiendo-bench"), &copy).expect("copied");
    let out = std::process::Command::new(&copy).arg("--version").current_dir(elsewhere.path()).output().expect("runs");
    let version = String::from_utf8(out.stdout).expect("text");
    assert!(out.status.success() && version.contains(&format!("(commit {}", head())), "{version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_run_measures_every_figure_and_writes_them_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let options = smoke(&dir);
    let (json, out) = bench(&options).await;
    let median = |key: &str| figure(&json, &out, key);
    for key in FIGURES {
        median(key);
    }
    // The figures agree with each other: ratios are the ratios of their parts, alerting
    // finishes after aggregation, percentiles are ordered, the scale workload asks the same
    // of every tree, and the memory figure is a process's, not zero or a unit mix-up.
    assert!(close(median("single_ratio_to_ceiling"), median("single_obs_per_s") / median("ceiling_obs_per_s")));
    assert!(close(median("batched_ratio_to_ceiling"), median("batched_obs_per_s") / median("ceiling_obs_per_s")));
    let cores = json["cores"].as_f64().expect("the cores");
    for part in ["single", "batched"] {
        let (through, to) = (median(&format!("{part}_obs_per_s")), median(&format!("{part}_to_aggregation_obs_per_s")));
        assert!(through <= to, "{part}: through alerting ({through} obs/s) is no faster than to aggregation ({to})");
        // The CPU bound is what the cores allow at the CPU each observation cost (one run: the
        // medians are that run's values). Not compared with the throughput: the tests running
        // beside this one have processes of the names it counts.
        let (cpu, bound) = (median(&format!("{part}_cpu_us_per_obs")), median(&format!("{part}_cpu_bound_obs_per_s")));
        assert!(close(bound, cores * 1e6 / cpu), "{part}: {bound} obs/s at {cpu} µs/obs on {cores} cores");
        let ratio = median(&format!("{part}_cpu_bound_ratio_to_ceiling"));
        assert!(close(ratio, bound / median("ceiling_obs_per_s")), "{part}: {ratio}");
    }
    assert!(close(
        median("scale_ratio_largest_to_smallest"),
        median("scale_us_per_obs_100") / median("scale_us_per_obs_11")
    ));
    let ancestors = (median("scale_ancestor_writes_per_obs_11"), median("scale_ancestor_writes_per_obs_100"));
    assert_eq!(ancestors, (2.0, 2.0), "every observation writes its district's and its province's figure");
    for stage in ["aggregate", "alert"] {
        let (p50, p99, max) = (
            median(&format!("latency_{stage}_p50_ms")),
            median(&format!("latency_{stage}_p99_ms")),
            median(&format!("latency_{stage}_max_ms")),
        );
        assert!(p50 <= p99 && p99 <= max, "{stage}: p50 {p50} ≤ p99 {p99} ≤ max {max}");
    }
    let rss = median("memory_peak_rss_mib");
    assert!((5.0..4096.0).contains(&rss), "a peak RSS of {rss} MiB");
    let notes = json["notes"].as_array().expect("notes");
    assert!(
        notes.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with("instances run 1: skipped"))),
        "the instances part says why it measured nothing on SQLite: {notes:?}"
    );
    assert_eq!(json["runs"], 1);
    assert_eq!(json["smoke"], true);
    assert_eq!(json["database"], "sqlite");
    assert!(json["cores"].as_u64().is_some_and(|c| c >= 1));
    assert!(json["commit"].as_str().is_some_and(|c| c.starts_with(&head())), "{}", json["commit"]);
    assert_eq!(json["sizes"]["scale_units"], serde_json::json!([11, 100]));
    assert_eq!(json["failures"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instances_part_runs_one_two_and_four_aggregation_processes_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = smoke(&dir);
    options.database_url = Some(tiendo_tests::postgres_admin_url());
    options.parts = vec![Part::Instances];
    let (json, out) = bench(&options).await;
    let per_s: Vec<f64> = [1, 2, 4].map(|n| figure(&json, &out, &format!("scale_out_obs_per_s_{n}"))).into();
    for (n, ratio) in [(2, per_s[1] / per_s[0]), (4, per_s[2] / per_s[0])] {
        assert!(close(figure(&json, &out, &format!("scale_out_ratio_{n}_to_1")), ratio));
    }
    assert_eq!(json["database"], "postgres");
    assert_eq!(json["failures"], serde_json::json!([]));
}

/// The processes whose parent is `pid`: (pid, name), from /proc.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![] };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            // `pid (name) state ppid …`; the name may hold spaces, so split after its `)`.
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid: u32 = rest.split(' ').nth(1)?.parse().ok()?;
            (ppid == pid).then(|| (child, name.to_owned()))
        })
        .collect()
}

/// The shared servers a benchmark's namespaces live on: the tests' NATS server and PostgreSQL.
struct Shared {
    admin: tiendo_store::sea_orm::DatabaseConnection,
    bus: tiendo_bus::Bus,
}

impl Shared {
    async fn connect(nats: &str, postgres: &str) -> Shared {
        let admin = tiendo_store::sea_orm::Database::connect(postgres).await.expect("connect");
        let mut settings = Settings::defaults().nats;
        settings.url = nats.into();
        let bus = tiendo_bus::Bus::connect(&settings, "bench-test").await.expect("bus");
        Shared { admin, bus }
    }

    /// How many streams and PostgreSQL databases have names starting with `prefix`.
    async fn named(&self, prefix: &str) -> (usize, usize) {
        let streams = tiendo_testkit::namespace::streams_named(&self.bus, prefix).await.expect("list streams");
        let databases = tiendo_testkit::namespace::databases_named(&self.admin, prefix).await.expect("list databases");
        (streams.len(), databases.len())
    }
}

/// `tiendo bench --smoke` running the instances part alone on the tests' PostgreSQL, with its
/// stdout piped; on the shared test NATS server, or on a private one of its own when `nats` is
/// `None`.
struct Running {
    bench: tokio::process::Child,
    pid: u32,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// What every namespace (database, streams) of the run starts with.
    prefix: String,
    postgres: String,
}

impl Running {
    async fn start(dir: &tempfile::TempDir, nats: Option<&str>) -> Running {
        use tokio::io::AsyncBufReadExt as _;
        let postgres = tiendo_tests::postgres_admin_url();
        let tiendo = tiendo_tests::fleet::binary("tiendo");
        let mut command = tokio::process::Command::new(&tiendo);
        command
            .args(["bench", "--smoke", "--skip", "ceiling,single,batched,latency,scale,memory", "--instances", "1,2,4"])
            .args(["--database-url", &postgres]);
        if let Some(nats) = nats {
            command.args(["--nats-url", nats]);
        }
        command
            .arg("--json")
            .arg(dir.path().join("bench.json"))
            .arg("--service-binaries")
            .arg(tiendo.parent().expect("a folder"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        tiendo_testkit::child::dies_with_parent(command.as_std_mut());
        let mut bench = command.spawn().expect("start tiendo bench");
        let pid = bench.id().expect("a process id");
        let mut lines = tokio::io::BufReader::new(bench.stdout.take().expect("stdout")).lines();
        let header = lines.next_line().await.expect("read").expect("a first line");
        let prefix = header
            .split("namespaces ")
            .nth(1)
            .and_then(|rest| rest.strip_suffix('*'))
            .unwrap_or_else(|| panic!("the first line names the namespaces: {header}"))
            .to_owned();
        assert!(prefix.starts_with("bench_"), "{prefix}");
        Running { bench, pid, lines, prefix, postgres }
    }

    /// Its child processes, once one of them is an aggregation process of the part.
    async fn children_once_aggregation_runs(&self) -> Vec<(u32, String)> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let children = children_of(self.pid);
            if children.iter().any(|(_, name)| name.starts_with("tiendo-aggregat")) {
                return children;
            }
            assert!(std::time::Instant::now() < deadline, "no aggregation process started: {children:?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (`-TERM`, `-KILL`) and waits for the benchmark to exit.
    async fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill").args([signal, &self.pid.to_string()]).status().expect("kill");
        assert!(sent.success());
        tokio::time::timeout(std::time::Duration::from_secs(60), self.bench.wait())
            .await
            .expect("the benchmark stops")
            .expect("its status")
    }
}

/// `tiendo bench` stopped with SIGTERM while the instances part's processes run: it kills
/// them, drops the PostgreSQL databases and deletes the streams of its namespaces, and exits
/// with a failure. (Ctrl-C takes the same path.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_benchmark_kills_its_processes_and_removes_its_databases_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let nats = tiendo_tests::nats_url();
    let mut running = Running::start(&dir, Some(&nats)).await;
    let children = running.children_once_aggregation_runs().await;
    let shared = Shared::connect(&nats, &running.postgres).await;
    let (streams, databases) = shared.named(&running.prefix).await;
    assert!(databases >= 1, "the run has its database");
    assert!(streams >= 1, "the run has its streams");

    let status = running.signal_and_wait("-TERM").await;
    let mut rest = Vec::new();
    while let Ok(Some(line)) = running.lines.next_line().await {
        rest.push(line);
    }
    assert!(!status.success(), "an interrupted benchmark fails");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "it says it was interrupted: {rest:?}");
    for (child, name) in &children {
        assert!(!alive(*child), "{name} ({child}) still runs");
    }
    let (streams, databases) = shared.named(&running.prefix).await;
    assert_eq!(databases, 0, "its databases are dropped");
    assert_eq!(streams, 0, "its streams are deleted");
    shared.admin.close().await.ok();
}

/// `tiendo bench` killed with SIGKILL, which it cannot catch or clean up after: the processes
/// it started, its private nats-server and the instances part's service processes, die with
/// it instead of running on. (Its PostgreSQL databases stay; the test drops them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_benchmark_killed_with_sigkill_takes_the_processes_it_started_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = Running::start(&dir, None).await;
    // An aggregation process among them; one that ends with its run before the kill is
    // simply not alive after it.
    let children = running.children_once_aggregation_runs().await;
    let names: Vec<&str> = children.iter().map(|(_, name)| name.as_str()).collect();
    assert!(names.contains(&"nats-server"), "the benchmark runs its own nats-server: {names:?}");

    let status = running.signal_and_wait("-KILL").await;
    assert!(!status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while children.iter().any(|(child, _)| alive(*child)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let left: Vec<_> = children.iter().filter(|(child, _)| alive(*child)).collect();
    let admin = tiendo_store::sea_orm::Database::connect(running.postgres.as_str()).await.expect("connect");
    for name in tiendo_testkit::namespace::databases_named(&admin, &running.prefix).await.expect("list databases") {
        tiendo_testkit::namespace::drop_database(&admin, &name).await.expect("drop a database the run left");
    }
    admin.close().await.ok();
    for (child, _) in &left {
        let _ = std::process::Command::new("kill").args(["-KILL", &child.to_string()]).status();
    }
    assert!(left.is_empty(), "still running 10 s after the benchmark was killed: {left:?}");
}

/// `tiendo bench` killed with SIGKILL while on the shared NATS server leaves its streams there
/// and its databases on PostgreSQL; `tiendo bench --remove-leftovers <prefix>` with the prefix
/// its first line printed removes them and says how many. Another benchmark's names, even one
/// whose process id starts with the same digits, stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_benchmark_killed_with_sigkill_left_is_removed_by_its_prefix_and_nothing_else() {
    use tiendo_bus::async_nats::jetstream::stream;
    use tiendo_store::sea_orm::ConnectionTrait as _;
    let dir = tempfile::tempdir().unwrap();
    let nats = tiendo_tests::nats_url();
    let mut running = Running::start(&dir, Some(&nats)).await;
    running.children_once_aggregation_runs().await;
    let prefix = running.prefix.clone();
    let shared = Shared::connect(&nats, &running.postgres).await;
    let (admin, bus) = (&shared.admin, &shared.bus);
    // A bystander: the same time, a process id one digit longer.
    let bystander = format!("{}0_bystander", prefix.trim_end_matches('_'));
    let bystander_stream = tiendo_bus::names::stream_case(&bystander);
    tiendo_testkit::namespace::drop_database(admin, &bystander).await.expect("no bystander yet");
    admin.execute_unprepared(&format!("CREATE DATABASE \"{bystander}\"")).await.expect("create the bystander");
    let subjects = vec![format!("{bystander}.x")];
    bus.js
        .create_stream(stream::Config { name: bystander_stream.clone(), subjects, ..Default::default() })
        .await
        .unwrap();

    let status = running.signal_and_wait("-KILL").await;
    assert!(!status.success());
    let left = shared.named(&prefix).await;
    assert!(left.0 >= 1 && left.1 >= 1, "SIGKILL leaves streams and databases: {left:?}");

    let remove = |shown: String| {
        let (nats, postgres) = (nats.clone(), running.postgres.clone());
        async move {
            let out = tokio::process::Command::new(tiendo_tests::fleet::binary("tiendo"))
                .args(["bench", "--remove-leftovers", &shown, "--nats-url", &nats, "--database-url", &postgres])
                .stderr(std::process::Stdio::inherit())
                .output()
                .await
                .expect("run tiendo bench --remove-leftovers");
            assert!(out.status.success(), "{:?}", out.status);
            String::from_utf8(out.stdout).expect("text")
        }
    };
    let said = remove(format!("{prefix}*")).await;
    let expected = format!("removed {} streams and {} databases named {prefix}*", left.0, left.1);
    assert!(said.trim_end().ends_with(&expected), "{said}");
    assert_eq!(shared.named(&prefix).await, (0, 0), "nothing of the killed benchmark is left");
    let said = remove(prefix.clone()).await;
    assert!(said.contains("removed 0 streams and 0 databases"), "a second time finds nothing: {said}");

    let bystanders = tiendo_testkit::namespace::databases_named(admin, &bystander).await.expect("list databases");
    assert_eq!(bystanders, vec![bystander.clone()], "another benchmark's database stays");
    assert!(bus.js.get_stream(&bystander_stream).await.is_ok(), "another benchmark's stream stays");
    bus.js.delete_stream(&bystander_stream).await.expect("remove the bystander's stream");
    tiendo_testkit::namespace::drop_database(admin, &bystander).await.expect("remove the bystander's database");
    shared.admin.close().await.ok();
}
