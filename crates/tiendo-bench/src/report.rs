//! The benchmark's figures: every run's value, the median, the targets they are held to, the
//! table printed at the end and the JSON file written beside it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::target::DatabaseKind;

/// One value measured by one run of a part.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Stable name in the JSON file, e.g. `single_obs_per_s`.
    pub key: String,
    /// What it is, in words, for the table.
    pub label: String,
    pub unit: &'static str,
    pub value: f64,
}

impl Sample {
    pub fn new(key: impl Into<String>, label: impl Into<String>, unit: &'static str, value: f64) -> Self {
        Self { key: key.into(), label: label.into(), unit, value }
    }
}

/// A figure: the median of its runs, or a value derived from other figures' medians.
#[derive(Debug, Clone)]
pub struct Figure {
    pub key: String,
    pub label: String,
    pub unit: &'static str,
    pub median: f64,
    /// Every run's value, in run order; empty for a derived figure.
    pub runs: Vec<f64>,
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// What the project promises (issues 5 and 15), and whether a figure keeps the promise.
struct Target {
    key: &'static str,
    text: &'static str,
    met: fn(f64) -> bool,
    /// Held only on this database; reported without a verdict on the others.
    only_on: Option<DatabaseKind>,
}

const TARGETS: [Target; 8] = [
    // The ratios to the ceiling are promised on SQLite; PostgreSQL is held to its ratio to SQLite.
    Target { key: "single_ratio_to_ceiling", text: ">= 0.25", met: |v| v >= 0.25, only_on: Some(DatabaseKind::Sqlite) },
    Target { key: "batched_ratio_to_ceiling", text: ">= 0.5", met: |v| v >= 0.5, only_on: Some(DatabaseKind::Sqlite) },
    Target { key: "batched_postgres_to_sqlite", text: ">= 0.7", met: |v| v >= 0.7, only_on: None },
    Target { key: "latency_aggregate_p99_ms", text: "< 50", met: |v| v < 50.0, only_on: None },
    Target { key: "latency_alert_p99_ms", text: "< 50", met: |v| v < 50.0, only_on: None },
    Target { key: "scale_ratio_largest_to_smallest", text: "<= 1.20", met: |v| v <= 1.2, only_on: None },
    Target { key: "scale_out_ratio_2_to_1", text: ">= 1.6", met: |v| v >= 1.6, only_on: None },
    Target { key: "memory_peak_rss_mib", text: "< 200", met: |v| v < 200.0, only_on: None },
];

/// Everything one benchmark measured, and where.
#[derive(Debug, Clone)]
pub struct Report {
    pub commit: String,
    pub cores: usize,
    pub database: DatabaseKind,
    pub nats: String,
    pub runs: usize,
    pub smoke: bool,
    /// The sizes used, as JSON (`observations`, `batch`, …).
    pub sizes: Value,
    pub figures: Vec<Figure>,
    /// Per run: phase timings and anything odd seen, in words.
    pub notes: Vec<String>,
    /// Parts that failed, with why.
    pub failures: Vec<String>,
}

impl Report {
    /// A report with no figures yet.
    pub fn new(commit: String, cores: usize, database: DatabaseKind, nats: String, runs: usize, smoke: bool) -> Self {
        Self {
            commit,
            cores,
            database,
            nats,
            runs,
            smoke,
            sizes: json!({}),
            figures: vec![],
            notes: vec![],
            failures: vec![],
        }
    }

    /// Adds a run's sample to its figure (created on first sight, in order).
    pub fn add(&mut self, s: Sample) {
        match self.figures.iter_mut().find(|f| f.key == s.key) {
            Some(f) => {
                f.runs.push(s.value);
                f.median = median(&f.runs);
            }
            None => self.figures.push(Figure {
                key: s.key,
                label: s.label,
                unit: s.unit,
                median: s.value,
                runs: vec![s.value],
            }),
        }
    }

    /// Adds a figure computed from others' medians.
    pub fn derive(&mut self, key: &str, label: &str, unit: &'static str, value: f64) {
        self.figures.push(Figure { key: key.into(), label: label.into(), unit, median: value, runs: vec![] });
    }

    pub fn figure(&self, key: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.key == key)
    }

    /// The target held against `key` on this database, and whether it is met.
    fn verdict(&self, key: &str, value: f64) -> Option<(&'static str, Option<bool>)> {
        let t = TARGETS.iter().find(|t| t.key == key)?;
        let held = t.only_on.is_none_or(|db| db == self.database) && !self.smoke;
        Some((t.text, held.then(|| (t.met)(value))))
    }

    /// The figures as a table, one line each: median, unit, every run, target.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "tiendo bench: commit {}, {} cores, {}, NATS: {}; median of {} run(s){}",
            self.commit,
            self.cores,
            self.database.as_str(),
            self.nats,
            self.runs,
            if self.smoke { " (smoke sizes: targets not judged)" } else { "" }
        );
        let _ = writeln!(t, "{:<64} {:>12} {:<7} {:<30} target", "figure", "median", "unit", "runs");
        for f in &self.figures {
            let runs: Vec<String> = f.runs.iter().map(|v| number(*v)).collect();
            let target = match self.verdict(&f.key, f.median) {
                Some((text, Some(true))) => format!("{text}  met"),
                Some((text, Some(false))) => format!("{text}  MISSED"),
                Some((text, None)) => format!("{text}  (not judged)"),
                None => String::new(),
            };
            let _ =
                writeln!(t, "{:<64} {:>12} {:<7} {:<30} {}", f.label, number(f.median), f.unit, runs.join(" "), target);
        }
        t
    }

    /// The report as JSON: where it ran, the sizes, every figure with its runs and target.
    pub fn to_json(&self) -> Value {
        let figures: serde_json::Map<String, Value> = self
            .figures
            .iter()
            .map(|f| {
                let mut v = json!({ "label": f.label, "unit": f.unit, "median": f.median, "runs": f.runs });
                if let Some((text, met)) = self.verdict(&f.key, f.median) {
                    v["target"] = json!(text);
                    v["met"] = json!(met);
                }
                (f.key.clone(), v)
            })
            .collect();
        json!({
            "commit": self.commit,
            "cores": self.cores,
            "database": self.database.as_str(),
            "nats": self.nats,
            "runs": self.runs,
            "smoke": self.smoke,
            "sizes": self.sizes,
            "figures": figures,
            "notes": self.notes,
            "failures": self.failures,
        })
    }

    /// Writes [`Report::to_json`] to `path`, creating its folder.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// A figure for a human: thousands separated above 1,000, three significant digits below.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.abs() >= 1000.0 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        return if v < 0.0 { format!("-{out}") } else { out };
    }
    let decimals = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.decimals$}")
}

/// The commit being measured: the one this binary was built from, with `-dirty` when its
/// sources had changes not committed, or "unknown" when it was built outside a git work
/// tree (recorded by `build.rs`, so it does not depend on where the binary runs).
pub fn commit() -> String {
    env!("TIENDO_BUILD_COMMIT").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn the_commit_is_the_one_the_binary_was_built_from() {
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
                .args(args)
                .output()
                .expect("git runs");
            String::from_utf8(out.stdout).expect("text").trim().to_owned()
        };
        let head = git(&["rev-parse", "--short", "HEAD"]);
        let commit = commit();
        assert!(!head.is_empty() && commit.starts_with(&head), "built from {commit}, HEAD is {head}");
        let sources = git(&[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "crates",
            "Cargo.toml",
            "Cargo.lock",
            ".cargo",
        ]);
        assert_eq!(commit.ends_with("-dirty"), !sources.is_empty(), "{commit}: {sources}");
    }

    #[test]
    fn numbers_read_easily() {
        assert_eq!(number(123_456.7), "123,457");
        assert_eq!(number(1000.0), "1,000");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(0.1234), "0.123");
    }

    #[test]
    fn targets_are_judged_only_where_they_apply() {
        let mut r = Report::new("abc".into(), 2, DatabaseKind::Postgres, "x".into(), 1, false);
        r.derive("batched_ratio_to_ceiling", "batched / ceiling", "ratio", 0.6);
        r.add(Sample::new("memory_peak_rss_mib", "memory", "MiB", 250.0));
        r.add(Sample::new("latency_alert_p99_ms", "alert p99", "ms", 40.0));
        let json = r.to_json();
        assert_eq!(json["figures"]["batched_ratio_to_ceiling"]["met"], Value::Null, "SQLite-only target");
        assert_eq!(json["figures"]["memory_peak_rss_mib"]["met"], json!(false));
        assert_eq!(json["figures"]["latency_alert_p99_ms"]["met"], json!(true));
        assert!(r.table().contains("MISSED"));
    }
}
