//! Scale: what aggregating one observation costs as the organisation tree grows, from a
//! handful of units to a country of about ten thousand, the depth kept at three levels
//! (province → districts → communes), so every observation rolls up through the same two
//! ancestors whatever the size.
//!
//! Calls [`tiendo_aggregation::apply_observations`] directly, on a fresh database per tree,
//! in transactions of `scale_batch` observations as the service batches them; no bus. The
//! workload ([`workload::valid_observations`]) asks for the same rows at every size: half
//! new figures and half revisions of them, and no two observations of a transaction sharing
//! an ancestor's figure, so each writes its own figure and two ancestors'. (A workload
//! spread over the communes of one period would share ancestors far more on a small tree:
//! fewer rows per observation, and a flattering ratio.) The part counts the ancestor rows
//! aggregation wrote, per observation, at each size, and fails when two sizes differ by
//! more than [`ANCESTOR_SPREAD`].

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tiendo_domain::{Catalog, FigureKey, Observation};
use tiendo_store::entity::figure;
use tiendo_store::sea_orm::{EntityTrait, PaginatorTrait};

use super::options::{Options, Part};
use super::report::{Report, Sample};
use super::target::Environment;
use super::workload::{self, Country};
use super::Measured;

/// Keys of the per-size figures: this, then the number of units.
const KEY: &str = "scale_us_per_obs_";
/// Keys of the ancestor rows written per observation, per size.
const ANCESTORS_KEY: &str = "scale_ancestor_writes_per_obs_";

/// How far apart (largest ÷ smallest − 1) the sizes' ancestor writes per observation may be
/// before the comparison of their costs means nothing.
pub const ANCESTOR_SPREAD: f64 = 0.03;

/// One run of [`Part::Scale`]: every tree size in turn.
pub async fn run(env: &Environment, options: &Options, run: usize) -> anyhow::Result<Measured> {
    let mut measured = Measured::default();
    let mut ancestors: Vec<(usize, f64)> = vec![];
    for &size in &options.scale_sizes {
        let country = Country::with_about(size);
        anyhow::ensure!(
            options.scale_observations <= workload::scale_capacity(&country),
            "{} observations do not fit a tree of {} units with every new figure new (at most {})",
            options.scale_observations,
            country.units(),
            workload::scale_capacity(&country)
        );
        let ns = env.namespace(Part::Scale, run, &format!("{}", country.units()), None).await?;
        let result = async {
            let db = ns.database().await?;
            let timing = apply_all(&db, &country, options).await;
            let rows = figure::Entity::find().count(&db).await;
            db.close().await.ok();
            anyhow::Ok((timing?, rows?))
        }
        .await;
        ns.close().await;
        let (timing, rows) = result?;
        let per_obs = |d: Duration, n: u64| d.as_secs_f64() * 1e6 / n.max(1) as f64;
        let n = options.scale_observations;
        let units = country.units();
        measured.samples.push(Sample::new(
            format!("{KEY}{units}"),
            format!("aggregation cost, {units} units ({} communes)", country.leaves()),
            "µs/obs",
            per_obs(timing.apply + timing.commit, n),
        ));
        let per_obs_ancestors = timing.ancestor_writes as f64 / n.max(1) as f64;
        ancestors.push((units, per_obs_ancestors));
        measured.samples.push(Sample::new(
            format!("{ANCESTORS_KEY}{units}"),
            format!("ancestor rows written per obs, {units} units"),
            "rows",
            per_obs_ancestors,
        ));
        measured.notes.push(format!(
            "{units} units: {:.1} µs/obs applying, {:.1} committing; new figures {:.1}, revisions {:.1} µs/obs; \
             {per_obs_ancestors:.3} ancestor rows written per obs; {rows} figure rows at the end",
            per_obs(timing.apply, n),
            per_obs(timing.commit, n),
            per_obs(timing.halves[0].0, timing.halves[0].1),
            per_obs(timing.halves[1].0, timing.halves[1].1),
        ));
    }
    let fewest = ancestors.iter().map(|a| a.1).fold(f64::INFINITY, f64::min);
    let most = ancestors.iter().map(|a| a.1).fold(0.0, f64::max);
    anyhow::ensure!(
        most <= fewest * (1.0 + ANCESTOR_SPREAD),
        "the sizes wrote different numbers of ancestor rows per observation ({ancestors:?} as (units, rows)): \
         their costs are not comparable"
    );
    Ok(measured)
}

/// Where the time of one tree went.
struct Timing {
    apply: Duration,
    commit: Duration,
    /// Time and observations of the new figures, then of the revisions.
    halves: [(Duration, u64); 2],
    /// Figures written that are not an observation's own: ancestors' roll-ups.
    ancestor_writes: u64,
}

async fn apply_all(
    db: &tiendo_store::sea_orm::DatabaseConnection,
    country: &Country,
    options: &Options,
) -> anyhow::Result<Timing> {
    let catalog = Catalog::from_toml(&country.catalog_toml())?;
    let observations = workload::valid_observations(country, options.scale_observations, 11)
        .iter()
        .map(Observation::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00+00:00")?.to_utc();
    let mut timing =
        Timing { apply: Duration::ZERO, commit: Duration::ZERO, halves: [(Duration::ZERO, 0); 2], ancestor_writes: 0 };
    let (new_figures, revisions) = observations.split_at(observations.len().div_ceil(2));
    for (half, observations) in [new_figures, revisions].into_iter().enumerate() {
        for batch in observations.chunks(options.scale_batch) {
            let items: Vec<&Observation> = batch.iter().collect();
            let started = Instant::now();
            let tx = tiendo_store::begin(db).await?;
            let (outcomes, written) = tiendo_aggregation::apply_observations(&*tx, &catalog, &items, now).await?;
            let applied = Instant::now();
            tx.commit().await?;
            timing.apply += applied - started;
            timing.commit += applied.elapsed();
            timing.halves[half].0 += started.elapsed();
            timing.halves[half].1 += batch.len() as u64;
            // Aggregation writes (and announces) exactly the figures it returns.
            let own: HashSet<&FigureKey> = batch.iter().map(Observation::key).collect();
            timing.ancestor_writes += written.iter().filter(|f| !own.contains(&f.key)).count() as u64;
            anyhow::ensure!(
                outcomes.iter().all(|o| *o == tiendo_aggregation::Outcome::Applied),
                "aggregation did not apply every observation of a batch of fresh event ids: {outcomes:?}"
            );
        }
    }
    Ok(timing)
}

/// Adds the largest tree's cost over the smallest's, from their medians.
pub fn derive(report: &mut Report) {
    let sizes: Vec<(usize, f64)> = report
        .figures
        .iter()
        .filter_map(|f| f.key.strip_prefix(KEY).and_then(|u| u.parse().ok()).map(|u: usize| (u, f.median)))
        .collect();
    let (Some(small), Some(large)) = (sizes.iter().min_by_key(|s| s.0), sizes.iter().max_by_key(|s| s.0)) else {
        return;
    };
    if small.0 != large.0 {
        let label = format!("aggregation cost, {} units / {} units", large.0, small.0);
        report.derive("scale_ratio_largest_to_smallest", &label, "ratio", large.1 / small.1);
    }
}
