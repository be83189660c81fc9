//! Applying a batch of messages in one transaction, without letting one bad message hold
//! back the others.

use std::future::Future;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};
use tiendo_bus::Decision;

/// Delay before a message whose transaction failed is delivered again (doubled each time).
pub const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Delay before a batch held during a database outage is delivered again.
pub const OUTAGE_DELAY: Duration = Duration::from_secs(2);

/// Applies `items` (each with its index in the batch) through `apply`, which runs one
/// transaction over the slice it is given and returns one outcome per item. All at once
/// first; if that transaction fails, one at a time, so only the items that fail alone are
/// retried (their `decisions` become [`Decision::Retry`]). When the database does not answer
/// at all, nothing is the items' fault: they are all held ([`Decision::Hold`]) until it is
/// back, and never dead-lettered. `done` sees every committed outcome. Returns how many
/// transactions failed.
pub async fn apply_batch<'a, T, O, F, Fut>(
    db: &DatabaseConnection,
    items: &'a [(usize, T)],
    decisions: &mut [Decision],
    apply: F,
    mut done: impl FnMut(&O),
) -> u64
where
    F: Fn(Vec<&'a T>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, DbErr>>,
{
    let all: Vec<&T> = items.iter().map(|(_, t)| t).collect();
    let mut failed = 0u64;
    match apply(all).await {
        Ok(outcomes) => outcomes.iter().for_each(&mut done),
        Err(e) if db.ping().await.is_err() => {
            failed += 1;
            tracing::warn!(error = %e, "the database does not answer; holding the batch until it does");
            items.iter().for_each(|(i, _)| decisions[*i] = Decision::Hold(OUTAGE_DELAY));
        }
        Err(e) if items.len() > 1 => {
            failed += 1;
            tracing::warn!(error = %e, "batch transaction failed; applying one by one");
            for (i, t) in items {
                match apply(vec![t]).await {
                    Ok(outcomes) => outcomes.iter().for_each(&mut done),
                    Err(e) => {
                        failed += 1;
                        tracing::warn!(error = %e, "a message's transaction failed; will retry");
                        decisions[*i] = Decision::Retry(RETRY_DELAY);
                    }
                }
            }
        }
        Err(e) => {
            failed += 1;
            tracing::warn!(error = %e, "a message's transaction failed; will retry");
            items.iter().for_each(|(i, _)| decisions[*i] = Decision::Retry(RETRY_DELAY));
        }
    }
    failed
}
