//! Identifiers that have been checked once, at the edge, and need no checking after.

use std::fmt;
use std::sync::Arc;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(String);

/// A token that is safe inside a NATS subject and a metric label: `[a-z0-9_]`, 1 to 64 chars.
fn check_token(kind: &str, s: &str) -> Result<(), IdError> {
    if s.is_empty() || s.len() > 64 {
        return Err(IdError(format!("{kind} must be 1 to 64 characters, got {}", s.len())));
    }
    if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(IdError(format!("{kind} `{s}` may contain only lowercase letters, digits and `_`")));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        ///
        /// Shared, not copied: a clone is a reference count, not an allocation. Aggregation
        /// and alerting clone keys made of these several times per observation
        /// (docs/performance.md, issue 15, change 23).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Checks `s` and wraps it.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_token($kind, s)?;
                Ok(Self(Arc::from(s)))
            }

            /// The identifier as it appears on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token_id!(
    /// A catalog indicator id, e.g. `smartphone_adults`.
    IndicatorId,
    "indicator"
);
token_id!(
    /// An organisation unit's statistics-office code, e.g. `89` or `883`.
    OrgUnitCode,
    "org_unit"
);
token_id!(
    /// A department code, e.g. `dic`. Taken from the subject a message arrived on.
    DepartmentCode,
    "department"
);
token_id!(
    /// A plan's id, e.g. `an_giang_2025`.
    PlanId,
    "plan"
);

/// A department's id for one observation: 1 to 128 characters, no control characters.
/// Shared like the tokens above: a clone is a reference count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId(Arc<str>);

impl EventId {
    /// Longest accepted event id, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks `s` and wraps it.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let chars = s.chars().count();
        if chars == 0 {
            return Err(IdError("event_id is required".into()));
        }
        if chars > Self::MAX_CHARS {
            return Err(IdError(format!("event_id must be at most {} characters, got {chars}", Self::MAX_CHARS)));
        }
        if s.chars().any(char::is_control) {
            return Err(IdError("event_id must not contain control characters".into()));
        }
        Ok(Self(Arc::from(s)))
    }

    /// The id as the department sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_accept_lowercase_digits_and_underscore_only() {
        assert!(IndicatorId::parse("smartphone_adults").is_ok());
        assert!(OrgUnitCode::parse("883").is_ok());
        assert!(DepartmentCode::parse("DIC").is_err());
        assert!(IndicatorId::parse("a.b").is_err());
        assert!(IndicatorId::parse("").is_err());
        assert!(IndicatorId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn event_ids_count_characters_not_bytes() {
        assert!(EventId::parse(&"ế".repeat(128)).is_ok());
        assert!(EventId::parse(&"ế".repeat(129)).is_err());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse("a\nb").is_err());
    }
}
