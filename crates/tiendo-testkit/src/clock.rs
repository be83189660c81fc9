//! A clock a test or the demo sets by hand, so due dates pass when they are told to.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

/// "Now", as last set. Clones share the time.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(AtomicI64::new(at.timestamp_micros())))
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }

    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_micros(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: TimeDelta) {
        self.set(self.now() + by);
    }

    /// The clock the services take (`tiendo_runtime::Clock`).
    pub fn clock(&self) -> Arc<dyn Fn() -> DateTime<Utc> + Send + Sync> {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}
