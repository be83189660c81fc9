//! Who has reported: the reports a period expects (the units of the indicator's reporting
//! level on the period's end date), which came in and when, which were on time, and the
//! reporting rates, as DHIS2 defines them (received or on time ÷ expected, capped at 100%).
//!
//! A report is *received* from a unit when the unit reported the figure itself, or when its
//! figure is complete from below: every child it has on the period's end date has a received
//! report (then its receipt time is the latest of theirs). So a district whose communes all
//! reported has reported, whatever level departments happen to report at.
//!
//! Pure: receipts (first and last receipt of each unit's own reports) come in, the catalog
//! says what is expected, the caller says what time it is.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::ids::OrgUnitCode;
use crate::period::Period;
use crate::tree::{Level, Tree, Validity};

/// Days after a period's end by which its reports are due, when the catalog says nothing
/// (DHIS2's default).
pub const DEFAULT_DUE_DAYS: u32 = 15;

/// When and by whom an indicator is reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// The level whose units report it directly, by date (it changed with the 2025 reform).
    pub levels: Vec<(Level, Validity)>,
    /// Reports are due this many days after the period's last day.
    pub due_days: u32,
}

impl Calendar {
    /// The reporting level on `date`.
    pub fn level_on(&self, date: NaiveDate) -> Option<Level> {
        self.levels.iter().find(|(_, v)| v.contains(date)).map(|(l, _)| *l)
    }
}

/// One entry of an indicator's `reported_by` in the catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLevel {
    pub level: Level,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

/// The province's clock: "today" and due dates are the province's, not UTC's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    pub time_zone: Tz,
}

impl Clock {
    /// The province's date at `now`.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.time_zone).date_naive()
    }

    /// The last day `period`'s reports are on time: its end plus `due_days`.
    pub fn due_date(&self, period: Period, due_days: u32) -> NaiveDate {
        period.end() + Days::new(u64::from(due_days))
    }

    /// The moment `period`'s reports stop being on time: the end of its last day plus
    /// `due_days`, in the province's time zone (the next midnight there).
    pub fn due(&self, period: Period, due_days: u32) -> DateTime<Utc> {
        let day_after = self.due_date(period, due_days) + Days::new(1);
        let midnight = day_after.and_time(NaiveTime::MIN);
        match self.time_zone.from_local_datetime(&midnight).earliest() {
            Some(t) => t.with_timezone(&Utc),
            // Midnight skipped by a clock change: the first moment of that day is later.
            None => Utc.from_utc_datetime(&midnight),
        }
    }

    /// The latest period of `frequency` whose reports were due at `now`.
    pub fn latest_due(&self, frequency: crate::period::Frequency, due_days: u32, now: DateTime<Utc>) -> Period {
        let mut p = Period::containing(self.today(now), frequency);
        while self.due(p, due_days) > now {
            p = p.previous();
        }
        p
    }
}

/// The first and last receipt of a unit's own reports of one indicator and period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// Where an expected report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportStatus {
    /// Received no later than the due moment.
    OnTime,
    /// Received after the due moment.
    Late,
    /// Not received, and the due moment has passed.
    Missing,
    /// Not received yet, and not due yet.
    Pending,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::OnTime => "on_time",
            ReportStatus::Late => "late",
            ReportStatus::Missing => "missing",
            ReportStatus::Pending => "pending",
        }
    }

    pub fn received(self) -> bool {
        matches!(self, ReportStatus::OnTime | ReportStatus::Late)
    }
}

/// One expected report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub unit: OrgUnitCode,
    /// When it came in: the unit's own first and last receipt, or when its figure became
    /// complete from below.
    pub received: Option<Receipt>,
    pub status: ReportStatus,
}

/// Expected, received and on-time counts, and the rates DHIS2 reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rates {
    pub expected: u64,
    pub received: u64,
    pub on_time: u64,
}

impl Rates {
    /// Received ÷ expected, capped at 1; 1 when nothing is expected.
    pub fn reporting_rate(&self) -> f64 {
        ratio(self.received, self.expected)
    }

    /// On time ÷ expected, capped at 1; 1 when nothing is expected.
    pub fn on_time_rate(&self) -> f64 {
        ratio(self.on_time, self.expected)
    }

    fn add(&mut self, r: &Report) {
        self.expected += 1;
        self.received += u64::from(r.status.received());
        self.on_time += u64::from(r.status == ReportStatus::OnTime);
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        1.0
    } else {
        (n as f64 / d as f64).min(1.0)
    }
}

/// The reports of one indicator and period, and how each stands.
#[derive(Debug, Clone)]
pub struct Reports {
    pub period: Period,
    pub due: DateTime<Utc>,
    pub reports: Vec<Report>,
    /// Receipt of every unit with a received report, expected or not (roll-ups included).
    received: HashMap<OrgUnitCode, Receipt>,
}

impl Reports {
    /// The reports `period` expects of `calendar`'s level, given each unit's own `receipts`,
    /// as they stand at `now`.
    pub fn at(
        tree: &Tree,
        calendar: &Calendar,
        clock: &Clock,
        period: Period,
        receipts: &HashMap<OrgUnitCode, Receipt>,
        now: DateTime<Utc>,
    ) -> Reports {
        let date = period.end();
        let due = clock.due(period, calendar.due_days);
        let mut received: HashMap<OrgUnitCode, Receipt> = HashMap::new();
        let expected: Vec<OrgUnitCode> = match calendar.level_on(date) {
            Some(level) => {
                let mut units: Vec<OrgUnitCode> =
                    tree.all().filter(|u| u.level == level && u.valid.contains(date)).map(|u| u.code.clone()).collect();
                units.sort();
                units
            }
            None => vec![],
        };
        let reports = expected
            .into_iter()
            .map(|unit| {
                let got = receipt_of(tree, &unit, date, receipts, &mut received);
                let status = match got {
                    Some(r) if r.first <= due => ReportStatus::OnTime,
                    Some(_) => ReportStatus::Late,
                    None if now >= due => ReportStatus::Missing,
                    None => ReportStatus::Pending,
                };
                Report { unit, received: got, status }
            })
            .collect();
        Reports { period, due, reports, received }
    }

    /// The counts over every expected report.
    pub fn rates(&self) -> Rates {
        let mut rates = Rates::default();
        self.reports.iter().for_each(|r| rates.add(r));
        rates
    }

    /// The counts over the expected reports of `unit` and the units under it on the period's
    /// end date (the rates rolled up to an ancestor).
    pub fn rates_within(&self, tree: &Tree, unit: &OrgUnitCode) -> Rates {
        let date = self.period.end();
        let mut rates = Rates::default();
        self.reports.iter().filter(|r| tree.is_within(&r.unit, unit, date)).for_each(|r| rates.add(r));
        rates
    }

    /// The expected reports still missing.
    pub fn missing(&self) -> impl Iterator<Item = &Report> {
        self.reports.iter().filter(|r| r.status == ReportStatus::Missing)
    }

    /// How much of what `unit`'s figure depends on is in: 1 when the unit reported the figure
    /// itself or nothing is expected of it or under it, else received ÷ expected among the
    /// expected reports within it.
    pub fn coverage(&self, tree: &Tree, unit: &OrgUnitCode, direct: bool) -> f64 {
        if direct {
            return 1.0;
        }
        self.rates_within(tree, unit).reporting_rate()
    }

    /// True when the unit's figure counts as received (its own report, or complete from below).
    pub fn has_received(&self, unit: &OrgUnitCode) -> bool {
        self.received.contains_key(unit)
    }
}

/// A unit's receipt: its own, or, when every child it has on `date` has one, the latest of
/// theirs. Memoised in `received`.
fn receipt_of(
    tree: &Tree,
    unit: &OrgUnitCode,
    date: NaiveDate,
    own: &HashMap<OrgUnitCode, Receipt>,
    received: &mut HashMap<OrgUnitCode, Receipt>,
) -> Option<Receipt> {
    if let Some(r) = received.get(unit) {
        return Some(*r);
    }
    let found = match own.get(unit) {
        Some(r) => Some(*r),
        None => {
            let children = tree.children_at(unit, date);
            if children.is_empty() {
                None
            } else {
                let mut latest: Option<Receipt> = None;
                for child in children {
                    let r = receipt_of(tree, child, date, own, received)?;
                    latest = Some(match latest {
                        None => r,
                        Some(l) => Receipt { first: l.first.max(r.first), last: l.last.max(r.last) },
                    });
                }
                latest
            }
        }
    };
    if let Some(r) = found {
        received.insert(unit.clone(), r);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::period::Frequency;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn clock() -> Clock {
        Clock { time_zone: "Asia/Ho_Chi_Minh".parse().unwrap() }
    }

    fn code(s: &str) -> OrgUnitCode {
        OrgUnitCode::parse(s).unwrap()
    }

    #[test]
    fn reports_are_due_at_the_end_of_the_due_day_in_the_provinces_time_zone() {
        let june: Period = "2024-06".parse().unwrap();
        // 30 June + 15 days = 15 July, which ends at midnight in Hà Nội: 16 July 00:00 +07:00.
        assert_eq!(clock().due(june, 15), t("2024-07-15T17:00:00Z"));
        assert_eq!(clock().due(june, 0), t("2024-06-30T17:00:00Z"));
        // 16:59 UTC on 15 July is still the 15th there; 17:00 UTC is already the 16th.
        assert_eq!(clock().today(t("2024-07-15T16:59:59Z")).to_string(), "2024-07-15");
        assert_eq!(clock().today(t("2024-07-15T17:00:00Z")).to_string(), "2024-07-16");
        assert_eq!(clock().latest_due(Frequency::Monthly, 15, t("2024-07-15T16:59:59Z")).to_string(), "2024-05");
        assert_eq!(clock().latest_due(Frequency::Monthly, 15, t("2024-07-15T17:00:00Z")).to_string(), "2024-06");
        assert_eq!(clock().latest_due(Frequency::Yearly, 15, t("2026-11-30T00:00:00Z")).to_string(), "2025");
    }

    fn calendar(level: Level) -> Calendar {
        Calendar { levels: vec![(level, Validity::default())], due_days: 15 }
    }

    #[test]
    fn a_district_reports_itself_or_through_all_of_its_communes() {
        let c = Catalog::built_in();
        let june: Period = "2024-06".parse().unwrap();
        let early = Receipt { first: t("2024-07-01T00:00:00Z"), last: t("2024-07-02T00:00:00Z") };
        let late = Receipt { first: t("2024-07-20T00:00:00Z"), last: t("2024-07-20T00:00:00Z") };
        let mut own: HashMap<OrgUnitCode, Receipt> = HashMap::new();
        own.insert(code("883"), early);
        // Every commune of 884 reported, one of them late; only one commune of 886 did.
        for commune in c.tree().children_at(&code("884"), june.end()) {
            own.insert(commune.clone(), early);
        }
        own.insert(c.tree().children_at(&code("884"), june.end())[0].clone(), late);
        own.insert(c.tree().children_at(&code("886"), june.end())[0].clone(), early);
        let now = t("2024-08-01T00:00:00Z");
        let r = Reports::at(c.tree(), &calendar(Level::District), &clock(), june, &own, now);
        assert_eq!(r.reports.len(), 11);
        let status = |u: &str| r.reports.iter().find(|x| x.unit == code(u)).unwrap().status;
        assert_eq!(status("883"), ReportStatus::OnTime);
        assert_eq!(status("884"), ReportStatus::Late, "complete only when its last commune came in");
        assert_eq!(status("886"), ReportStatus::Missing, "one commune of fourteen is not the district's report");
        assert_eq!(r.rates(), Rates { expected: 11, received: 2, on_time: 1 });
        assert!((r.rates().reporting_rate() - 2.0 / 11.0).abs() < 1e-12);
        assert_eq!(r.rates_within(c.tree(), &code("884")), Rates { expected: 1, received: 1, on_time: 0 });
        assert!((r.coverage(c.tree(), &code("89"), false) - 2.0 / 11.0).abs() < 1e-12);
        assert_eq!(r.coverage(c.tree(), &code("89"), true), 1.0, "a figure reported for the unit itself");
        assert_eq!(r.missing().count(), 9);
        let before = Reports::at(c.tree(), &calendar(Level::District), &clock(), june, &own, t("2024-07-10T00:00:00Z"));
        assert_eq!(before.missing().count(), 0, "not due yet: pending, not missing");
    }

    #[test]
    fn rates_are_capped_and_nothing_expected_is_complete() {
        let r = Rates { expected: 2, received: 3, on_time: 3 };
        assert_eq!((r.reporting_rate(), r.on_time_rate()), (1.0, 1.0));
        assert_eq!(Rates::default().reporting_rate(), 1.0);
    }
}

/// A notice to a department that a period's reports are overdue: what `tiendo.overdue.<department>` carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Overdue {
    pub department: crate::ids::DepartmentCode,
    pub indicator: crate::ids::IndicatorId,
    pub period: Period,
    /// The last day the reports were on time.
    pub due: NaiveDate,
    pub expected: u64,
    pub received: u64,
    /// The units whose reports are missing: code and name.
    pub missing: Vec<(OrgUnitCode, String)>,
}
