//! Each department's latest rejections, as they pass on the bus. Rejections are kept in no
//! table (the stream is their record), so the web service reads the stream's recent end when
//! it starts and keeps up from the live subscription: a bounded list per known department.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tiendo_domain::{Catalog, DepartmentCode, RejectReason};
use tiendo_proto::v1::Rejection;

/// Rejections kept per department.
pub const KEPT: usize = 50;

/// One rejection as the department page shows it. Everything but the reason is the
/// department's own text or derived from it: the pages escape it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub event_id: String,
    /// `None` for a reason this version does not know (a newer sender).
    pub reason: Option<RejectReason>,
    pub reason_code: String,
    pub detail: String,
    pub at: Option<DateTime<Utc>>,
}

/// The latest rejections of each department of the catalog.
#[derive(Default)]
pub struct Rejections {
    by_department: Mutex<HashMap<DepartmentCode, Latest>>,
}

/// (event id, reason, detail, at) as sent: the stream's recent end and the live subscription
/// overlap for a moment at start, and a rejection seen twice is kept once.
type Identity = (String, String, String, String);

#[derive(Default)]
struct Latest {
    items: VecDeque<(Identity, Kept)>,
    seen: HashSet<Identity>,
}

impl Rejections {
    /// Keeps `r` if it is for a department of `catalog` and not kept already; true if kept.
    pub fn record(&self, catalog: &Catalog, r: &Rejection) -> bool {
        let Ok(code) = DepartmentCode::parse(&r.department) else { return false };
        if catalog.department(&code).is_none() {
            return false;
        }
        let identity = (r.event_id.clone(), r.reason.clone(), r.detail.clone(), r.at.clone());
        let mut map = self.by_department.lock().unwrap_or_else(|e| e.into_inner());
        let latest = map.entry(code).or_default();
        if !latest.seen.insert(identity.clone()) {
            return false;
        }
        let kept = Kept {
            event_id: r.event_id.clone(),
            reason: RejectReason::ALL.into_iter().find(|x| x.as_str() == r.reason),
            reason_code: r.reason.clone(),
            detail: r.detail.clone(),
            at: DateTime::parse_from_rfc3339(&r.at).ok().map(|t| t.with_timezone(&Utc)),
        };
        latest.items.push_front((identity, kept));
        while latest.items.len() > KEPT {
            if let Some((old, _)) = latest.items.pop_back() {
                latest.seen.remove(&old);
            }
        }
        true
    }

    /// A department's latest rejections, newest first.
    pub fn of(&self, department: &DepartmentCode) -> Vec<Kept> {
        let map = self.by_department.lock().unwrap_or_else(|e| e.into_inner());
        map.get(department).map(|l| l.items.iter().map(|(_, k)| k.clone()).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(department: &str, event_id: &str, at: &str) -> Rejection {
        Rejection {
            event_id: event_id.into(),
            department: department.into(),
            reason: "out_of_range".into(),
            detail: "numerator above denominator".into(),
            at: at.into(),
        }
    }

    #[test]
    fn each_department_keeps_its_latest_rejections_once_each() {
        let catalog = Catalog::built_in();
        let kept = Rejections::default();
        let dic = DepartmentCode::parse("dic").unwrap();
        assert!(kept.record(&catalog, &rejection("dic", "e1", "2026-11-30T01:00:00+00:00")));
        assert!(!kept.record(&catalog, &rejection("dic", "e1", "2026-11-30T01:00:00+00:00")), "seen twice");
        assert!(!kept.record(&catalog, &rejection("nobody", "e1", "2026-11-30T01:00:00+00:00")), "no such department");
        for i in 0..KEPT + 5 {
            kept.record(&catalog, &rejection("dic", &format!("n{i}"), "2026-11-30T02:00:00+00:00"));
        }
        let latest = kept.of(&dic);
        assert_eq!(latest.len(), KEPT);
        assert_eq!(latest[0].event_id, format!("n{}", KEPT + 4), "newest first");
        assert_eq!(latest[0].reason, Some(RejectReason::OutOfRange));
        // The oldest fell out, and may be kept again.
        assert!(kept.record(&catalog, &rejection("dic", "e1", "2026-11-30T01:00:00+00:00")));
    }
}
