//! Reporting periods: a year, a quarter or a month. An observation is dated on the last day of
//! its period.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// How often an indicator is reported; also the kind of period its observations must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Yearly,
    Quarterly,
    Monthly,
}

impl Frequency {
    /// The word used in the catalog and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Yearly => "yearly",
            Frequency::Quarterly => "quarterly",
            Frequency::Monthly => "monthly",
        }
    }

    /// What a period of this kind looks like, for rejection details.
    pub fn example(self) -> &'static str {
        match self {
            Frequency::Yearly => "YYYY, e.g. 2024",
            Frequency::Quarterly => "YYYY-Qn, e.g. 2024-Q2",
            Frequency::Monthly => "YYYY-MM, e.g. 2024-06",
        }
    }

    /// Nominal length in days, for staleness rules.
    pub fn days(self) -> u32 {
        match self {
            Frequency::Yearly => 366,
            Frequency::Quarterly => 92,
            Frequency::Monthly => 31,
        }
    }
}

/// A reporting period. Ordered by start date, then by length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Year(i32),
    Quarter(i32, u8),
    Month(i32, u8),
}

/// Why a period string was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period `{0}` is not YYYY, YYYY-Qn or YYYY-MM with a year from 2000 to 2100")]
pub struct PeriodError(String);

impl Period {
    /// Earliest and latest years accepted.
    pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

    /// The kind of period.
    pub fn frequency(self) -> Frequency {
        match self {
            Period::Year(_) => Frequency::Yearly,
            Period::Quarter(..) => Frequency::Quarterly,
            Period::Month(..) => Frequency::Monthly,
        }
    }

    /// First day of the period.
    pub fn start(self) -> NaiveDate {
        let (y, m) = match self {
            Period::Year(y) => (y, 1),
            Period::Quarter(y, q) => (y, u32::from(q) * 3 - 2),
            Period::Month(y, m) => (y, u32::from(m)),
        };
        NaiveDate::from_ymd_opt(y, m, 1).expect("parse() only builds valid periods")
    }

    /// Last day of the period: the date an observation for it describes.
    pub fn end(self) -> NaiveDate {
        let (y, last_month) = match self {
            Period::Year(y) => (y, 12),
            Period::Quarter(y, q) => (y, u32::from(q) * 3),
            Period::Month(y, m) => (y, u32::from(m)),
        };
        let first_of_next = if last_month == 12 {
            NaiveDate::from_ymd_opt(y + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(y, last_month + 1, 1)
        };
        first_of_next.and_then(|d| d.pred_opt()).expect("parse() only builds valid periods")
    }

    /// The period of kind `frequency` that holds `date`.
    pub fn containing(date: NaiveDate, frequency: Frequency) -> Period {
        let (y, m) = (date.year(), date.month() as u8);
        match frequency {
            Frequency::Yearly => Period::Year(y),
            Frequency::Quarterly => Period::Quarter(y, (m - 1) / 3 + 1),
            Frequency::Monthly => Period::Month(y, m),
        }
    }

    /// The period of the same kind just before this one.
    pub fn previous(self) -> Period {
        match self {
            Period::Year(y) => Period::Year(y - 1),
            Period::Quarter(y, 1) => Period::Quarter(y - 1, 4),
            Period::Quarter(y, q) => Period::Quarter(y, q - 1),
            Period::Month(y, 1) => Period::Month(y - 1, 12),
            Period::Month(y, m) => Period::Month(y, m - 1),
        }
    }

    /// True when the period has not begun on `today`.
    pub fn is_after(self, today: NaiveDate) -> bool {
        self.start() > today
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PeriodError(s.chars().take(32).collect());
        let bytes = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| {
            bytes[r.clone()].iter().all(u8::is_ascii_digit).then(|| s[r].parse::<i32>().ok()).flatten()
        };
        if !s.is_ascii() || bytes.len() < 4 {
            return Err(err());
        }
        let year = digits(0..4).filter(|y| Self::YEARS.contains(y)).ok_or_else(err)?;
        match bytes.len() {
            4 => Ok(Period::Year(year)),
            7 if bytes[4] == b'-' && bytes[5] == b'Q' => match bytes[6] {
                b'1'..=b'4' => Ok(Period::Quarter(year, bytes[6] - b'0')),
                _ => Err(err()),
            },
            7 if bytes[4] == b'-' => {
                let month = digits(5..7).filter(|m| (1..=12).contains(m)).ok_or_else(err)?;
                Ok(Period::Month(year, month as u8))
            }
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
        }
    }
}

/// Day count between two dates (b − a), as the trajectory formula wants: whole days.
pub fn days_between(a: NaiveDate, b: NaiveDate) -> i64 {
    i64::from(b.num_days_from_ce()) - i64::from(a.num_days_from_ce())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn periods_parse_and_print_round_trip() {
        for s in ["2024", "2024-Q1", "2024-Q4", "2024-01", "2024-12"] {
            assert_eq!(s.parse::<Period>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn malformed_periods_are_refused() {
        for s in [
            "",
            "24",
            "2024-13",
            "2024-00",
            "2024-Q5",
            "2024-Q0",
            "2024-1",
            "1999",
            "2101",
            "2024-06-01",
            "２０２４",
            "2024/06",
        ] {
            assert!(s.parse::<Period>().is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn an_observation_is_dated_on_the_last_day_of_its_period() {
        assert_eq!("2024".parse::<Period>().unwrap().end(), d("2024-12-31"));
        assert_eq!("2024-Q1".parse::<Period>().unwrap().end(), d("2024-03-31"));
        assert_eq!("2024-02".parse::<Period>().unwrap().end(), d("2024-02-29"));
        assert_eq!("2023-02".parse::<Period>().unwrap().end(), d("2023-02-28"));
        assert_eq!("2024-12".parse::<Period>().unwrap().end(), d("2024-12-31"));
    }

    #[test]
    fn the_period_holding_a_date_is_of_the_frequency_asked() {
        let at = d("2025-12-31");
        assert_eq!(Period::containing(at, Frequency::Monthly).to_string(), "2025-12");
        assert_eq!(Period::containing(at, Frequency::Quarterly).to_string(), "2025-Q4");
        assert_eq!(Period::containing(at, Frequency::Yearly).to_string(), "2025");
        assert_eq!(Period::containing(d("2024-04-01"), Frequency::Quarterly).to_string(), "2024-Q2");
    }

    #[test]
    fn a_period_is_in_the_future_only_before_it_starts() {
        let p: Period = "2026-12".parse().unwrap();
        assert!(p.is_after(d("2026-11-27")));
        assert!(!p.is_after(d("2026-12-01")));
    }
}
