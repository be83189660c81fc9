//! Partitioned aggregation: with `aggregation.partitioned`, every indicator has its own
//! durable consumer (`aggregation-<indicator>`, filtering `<prefix>.valid.<indicator>`), and
//! each of `aggregation.instances` instances reads the consumers of the indicators it owns.
//! A figure belongs to one indicator, so no two instances ever write the same figure, and
//! adding instances adds throughput instead of conflicts. Ownership is static (the same
//! catalog and instance count on every instance): an instance that is down holds its
//! indicators back until it is back, and nothing else.
//!
//! Must not decide anything about applying observations: only who reads which consumer.

use tiendo_bus::names::consumer;
use tiendo_bus::Names;
use tiendo_domain::Catalog;
use tiendo_settings::AggregationSettings;

use crate::NAME;

/// One of the service's consumers: its durable name, its filter subject (none: the whole
/// stream), and whether this instance reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub consumer: String,
    pub filter: Option<String>,
    pub owned: bool,
}

/// Every consumer the service has under `settings` (so that any instance can create them all
/// when switching modes), each marked with whether this instance reads it.
pub fn shares(names: &Names, catalog: &Catalog, settings: &AggregationSettings) -> anyhow::Result<Vec<Share>> {
    if !settings.partitioned {
        return Ok(vec![Share { consumer: NAME.to_owned(), filter: None, owned: true }]);
    }
    let mut indicators: Vec<String> = catalog.indicators().map(|i| i.id.to_string()).collect();
    indicators.sort();
    let shares: Vec<Share> = indicators
        .iter()
        .enumerate()
        .map(|(k, indicator)| Share {
            consumer: consumer::partition(NAME, indicator),
            filter: Some(names.valid(indicator)),
            owned: owner(k, settings.instances) == settings.instance,
        })
        .collect();
    anyhow::ensure!(
        shares.iter().any(|s| s.owned),
        "aggregation.instance {} of {} owns no indicator: the catalog has {}, so at most {} instances have work",
        settings.instance,
        settings.instances,
        indicators.len(),
        indicators.len()
    );
    Ok(shares)
}

/// The instance (1-based) that owns the `k`th indicator in id order: round robin, so the
/// instances' shares differ by one indicator at most.
pub fn owner(k: usize, instances: u32) -> u32 {
    (k % instances.max(1) as usize) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(partitioned: bool, instances: u32, instance: u32) -> AggregationSettings {
        AggregationSettings { partitioned, instances, instance }
    }

    #[test]
    fn unpartitioned_is_one_shared_consumer_of_the_whole_stream() {
        let s = shares(&Names::new("t"), &Catalog::built_in(), &settings(false, 1, 1)).unwrap();
        assert_eq!(s, vec![Share { consumer: "aggregation".to_owned(), filter: None, owned: true }]);
    }

    #[test]
    fn partitioned_instances_own_every_indicator_once_and_about_equally() {
        let (names, catalog) = (Names::new("t"), Catalog::built_in());
        let count = catalog.indicators().count();
        for instances in 1..=4u32 {
            let all: Vec<Vec<Share>> =
                (1..=instances).map(|i| shares(&names, &catalog, &settings(true, instances, i)).unwrap()).collect();
            for s in &all {
                assert_eq!(s.len(), count, "every instance knows every consumer");
                assert_eq!(
                    s.iter().map(|x| &x.consumer).collect::<Vec<_>>(),
                    all[0].iter().map(|x| &x.consumer).collect::<Vec<_>>()
                );
            }
            for k in 0..count {
                let owners = all.iter().filter(|s| s[k].owned).count();
                assert_eq!(owners, 1, "indicator {k} with {instances} instances");
            }
            let sizes: Vec<usize> = all.iter().map(|s| s.iter().filter(|x| x.owned).count()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        }
        let one = shares(&names, &catalog, &settings(true, 1, 1)).unwrap();
        let smartphones = one.iter().find(|s| s.consumer == "aggregation-smartphone_adults").unwrap();
        assert_eq!(smartphones.filter.as_deref(), Some("t.valid.smartphone_adults"));
    }

    #[test]
    fn an_instance_beyond_the_indicators_is_refused_at_start() {
        let catalog = Catalog::built_in();
        let count = catalog.indicators().count() as u32;
        let error = shares(&Names::new("t"), &catalog, &settings(true, count + 1, count + 1)).unwrap_err();
        assert!(error.to_string().contains("owns no indicator"), "{error}");
    }
}
