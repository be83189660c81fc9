//! One observation applied inside the caller's transaction: who owns its event id, which
//! figure it sets, and how the roll-ups above it move. The rows are read and written through
//! the store's [`Work`], once per batch.
//!
//! The result depends only on which observations arrived, not on their order: an event id
//! belongs to its first use in publication order (the ingest stream position), and a unit's
//! direct figure is the last-published observation for its period.

use chrono::{DateTime, Utc};
use tiendo_domain::figure::{Direct, UnitFigure};
use tiendo_domain::{Catalog, FigureKey, Observation};
use tiendo_store::aggregation::Work;
use tiendo_store::sea_orm::ConnectionTrait;
use tiendo_store::StoreError;

/// What became of one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, and the roll-ups above it moved.
    Applied,
    /// Its department used this event id before: ignored, whatever its payload.
    Duplicate,
    /// A revision published after this one is already in: stored, but the figure does not
    /// move backwards.
    Superseded,
}

/// Applies `obs` at `now`; reports each figure it changed to `changed`, the unit's first,
/// then its ancestors' upwards.
pub async fn apply<C: ConnectionTrait>(
    db: &C,
    work: &mut Work,
    catalog: &Catalog,
    obs: &Observation,
    now: DateTime<Utc>,
    changed: &mut impl FnMut(&UnitFigure),
) -> Result<Outcome, StoreError> {
    let position = obs.position();
    match work.first_use(db, obs).await? {
        Some(first) if first.position <= position => Ok(Outcome::Duplicate),
        Some(first) => {
            // A later reuse of this id got here first (a redelivery overtook it). The id
            // belongs to this earlier observation: it takes the row, and both figures it
            // touches are recomputed from what is stored.
            work.record(obs, now, true);
            let mut r = Rollup { db, work, catalog, now, changed };
            r.refresh(&first.key).await?;
            if first.key != *obs.key() {
                r.refresh(obs.key()).await?;
            }
            Ok(Outcome::Applied)
        }
        None => {
            work.record(obs, now, false);
            let row = work.figure(db, obs.key()).await?;
            if row.direct.as_ref().is_some_and(|d| d.position > position) {
                // Decided from this row without changing it: written back as it is, so a
                // transaction changing it meanwhile (one that takes an event id away from
                // its direct observation, and recomputes it from the stored observations
                // without this one) conflicts with this one instead of both committing.
                work.changed(row);
                return Ok(Outcome::Superseded);
            }
            let direct = Direct {
                figure: obs.figure(),
                event_id: obs.event_id().clone(),
                department: obs.department().clone(),
                position,
            };
            Rollup { db, work, catalog, now, changed }.place(obs.key(), Some(direct)).await?;
            Ok(Outcome::Applied)
        }
    }
}

/// Moving a unit's figure and its ancestors' roll-ups, inside one transaction.
struct Rollup<'a, C, F> {
    db: &'a C,
    work: &'a mut Work,
    catalog: &'a Catalog,
    now: DateTime<Utc>,
    changed: &'a mut F,
}

impl<C: ConnectionTrait, F: FnMut(&UnitFigure)> Rollup<'_, C, F> {
    /// Recomputes a unit's direct figure from the stored observations: the last published.
    async fn refresh(&mut self, key: &FigureKey) -> Result<(), StoreError> {
        let last = self.work.last_direct(self.db, key).await?;
        self.place(key, last).await
    }

    /// Sets a unit's direct figure and moves its ancestors' sums by the difference, along
    /// the links of the period's end date: into every parent, each ancestor once.
    async fn place(&mut self, key: &FigureKey, direct: Option<Direct>) -> Result<(), StoreError> {
        let mut row = self.work.figure(self.db, key).await?;
        let before = row.effective();
        row.direct = direct;
        let after = row.effective();
        self.keep(row);

        let date = key.period.end();
        let tree = self.catalog.tree();
        // (unit, its contribution before, after): the units whose change moves their parents.
        let mut moved = vec![(key.org_unit.clone(), before.contribution(), after.contribution())];
        while let Some((unit, old, new)) = moved.pop() {
            if old == new {
                continue;
            }
            for parent in tree.parents_at(&unit, date) {
                let mut p = self.work.figure(self.db, &key.for_unit(parent.clone())).await?;
                let p_before = p.effective();
                p.sums = p.sums.moved(old, new);
                let p_after = p.effective();
                self.keep(p);
                moved.push((parent.clone(), p_before.contribution(), p_after.contribution()));
            }
        }
        Ok(())
    }

    /// Records a changed figure: its next version, written at flush and announced.
    fn keep(&mut self, mut f: UnitFigure) {
        f.touch(self.now);
        (self.changed)(&f);
        self.work.changed(f);
    }
}
