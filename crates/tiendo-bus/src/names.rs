//! Every subject, stream and consumer name, in one place. A wire contract: README.md
//! ("Subjects") documents them, and nothing else in tiendo spells one out.

/// The streams tiendo keeps. Each captures one subject family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// What departments publish: `<p>.ingest.<department>`.
    Ingest,
    /// One decoded observation each, stamped by ingest: `<p>.received.<department>`.
    Received,
    /// Observations that passed validation: `<p>.valid.<indicator>`.
    Valid,
    /// Rejections, to the department: `<p>.rejected.<department>`.
    Rejected,
    /// Changed figures: `<p>.aggregates.<indicator>.<org_unit>`.
    Aggregates,
    /// Alerts firing and resolving: `<p>.alerts.<indicator>.<org_unit>`.
    Alerts,
    /// Messages a service gave up on: `<p>.deadletter.<service>`.
    DeadLetter,
}

impl StreamKind {
    pub const ALL: [StreamKind; 7] = [
        StreamKind::Ingest,
        StreamKind::Received,
        StreamKind::Valid,
        StreamKind::Rejected,
        StreamKind::Aggregates,
        StreamKind::Alerts,
        StreamKind::DeadLetter,
    ];

    /// The subject token after the prefix.
    pub fn token(self) -> &'static str {
        match self {
            StreamKind::Ingest => "ingest",
            StreamKind::Received => "received",
            StreamKind::Valid => "valid",
            StreamKind::Rejected => "rejected",
            StreamKind::Aggregates => "aggregates",
            StreamKind::Alerts => "alerts",
            StreamKind::DeadLetter => "deadletter",
        }
    }
}

/// Names under one prefix.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// `prefix` has been checked by the settings loader: letters, digits, `_`, `-`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stream name, e.g. `TIENDO_INGEST`.
    pub fn stream(&self, kind: StreamKind) -> String {
        format!("{}_{}", self.prefix, kind.token()).to_uppercase().replace('-', "_")
    }

    /// Every subject of a stream, e.g. `tiendo.ingest.>`.
    pub fn stream_subjects(&self, kind: StreamKind) -> String {
        format!("{}.{}.>", self.prefix, kind.token())
    }

    pub fn ingest(&self, department: &str) -> String {
        format!("{}.ingest.{department}", self.prefix)
    }

    pub fn received(&self, department: &str) -> String {
        format!("{}.received.{department}", self.prefix)
    }

    pub fn valid(&self, indicator: &str) -> String {
        format!("{}.valid.{indicator}", self.prefix)
    }

    pub fn rejected(&self, department: &str) -> String {
        format!("{}.rejected.{department}", self.prefix)
    }

    pub fn aggregates(&self, indicator: &str, org_unit: &str) -> String {
        format!("{}.aggregates.{indicator}.{org_unit}", self.prefix)
    }

    pub fn alerts(&self, indicator: &str, org_unit: &str) -> String {
        format!("{}.alerts.{indicator}.{org_unit}", self.prefix)
    }

    pub fn dead_letter(&self, service: &str) -> String {
        format!("{}.deadletter.{service}", self.prefix)
    }

    /// The department in `<p>.ingest.<department>`, if the subject has that shape.
    pub fn department_of_ingest<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix(".ingest.")?;
        (!rest.is_empty() && !rest.contains('.')).then_some(rest)
    }

    /// The department in `<p>.received.<department>`.
    pub fn department_of_received<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix(".received.")?;
        (!rest.is_empty() && !rest.contains('.')).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_live_under_the_prefix() {
        let n = Names::new("t-1");
        assert_eq!(n.stream(StreamKind::Ingest), "T_1_INGEST");
        assert_eq!(n.stream_subjects(StreamKind::Aggregates), "t-1.aggregates.>");
        assert_eq!(n.ingest("dic"), "t-1.ingest.dic");
        assert_eq!(n.alerts("smartphone_adults", "89"), "t-1.alerts.smartphone_adults.89");
        assert_eq!(n.department_of_ingest("t-1.ingest.dic"), Some("dic"));
        assert_eq!(n.department_of_ingest("t-1.ingest.dic.x"), None);
        assert_eq!(n.department_of_ingest("t-2.ingest.dic"), None);
    }
}
