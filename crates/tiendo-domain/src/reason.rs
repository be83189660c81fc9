//! Rejection reason codes. A wire contract: departments match on these strings.

use std::fmt;

/// Why an observation was refused. Each maps to one string on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Not decodable: not JSON or protobuf, wrong JSON types, unknown fields.
    Malformed,
    /// A field is missing or has the wrong shape (event id, period, figure).
    InvalidField,
    /// The indicator is not in the catalog.
    UnknownIndicator,
    /// The organisation unit is not in the catalog's tree, at any date.
    UnknownOrgUnit,
    /// The catalog knows the unit, but not on the period's end date (retired, or not yet formed).
    InactiveOrgUnit,
    /// The department does not own the indicator, or is not a known department.
    Forbidden,
    /// The period has not begun yet.
    FuturePeriod,
    /// A number outside what it can be: negative counts, numerator above denominator, a
    /// percentage outside 0..100, NaN or infinity.
    OutOfRange,
}

impl RejectReason {
    /// Every reason, in documentation order.
    pub const ALL: [RejectReason; 8] = [
        RejectReason::Malformed,
        RejectReason::InvalidField,
        RejectReason::UnknownIndicator,
        RejectReason::UnknownOrgUnit,
        RejectReason::InactiveOrgUnit,
        RejectReason::Forbidden,
        RejectReason::FuturePeriod,
        RejectReason::OutOfRange,
    ];

    /// The code on the wire and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::UnknownIndicator => "unknown_indicator",
            RejectReason::UnknownOrgUnit => "unknown_org_unit",
            RejectReason::InactiveOrgUnit => "inactive_org_unit",
            RejectReason::Forbidden => "forbidden",
            RejectReason::FuturePeriod => "future_period",
            RejectReason::OutOfRange => "out_of_range",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the reason code and what the clerk should fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RejectReason,
    pub detail: String,
}

impl Refusal {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self { reason, detail: detail.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_documented_in_the_readme() {
        let readme = include_str!("../../../README.md");
        for reason in RejectReason::ALL {
            assert!(readme.contains(&format!("| `{reason}` |")), "README's reason table lacks `{reason}`");
        }
    }
}
