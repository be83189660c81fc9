//! Where the cores went during a run: CPU time by party, read from `/proc` (Linux only) at the
//! first publish and when the through-alerting clock stops.
//!
//! A ratio to the ceiling is bounded by the CPU each observation costs, whatever the code
//! waits on: at `c` µs of CPU per observation, `n` cores allow at most `n × 10⁶ / c`
//! observations a second. Every end-to-end run prints that bound and the parties' shares, so a
//! missed ratio comes with its explanation, rerunnable (docs/performance.md).
//!
//! The parties:
//! - `nats-server`: every process of that name on the machine (the benchmark's own or a shared
//!   one);
//! - `PostgreSQL`: every `postgres` process, their reaped children included (a backend that
//!   ends during the run is counted through the postmaster);
//! - `tiendo processes`: every other process whose name starts with `tiendo` (the services as
//!   processes, in the instances and memory parts);
//! - `SQLite's threads`: sqlx's SQLite worker threads of this process, which run SQLite itself;
//! - `the rest of this process`: this process's other threads: in the throughput parts, the
//!   four services' Rust work, async-nats, and the benchmark's own publishing and polling.
//!
//! Whatever else runs on the machine is not counted; `busy` says how much of the cores the
//! counted parties used.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What `/proc` counts CPU time in: Linux's `USER_HZ`, 100 on every architecture tiendo runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The name sqlx gives its SQLite worker threads (`sqlx-sqlite-worker-N`), as `/proc` shows
/// it: cut to 15 bytes.
const SQLITE_THREAD: &str = "sqlx-sqlite-wor";

/// A party other than this process, by the name `/proc/<pid>/stat` gives its processes.
fn party_of(name: &str) -> Option<&'static str> {
    if name == "nats-server" {
        Some("nats-server")
    } else if name == "postgres" || name == "postmaster" {
        Some("PostgreSQL")
    } else if name.starts_with("tiendo") {
        Some("tiendo processes")
    } else {
        None
    }
}

/// One reading of `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    name: String,
    parent: u32,
    /// User and system time, in ticks.
    own: u64,
    /// User and system time of its reaped children, in ticks.
    children: u64,
}

/// Parses a `stat` line: `pid (name) state ppid … utime stime cutime cstime …`. The name may
/// hold spaces and parentheses, so the fields are read after its last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let (head, rest) = line.rsplit_once(") ")?;
    let (_, name) = head.split_once(" (")?;
    // After the name: state is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |k: usize| fields.get(k - 3)?.parse::<u64>().ok();
    Some(Stat {
        name: name.to_owned(),
        parent: u32::try_from(field(4)?).ok()?,
        own: field(14)? + field(15)?,
        children: field(16)? + field(17)?,
    })
}

fn read_stat(path: &str) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// CPU ticks by party at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
struct Reading {
    /// This process, every thread that ever ran in it.
    this: u64,
    /// This process's SQLite threads, by thread id.
    sqlite: BTreeMap<u32, u64>,
    /// Other parties' processes, by process id: each one's ticks with its reaped children's.
    others: BTreeMap<u32, Process>,
}

/// A process of a party other than this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Process {
    party: &'static str,
    parent: u32,
    ticks: u64,
}

impl Reading {
    fn now() -> Self {
        let mut reading = Self::default();
        let me = std::process::id();
        if let Some(stat) = read_stat("/proc/self/stat") {
            reading.this = stat.own;
        }
        for tid in ids("/proc/self/task") {
            if let Some(stat) = read_stat(&format!("/proc/self/task/{tid}/stat")) {
                if stat.name.starts_with(SQLITE_THREAD) {
                    reading.sqlite.insert(tid, stat.own);
                }
            }
        }
        for pid in ids("/proc").filter(|&pid| pid != me) {
            if let Some(stat) = read_stat(&format!("/proc/{pid}/stat")) {
                if let Some(party) = party_of(&stat.name) {
                    reading.others.insert(pid, Process { party, parent: stat.parent, ticks: stat.own + stat.children });
                }
            }
        }
        reading
    }

    /// Seconds of CPU by party from `self` to `later`, every party of `later` named (a party
    /// that spent nothing with 0).
    /// - A process that started in between counts whole.
    /// - A process that ended in between and was reaped by a counted process (a PostgreSQL
    ///   backend, by the postmaster) counts through its parent's children's time: its ticks
    ///   before `self` are taken out of the parent's.
    /// - A process that ended otherwise counts nothing (a benchmark's nats-server still
    ///   stopping when the next begins): what it spent in between is lost, which no run here
    ///   does with a process it uses.
    /// - A SQLite thread that ended in between is lost to the split only: its time stays in
    ///   this process's.
    fn until(&self, later: &Reading) -> Vec<(&'static str, f64)> {
        let seconds = |ticks: u64| ticks as f64 / TICKS_PER_SECOND;
        let sqlite: u64 =
            later.sqlite.iter().map(|(tid, &t)| t.saturating_sub(self.sqlite.get(tid).copied().unwrap_or(0))).sum();
        let this = later.this.saturating_sub(self.this);
        let mut spent: BTreeMap<&'static str, i64> = BTreeMap::new();
        for (pid, now) in &later.others {
            let before = self.others.get(pid).filter(|p| p.party == now.party).map_or(0, |p| p.ticks);
            *spent.entry(now.party).or_default() += now.ticks.saturating_sub(before) as i64;
        }
        for (pid, gone) in &self.others {
            let reaped_by_counted = later.others.get(&gone.parent).is_some_and(|p| p.party == gone.party);
            if !later.others.contains_key(pid) && reaped_by_counted {
                *spent.entry(gone.party).or_default() -= gone.ticks as i64;
            }
        }
        let mut parties = vec![];
        for (party, ticks) in spent {
            parties.push((party, seconds(ticks.max(0) as u64)));
        }
        parties.push(("SQLite's threads", seconds(sqlite.min(this))));
        parties.push(("the rest of this process", seconds(this.saturating_sub(sqlite))));
        parties
    }
}

/// The numeric entries of a `/proc` directory: process or thread ids.
fn ids(dir: &str) -> impl Iterator<Item = u32> {
    std::fs::read_dir(dir).into_iter().flatten().filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
}

/// Started at the first publish: [`Clock::stop`] tells what each party spent since.
pub struct Clock {
    at: Instant,
    reading: Reading,
}

impl Clock {
    pub fn start() -> Self {
        Self { at: Instant::now(), reading: Reading::now() }
    }

    pub fn stop(&self) -> Spent {
        let later = Reading::now();
        Spent { wall: self.at.elapsed(), parties: self.reading.until(&later) }
    }
}

/// CPU seconds by party over `wall`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spent {
    pub wall: Duration,
    pub parties: Vec<(&'static str, f64)>,
}

impl Spent {
    /// Every party's CPU seconds together.
    pub fn total(&self) -> f64 {
        self.parties.iter().map(|(_, s)| s).sum()
    }

    /// µs of CPU per observation, of `n` observations, every party together.
    pub fn per_observation(&self, n: usize) -> f64 {
        self.total() * 1e6 / n.max(1) as f64
    }

    /// The most observations a second `cores` cores allow at this CPU per observation.
    pub fn bound(&self, n: usize, cores: usize) -> f64 {
        cores as f64 * 1e6 / self.per_observation(n)
    }

    /// E.g. `CPU per observation 61.2 µs (nats-server 16.1, SQLite's threads 25.9, the rest of
    /// this process 19.2); 2 cores 74% busy; at this cost 2 cores allow at most 32,700 obs/s`.
    pub fn describe(&self, n: usize, cores: usize) -> String {
        let per = |s: f64| s * 1e6 / n.max(1) as f64;
        // A party that spent nothing (PostgreSQL's idle processes in an SQLite run) is left out.
        let shares: Vec<String> =
            self.parties.iter().filter(|(_, s)| *s > 0.0).map(|(party, s)| format!("{party} {:.1}", per(*s))).collect();
        let busy = self.total() / (self.wall.as_secs_f64() * cores as f64) * 100.0;
        format!(
            "CPU per observation {:.1} µs ({}); {cores} cores {busy:.0}% busy; at this cost {cores} cores allow at \
             most {} obs/s",
            self.per_observation(n),
            shares.join(", "),
            crate::report::number(self.bound(n, cores))
        )
    }
}

/// The machine's cores, as the report counts them.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_after_the_last_parenthesis_of_its_name() {
        let line = "4242 (tiendo (x) y) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 9 0 1 2 3";
        let stat = Stat { name: "tiendo (x) y".to_owned(), parent: 17, own: 300, children: 10 };
        assert_eq!(parse_stat(line), Some(stat));
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
    }

    #[test]
    fn processes_are_counted_by_their_names() {
        assert_eq!(party_of("nats-server"), Some("nats-server"));
        assert_eq!(party_of("postgres"), Some("PostgreSQL"));
        assert_eq!(party_of("tiendo-aggregat"), Some("tiendo processes"));
        assert_eq!(party_of("bash"), None);
    }

    /// `others`: (pid, party, parent, ticks).
    fn reading(this: u64, sqlite: &[(u32, u64)], others: &[(u32, &'static str, u32, u64)]) -> Reading {
        Reading {
            this,
            sqlite: sqlite.iter().copied().collect(),
            others: others.iter().map(|&(pid, party, parent, ticks)| (pid, Process { party, parent, ticks })).collect(),
        }
    }

    #[test]
    fn the_split_counts_new_threads_whole_and_takes_sqlite_out_of_the_process() {
        let before = reading(1000, &[(7, 300)], &[(20, "nats-server", 1, 500)]);
        // Thread 7 ran 200 ticks more, thread 9 started and ran 100; nats-server 400 more; a
        // PostgreSQL process started and ran 50.
        let after = reading(1900, &[(7, 500), (9, 100)], &[(20, "nats-server", 1, 900), (30, "PostgreSQL", 1, 50)]);
        let spent = Spent { wall: Duration::from_secs(10), parties: before.until(&after) };
        assert_eq!(
            spent.parties,
            vec![
                ("PostgreSQL", 0.5),
                ("nats-server", 4.0),
                ("SQLite's threads", 3.0),
                ("the rest of this process", 6.0)
            ]
        );
        assert_eq!(spent.total(), 13.5);
        // 13.5 s for 100,000 observations: 135 µs each; 2 cores allow 14,815 a second.
        assert!((spent.per_observation(100_000) - 135.0).abs() < 1e-9);
        assert!((spent.bound(100_000, 2) - 2e6 / 135.0).abs() < 1e-6);
        let text = spent.describe(100_000, 2);
        assert!(text.starts_with("CPU per observation 135.0 µs (PostgreSQL 5.0, nats-server 40.0,"), "{text}");
        assert!(text.contains("2 cores 68% busy"), "{text}");
    }

    #[test]
    fn a_process_that_ended_counts_through_its_counted_parent_or_not_at_all() {
        // The postmaster (40) has reaped backend 41, which had run 300 ticks before and 100
        // in between: its children's time grew by all 400. Backend 42 ran 30 more. A
        // nats-server of an earlier run (50, its parent not counted) ended; nats-server 60
        // ran 70.
        let before = reading(
            100,
            &[(7, 80)],
            &[
                (40, "PostgreSQL", 1, 1000),
                (41, "PostgreSQL", 40, 300),
                (42, "PostgreSQL", 40, 10),
                (50, "nats-server", 9, 5000),
                (60, "nats-server", 1, 100),
            ],
        );
        let after =
            reading(150, &[], &[(40, "PostgreSQL", 1, 1400), (42, "PostgreSQL", 40, 40), (60, "nats-server", 1, 170)]);
        assert_eq!(
            before.until(&after),
            vec![
                ("PostgreSQL", 1.3),
                ("nats-server", 0.7),
                ("SQLite's threads", 0.0),
                ("the rest of this process", 0.5)
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read_and_its_work_shows() {
        let clock = Clock::start();
        let until = Instant::now() + Duration::from_millis(300);
        let mut x = 0u64;
        while Instant::now() < until {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let spent = clock.stop();
        let rest = spent.parties.iter().find(|(p, _)| *p == "the rest of this process").map(|(_, s)| *s);
        // 300 ms of spinning on one thread: at least 0.2 s counted (ticks are 10 ms).
        assert!(rest.is_some_and(|s| s >= 0.2), "{spent:?}");
    }
}
