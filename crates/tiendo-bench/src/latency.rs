//! Latency at a steady offered load: one observation per message at `--latency-rate` per
//! second (paced by a tokio interval), with the services running in this process.
//!
//! - publish → province aggregate: every observation reports a commune of the latest period
//!   and changes its counts, so it moves the province's figure of its indicator by exactly
//!   one version. The province aggregate with version `v` of an indicator therefore means
//!   that indicator's first `v` observations are applied: each one's latency is the arrival
//!   of the first province aggregate with a version at least its rank.
//! - publish → alert: every [`FLIP_EVERY`]th observation flips one of a few "flipper"
//!   communes between behind (about 50%) and achieved (about 95%), so an alert fires or
//!   resolves. Each flip's numerator is unique to its commune, so an alert's value names
//!   the flip that caused it. The clock stops when the alert arrives on a core subscription
//!   to `<prefix>.alerts.…`: alerting publishes it only after the transaction that stored
//!   the alert and its figure has committed, so it is stored and published.
//!
//! Both clocks start at the department's publish (before JetStream's acknowledgement).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tiendo_bus::async_nats::jetstream::context::PublishAckFuture;
use tiendo_proto::v1::{Aggregate, Alert};

use super::options::{Options, Part};
use super::report::{number, Sample};
use super::target::{Environment, Namespace, Services};
use super::workload::{self, Country, Observation, Rng, INDICATORS, LAST_MONTH};
use super::Measured;
use tiendo_testkit::{idle, Collector};

/// One observation in this many flips a flipper commune.
pub const FLIP_EVERY: usize = 20;
/// Most flipper communes: the first commune of each of the first districts.
const FLIPPERS: usize = 8;
/// Adults in a flipper commune: a flip's numerator over this reads back from the alert.
const FLIP_ADULTS: u64 = 10_000;
/// How long without a single new province aggregate before the run is declared stalled.
const STALL: Duration = Duration::from_secs(30);

/// One run of [`Part::Latency`].
pub async fn run(env: &Environment, options: &Options, run: usize, country: &Country) -> anyhow::Result<Measured> {
    let ns = env.namespace(Part::Latency, run, "", Some(country)).await?;
    let result = async {
        let services = Services::start(&ns.settings).await?;
        let measured = measure(&ns, options, country).await;
        let stopped = services.stop().await;
        let measured = measured?;
        stopped?;
        anyhow::Ok(measured)
    }
    .await;
    ns.close().await;
    result
}

/// An observation to publish, and the flip it makes (true: to behind), if any.
struct Planned {
    observation: Observation,
    flip: Option<bool>,
}

/// `n` observations of the latest period: mostly communes well on track (85–95%), each
/// revision changing the commune's count; every [`FLIP_EVERY`]th a flip.
fn plan(country: &Country, n: usize) -> Vec<Planned> {
    let flippers: Vec<usize> =
        (0..FLIPPERS.min(country.districts)).map(|d| d * country.communes_per_district).collect();
    let steady: Vec<usize> = (0..country.leaves()).filter(|l| !flippers.contains(l)).collect();
    let mut rng = Rng::new(5);
    let mut last: HashMap<(usize, usize), u64> = HashMap::new();
    let mut flips = vec![0u64; flippers.len()];
    let (mut flipped, mut steadies) = (0, 0);
    (0..n)
        .map(|i| {
            if i % FLIP_EVERY == FLIP_EVERY - 1 || steady.is_empty() {
                let f = flipped % flippers.len();
                flipped += 1;
                flips[f] += 1;
                let behind = flips[f] % 2 == 1;
                let base = if behind { FLIP_ADULTS / 2 } else { FLIP_ADULTS * 95 / 100 };
                let observation = Observation {
                    event: i as u64,
                    indicator: 0,
                    leaf: flippers[f],
                    month: LAST_MONTH,
                    numerator: base + flips[f] % 400,
                    denominator: FLIP_ADULTS,
                };
                return Planned { observation, flip: Some(behind) };
            }
            let indicator = steadies % INDICATORS;
            let leaf = steady[(steadies / INDICATORS) % steady.len()];
            steadies += 1;
            let denominator = workload::adults(leaf);
            let mut numerator = (denominator as f64 * (0.85 + 0.10 * rng.unit())) as u64;
            if last.get(&(indicator, leaf)) == Some(&numerator) {
                numerator -= 1;
            }
            last.insert((indicator, leaf), numerator);
            let observation =
                Observation { event: i as u64, indicator, leaf, month: LAST_MONTH, numerator, denominator };
            Planned { observation, flip: None }
        })
        .collect()
}

async fn measure(ns: &Namespace, options: &Options, country: &Country) -> anyhow::Result<Measured> {
    let n = (options.latency_rate * options.latency_secs) as usize;
    let plan = plan(country, n);
    let observations: Vec<Observation> = plan.iter().map(|p| p.observation).collect();
    let messages = workload::messages(&ns.bus.names, country, &observations, 1);
    let names = &ns.bus.names;
    let aggregates = Collector::start(&ns.bus, names.aggregates("*", Country::PROVINCE), |payload| {
        serde_json::from_slice::<Aggregate>(payload).ok().map(|a| (a.indicator, a.version))
    })
    .await?;
    let alerts = Collector::start(&ns.bus, names.alerts(&workload::indicator(0), "*"), |payload| {
        serde_json::from_slice::<Alert>(payload).ok().map(|a| AlertSeen {
            id: format!("{}:{}", a.alert_id, a.state),
            org_unit: a.org_unit,
            firing: a.state == tiendo_domain::alert::AlertState::Firing.as_str(),
            value: a.value,
        })
    })
    .await?;

    // Acknowledgements are awaited aside, so a slow one never holds back the pace.
    let (acks, mut pending) = tokio::sync::mpsc::unbounded_channel::<PublishAckFuture>();
    let acker = tokio::spawn(async move {
        while let Some(ack) = pending.recv().await {
            ack.await?;
        }
        anyhow::Ok(())
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / options.latency_rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = Vec::with_capacity(n);
    let start = Instant::now();
    for m in messages {
        tick.tick().await;
        let subject = m.subject.clone();
        let message = m.into_publish();
        let at = Instant::now();
        let ack = ns.bus.js.send_publish(subject, message).await?;
        sent.push(at);
        acks.send(ack).map_err(|_| anyhow::anyhow!("a publish was not acknowledged"))?;
    }
    let offered_secs = start.elapsed().as_secs_f64();
    drop(acks);
    acker.await??;

    // The rank of each observation within its indicator: the province version it makes.
    let mut ranks: Vec<Vec<Instant>> = vec![vec![]; INDICATORS];
    for (p, at) in plan.iter().zip(&sent) {
        ranks[p.observation.indicator].push(*at);
    }
    wait_for_versions(ns, &aggregates, &ranks).await?;
    let db = ns.database().await?;
    let idle = idle::wait_idle_with_outbox(&ns.bus, &db, Duration::from_secs(120)).await;
    db.close().await.ok();
    idle?;
    alerts.wait_quiet(Duration::from_millis(250), Duration::from_secs(5)).await;

    let seen_aggregates = aggregates.seen();
    let to_aggregate = aggregate_latencies(&seen_aggregates, &ranks);
    let mut versions = HashSet::new();
    let aggregate_copies = seen_aggregates.iter().filter(|(key, _)| !versions.insert(key)).count();
    let flips: HashMap<(String, u64), (Instant, bool)> = plan
        .iter()
        .zip(&sent)
        .filter_map(|(p, at)| {
            let o = &p.observation;
            p.flip.map(|behind| ((country.leaf(o.leaf), o.numerator), (*at, behind)))
        })
        .collect();
    let to_alert = alert_latencies(&alerts.seen(), &flips);
    anyhow::ensure!(!to_alert.latencies.is_empty(), "none of the {} flips raised or resolved an alert", flips.len());

    let a = Percentiles::of(&to_aggregate);
    let b = Percentiles::of(&to_alert.latencies);
    let mut samples = vec![];
    for (what, key, p) in [("province aggregate", "aggregate", &a), ("alert", "alert", &b)] {
        samples.push(Sample::new(format!("latency_{key}_p50_ms"), format!("publish → {what}, p50"), "ms", p.p50));
        samples.push(Sample::new(format!("latency_{key}_p99_ms"), format!("publish → {what}, p99"), "ms", p.p99));
        samples.push(Sample::new(format!("latency_{key}_max_ms"), format!("publish → {what}, max"), "ms", p.max));
    }
    let mut notes = vec![format!(
        "offered {} obs/s for {offered_secs:.2} s ({} asked); {} province updates matched of {n}; {} of {} flips \
         raised their alert (flips of one commune landing in one batch collapse into one figure)",
        number(n as f64 / offered_secs),
        options.latency_rate,
        to_aggregate.len(),
        to_alert.latencies.len(),
        flips.len()
    )];
    notes.push(format!(
        "slowest to the province: {}; slowest to the alert: {} (published how long after the first observation)",
        slowest(&to_aggregate, start, SLOWEST),
        slowest(&to_alert.latencies, start, SLOWEST)
    ));
    if to_alert.wrong_state > 0 {
        notes.push(format!(
            "{} alert(s) had the opposite state of the flip they carry the value of",
            to_alert.wrong_state
        ));
    }
    if aggregate_copies + to_alert.copies > 0 {
        notes.push(format!(
            "published twice (seen again on a core subscription; JetStream keeps one): {aggregate_copies} province \
             aggregate(s), {} alert(s)",
            to_alert.copies
        ));
    }
    Ok(Measured { samples, notes })
}

/// Waits until every indicator's province aggregate has reached the version of its last
/// observation; fails when none moves for [`STALL`].
async fn wait_for_versions(
    ns: &Namespace,
    aggregates: &Collector<(String, u64)>,
    ranks: &[Vec<Instant>],
) -> anyhow::Result<()> {
    let want: HashMap<String, u64> =
        ranks.iter().enumerate().map(|(i, r)| (workload::indicator(i), r.len() as u64)).collect();
    let mut last = (0, Instant::now());
    loop {
        let seen = aggregates.seen();
        let mut top: HashMap<&str, u64> = HashMap::new();
        for ((indicator, version), _) in &seen {
            let v = top.entry(indicator.as_str()).or_default();
            *v = (*v).max(*version);
        }
        if want.iter().all(|(i, n)| *n == 0 || top.get(i.as_str()).is_some_and(|v| v >= n)) {
            return Ok(());
        }
        if seen.len() != last.0 {
            last = (seen.len(), Instant::now());
        } else if last.1.elapsed() > STALL {
            anyhow::bail!(
                "stalled: province aggregates reached {top:?}, expected {want:?}; consumers: {:?}",
                idle::stages(&ns.bus).await?
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// For each observation, from its publish to the first province aggregate covering its rank.
fn aggregate_latencies(seen: &[((String, u64), Instant)], ranks: &[Vec<Instant>]) -> Vec<Latency> {
    let mut covered = vec![0usize; ranks.len()];
    let mut out = vec![];
    for ((indicator, version), at) in seen {
        let Some(i) = (0..ranks.len()).find(|i| workload::indicator(*i) == *indicator) else { continue };
        while covered[i] < (*version as usize).min(ranks[i].len()) {
            let sent = ranks[i][covered[i]];
            out.push(Latency { sent, took: at.saturating_duration_since(sent) });
            covered[i] += 1;
        }
    }
    out
}

/// An alert as received.
#[derive(Debug, Clone)]
struct AlertSeen {
    /// Alert id and state. The same id and state come back with every episode of the alert;
    /// with the flip's value they name one transition, which a subscriber can see twice,
    /// since the outbox may publish a message again (JetStream drops the copy; a core
    /// subscription does not).
    id: String,
    org_unit: String,
    firing: bool,
    value: f64,
}

/// Alerts matched to the flips that raised them.
#[derive(Debug, Default)]
struct AlertMatch {
    /// From each flip's publish to its alert's first copy.
    latencies: Vec<Latency>,
    /// Alerts whose state was the opposite of their flip's.
    wrong_state: usize,
    /// Copies of an alert already seen.
    copies: usize,
}

/// Matches each transition on a flipper commune to the flip whose value it carries.
fn alert_latencies(seen: &[(AlertSeen, Instant)], flips: &HashMap<(String, u64), (Instant, bool)>) -> AlertMatch {
    let mut m = AlertMatch::default();
    let mut counted = HashSet::new();
    for (alert, at) in seen {
        let numerator = (alert.value * FLIP_ADULTS as f64 / 100.0).round() as u64;
        let Some((sent, behind)) = flips.get(&(alert.org_unit.clone(), numerator)) else { continue };
        // One alert id fires and resolves again with every episode: a copy is the same
        // transition carrying the same flip's value.
        if !counted.insert((alert.id.as_str(), numerator)) {
            m.copies += 1;
            continue;
        }
        if alert.firing != *behind {
            m.wrong_state += 1;
        }
        m.latencies.push(Latency { sent: *sent, took: at.saturating_duration_since(*sent) });
    }
    m
}

/// One observation's way: when it was published and how long until it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latency {
    sent: Instant,
    took: Duration,
}

/// How many of the slowest samples a run's notes name.
const SLOWEST: usize = 5;

/// The `n` slowest samples, slowest first, each with how far into the run (from `start`) it
/// was published: a tail that gathers in one moment (the services' first second, a periodic
/// task) reads differently from one spread over the run.
fn slowest(samples: &[Latency], start: Instant, n: usize) -> String {
    let mut worst: Vec<&Latency> = samples.iter().collect();
    worst.sort_by_key(|l| std::cmp::Reverse(l.took));
    worst
        .iter()
        .take(n)
        .map(|l| {
            let at = l.sent.saturating_duration_since(start).as_secs_f64();
            format!("{:.1} ms at {at:.2} s", l.took.as_secs_f64() * 1000.0)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// p50, p99 and max, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Percentiles {
    p50: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; zeros for no sample.
    fn of(samples: &[Latency]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|l| l.took.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |q: f64| ms.get(((q * ms.len() as f64).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
        Self { p50: rank(0.50), p99: rank(0.99), max: ms.last().copied().unwrap_or(0.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_episode_of_an_alert_is_its_own_transition_and_only_a_repeat_is_a_copy() {
        let t0 = Instant::now();
        let seen = |numerator: u64, ms: u64| {
            let value = numerator as f64 * 100.0 / FLIP_ADULTS as f64;
            let alert = AlertSeen { id: "a:firing".into(), org_unit: "c1".into(), firing: true, value };
            (alert, t0 + Duration::from_millis(ms))
        };
        let flips: HashMap<(String, u64), (Instant, bool)> =
            [(("c1".to_owned(), 10), (t0, true)), (("c1".to_owned(), 12), (t0, true))].into();
        let m = alert_latencies(&[seen(10, 5), seen(12, 7), seen(12, 9)], &flips);
        let took: Vec<Duration> = m.latencies.iter().map(|l| l.took).collect();
        assert_eq!(took, vec![Duration::from_millis(5), Duration::from_millis(7)]);
        assert_eq!(m.copies, 1);
    }

    #[test]
    fn every_observation_changes_its_commune_and_flips_alternate() {
        let country = Country::with_about(400);
        let plan = plan(&country, 5000);
        let mut last: HashMap<(usize, usize), u64> = HashMap::new();
        let mut flip_state: HashMap<usize, bool> = HashMap::new();
        for p in &plan {
            let o = p.observation;
            assert_ne!(last.insert((o.indicator, o.leaf), o.numerator), Some(o.numerator), "{o:?} changes nothing");
            if let Some(behind) = p.flip {
                assert_ne!(flip_state.insert(o.leaf, behind), Some(behind), "flips alternate");
                assert_eq!(o.denominator, FLIP_ADULTS);
            }
        }
        assert_eq!(plan.iter().filter(|p| p.flip.is_some()).count(), 5000 / FLIP_EVERY);
    }

    #[test]
    fn an_aggregate_covers_every_observation_up_to_its_version() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let ranks = vec![vec![ms(0), ms(1), ms(2)]];
        let seen = vec![((workload::indicator(0), 2), ms(10)), ((workload::indicator(0), 3), ms(12))];
        let got: Vec<u128> = aggregate_latencies(&seen, &ranks).iter().map(|l| l.took.as_millis()).collect();
        assert_eq!(got, vec![10, 9, 10]);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let t0 = Instant::now();
        let samples: Vec<Latency> = (1..=100).map(|ms| Latency { sent: t0, took: Duration::from_millis(ms) }).collect();
        let p = Percentiles::of(&samples);
        assert_eq!((p.p50, p.p99, p.max), (50.0, 99.0, 100.0));
    }

    #[test]
    fn the_slowest_samples_are_named_slowest_first_with_when_they_were_published() {
        let t0 = Instant::now();
        let at = |sent_ms: u64, took_ms: u64| Latency {
            sent: t0 + Duration::from_millis(sent_ms),
            took: Duration::from_millis(took_ms),
        };
        let samples = [at(0, 10), at(250, 90), at(1500, 40), at(2000, 5)];
        assert_eq!(slowest(&samples, t0, 2), "90.0 ms at 0.25 s, 40.0 ms at 1.50 s");
        assert_eq!(slowest(&[], t0, 2), "");
    }
}
