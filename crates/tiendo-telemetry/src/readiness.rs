//! Readiness: named checks, each a flag a service sets once its setup is done (streams,
//! consumers, migrations) or a live probe (the NATS connection). `/readyz` is 200 only when
//! every check passes, and its body names the ones that fail.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Probe = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Default)]
pub struct Readiness {
    checks: Mutex<BTreeMap<String, Probe>>,
}

impl Readiness {
    /// Adds or replaces a live check.
    pub fn probe(&self, name: impl Into<String>, probe: impl Fn() -> bool + Send + Sync + 'static) {
        self.checks.lock().unwrap_or_else(|e| e.into_inner()).insert(name.into(), Arc::new(probe));
    }

    /// Adds or replaces a fixed check.
    pub fn set(&self, name: impl Into<String>, ready: bool) {
        self.probe(name, move || ready);
    }

    /// Each check and whether it passes.
    pub fn report(&self) -> Vec<(String, bool)> {
        let checks = self.checks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        checks.into_iter().map(|(name, probe)| (name, probe())).collect()
    }

    /// True when there is at least one check and all pass.
    pub fn is_ready(&self) -> bool {
        Self::passes(&self.report())
    }

    /// Whether a [`Readiness::report`] says ready: at least one check, and all pass. `/readyz`
    /// decides its status from the report its body shows, so the two cannot disagree when a
    /// probe changes between two readings.
    pub fn passes(report: &[(String, bool)]) -> bool {
        !report.is_empty() && report.iter().all(|(_, ok)| *ok)
    }
}
