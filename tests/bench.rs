//! `tiendo bench --smoke`, in-process: every part of the benchmark runs at a tiny size, and
//! every figure comes out present, consistent with the others, in the report and in the JSON file.
//!
//! The memory part starts the `tiendo` binary (`cargo build --workspace --bins`, as
//! scripts/test does, builds it).

use serde_json::Value;
use tiendo_bench::Options;
use tiendo_settings::Settings;

/// Every figure a full run reports; the ratios are derived from the others' medians.
const FIGURES: [&str; 14] = [
    "ceiling_obs_per_s",
    "single_obs_per_s",
    "single_ratio_to_ceiling",
    "batched_obs_per_s",
    "latency_aggregate_p50_ms",
    "latency_aggregate_p99_ms",
    "latency_aggregate_max_ms",
    "latency_alert_p50_ms",
    "latency_alert_p99_ms",
    "latency_alert_max_ms",
    "scale_us_per_obs_11",
    "scale_us_per_obs_100",
    "scale_ratio_largest_to_smallest",
    "memory_peak_rss_mb",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_run_measures_every_figure_and_writes_them_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::smoke();
    // The shared test server; the benchmark starts a private one if it does not answer.
    options.nats_url = Some(std::env::var("TIENDO_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()));
    options.json = dir.path().join("bench").join("bench.json");
    options.tiendo_binary = tiendo_tests::fleet::binary("tiendo");

    let mut out = Vec::new();
    let result = tiendo_bench::main(Settings::defaults(), &options, &mut out).await;
    let out = String::from_utf8_lossy(&out);
    if let Err(e) = result {
        panic!("the benchmark failed: {e:#}\n{out}");
    }

    let json: Value = serde_json::from_str(&std::fs::read_to_string(&options.json).expect("the JSON file is written"))
        .expect("the JSON file parses");
    for key in FIGURES {
        let figure = &json["figures"][key];
        let median = figure["median"].as_f64().unwrap_or_else(|| panic!("{key} is missing from:\n{json:#}"));
        assert!(median > 0.0 && median.is_finite(), "{key} = {median}");
        let runs = figure["runs"].as_array().map_or(0, Vec::len);
        assert_eq!(runs, if key.contains("ratio") { 0 } else { 1 }, "{key}: one value per run");
        assert!(out.contains(figure["label"].as_str().unwrap()), "{key} is not in the printed table:\n{out}");
    }
    // The figures agree with each other: ratios are the ratios of their parts, percentiles are
    // ordered, and the memory figure is a process's, not zero or a unit mix-up.
    let median = |key: &str| json["figures"][key]["median"].as_f64().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    assert!(close(median("single_ratio_to_ceiling"), median("single_obs_per_s") / median("ceiling_obs_per_s")));
    assert!(close(
        median("scale_ratio_largest_to_smallest"),
        median("scale_us_per_obs_100") / median("scale_us_per_obs_11")
    ));
    for stage in ["aggregate", "alert"] {
        let (p50, p99, max) = (
            median(&format!("latency_{stage}_p50_ms")),
            median(&format!("latency_{stage}_p99_ms")),
            median(&format!("latency_{stage}_max_ms")),
        );
        assert!(p50 <= p99 && p99 <= max, "{stage}: p50 {p50} ≤ p99 {p99} ≤ max {max}");
    }
    let rss = median("memory_peak_rss_mb");
    assert!((5.0..4096.0).contains(&rss), "a peak RSS of {rss} MB");
    assert_eq!(json["runs"], 1);
    assert_eq!(json["smoke"], true);
    assert_eq!(json["database"], "sqlite");
    assert!(json["cores"].as_u64().is_some_and(|c| c >= 1));
    assert!(json["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(json["sizes"]["scale_units"], serde_json::json!([11, 100]));
    assert_eq!(json["failures"], serde_json::json!([]));
}
