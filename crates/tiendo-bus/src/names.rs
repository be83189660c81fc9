//! Every subject, stream, consumer and header name and every message id, in one place. A
//! wire contract: README.md ("Subjects") documents them, and nothing else in tiendo spells
//! one out.

/// The streams tiendo keeps. Each captures one subject family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// What departments publish: `<p>.ingest.<department>`.
    Ingest,
    /// Decoded observations stamped by ingest, a department's batch per message (protobuf
    /// `ReceivedBatch`): `<p>.received.<department>`.
    Received,
    /// Observations that passed validation, an indicator's batch per message (protobuf
    /// `ValidBatch`): `<p>.valid.<indicator>`.
    Valid,
    /// Rejections, to the department: `<p>.rejected.<department>`.
    Rejected,
    /// Changed figures, one per message, for everyone: `<p>.aggregates.<indicator>.<org_unit>`.
    Aggregates,
    /// Changed figures, a transaction's per indicator in one message, for alerting:
    /// `<p>.figures.<indicator>`.
    Figures,
    /// Alerts firing and resolving: `<p>.alerts.<indicator>.<org_unit>`.
    Alerts,
    /// Reports overdue, to the department: `<p>.overdue.<department>`.
    Overdue,
    /// Messages a service gave up on: `<p>.deadletter.<service>`.
    DeadLetter,
}

impl StreamKind {
    pub const ALL: [StreamKind; 9] = [
        StreamKind::Ingest,
        StreamKind::Received,
        StreamKind::Valid,
        StreamKind::Rejected,
        StreamKind::Aggregates,
        StreamKind::Figures,
        StreamKind::Alerts,
        StreamKind::Overdue,
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
            StreamKind::Figures => "figures",
            StreamKind::Alerts => "alerts",
            StreamKind::Overdue => "overdue",
            StreamKind::DeadLetter => "deadletter",
        }
    }
}

/// The services: each one's name is its durable consumer's name, its `service` metric label
/// and the last token of its dead-letter subject.
pub mod service {
    pub const INGEST: &str = "ingest";
    pub const VALIDATION: &str = "validation";
    pub const AGGREGATION: &str = "aggregation";
    pub const ALERTING: &str = "alerting";
}

/// The pipeline's stages in order: the stream each service consumes, and its consumer.
pub const STAGES: [(StreamKind, &str); 4] = [
    (StreamKind::Ingest, service::INGEST),
    (StreamKind::Received, service::VALIDATION),
    (StreamKind::Valid, service::AGGREGATION),
    (StreamKind::Figures, service::ALERTING),
];

/// Durable consumer names beside the services' own (a service's consumer is named after it).
pub mod consumer {
    /// A partitioned service's consumer of one key: aggregation, partitioned, reads each
    /// indicator through its own, e.g. `aggregation-smartphone_adults`.
    pub fn partition(service: &str, key: &str) -> String {
        format!("{service}-{key}")
    }

    /// Whether `name` is one of `service`'s consumers: its own, or one of its partitions'.
    pub fn of_service(service: &str, name: &str) -> bool {
        name.strip_prefix(service).is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    }
}

/// Message headers tiendo reads or writes.
pub mod header {
    /// `application/json` (or absent) or `application/x-protobuf`.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// JetStream drops a second message with the same id within the duplicate window.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// On a dead letter: why the service gave up.
    pub const DEAD_REASON: &str = "Tiendo-Dead-Reason";
    /// On a dead letter: the subject the message was first published to.
    pub const DEAD_SUBJECT: &str = "Tiendo-Dead-Subject";
}

/// Message ids (`Nats-Msg-Id`) of what tiendo publishes. Each derives from what the message
/// is about (stream positions, versions), so a message published again after a crash gets the
/// same id and JetStream drops the copy.
pub mod msg_id {
    /// A rejection ingest sent for row `index` of the department's message at `seq`.
    pub fn ingest_rejection(seq: u64, index: usize) -> String {
        format!("rj:i:{seq}:{index}")
    }

    /// A rejection validation sent for the observation ingest numbered `(seq, index)`.
    pub fn validation_rejection(seq: u64, index: u32) -> String {
        format!("rj:v:{seq}:{index}")
    }

    /// Version `version` of a figure.
    pub fn aggregate(indicator: &str, org_unit: &str, period: &str, version: u64) -> String {
        format!("a:{indicator}:{org_unit}:{period}:{version}")
    }

    /// A batch of figures of one indicator (`<p>.figures.<indicator>`), from the versions it
    /// holds: the same figures at the same versions give the same id.
    pub fn figures<'a>(indicator: &str, figures: impl IntoIterator<Item = (&'a str, &'a str, u64)>) -> String {
        let mut hash = FNV_OFFSET;
        let mut count = 0;
        for (org_unit, period, version) in figures {
            count += 1;
            for b in org_unit.bytes().chain([0]).chain(period.bytes()).chain([0]).chain(version.to_le_bytes()) {
                hash = fnv(hash, b);
            }
        }
        format!("f:{indicator}:{count}:{hash:016x}")
    }

    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

    /// One step of FNV-1a: stable across builds and platforms, unlike `std`'s hashers.
    fn fnv(hash: u64, byte: u8) -> u64 {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }

    /// An alert entering `state` in its `episode`th firing (an alert id is the same for
    /// every firing).
    pub fn alert(alert_id: &str, state: &str, episode: u64) -> String {
        format!("al:{alert_id}:{state}:{episode}")
    }

    /// The notice to `department` that `period`'s reports of `indicator` are overdue.
    pub fn overdue(department: &str, indicator: &str, period: &str) -> String {
        format!("od:{department}:{indicator}:{period}")
    }

    /// The dead letter of `service`'s message at `seq` in its stream.
    pub fn dead_letter(service: &str, seq: u64) -> String {
        format!("dl:{service}:{seq}")
    }

    /// A dead letter sent back to its subject.
    pub fn redrive(seq: u64, dead_at: &str) -> String {
        format!("redrive:{seq}:{dead_at}")
    }

    /// A batch of observations between stages (`kind` `r`: received, `v`: valid), from the
    /// positions it holds: the same positions give the same id. (A batch formed differently
    /// after a crash gets another id; the receiving service's own deduplication covers that.)
    pub fn batch(kind: &str, key: &str, positions: impl IntoIterator<Item = (u64, u32)>) -> String {
        let mut hash = FNV_OFFSET;
        let mut count = 0;
        for (seq, index) in positions {
            count += 1;
            for b in seq.to_le_bytes().into_iter().chain(index.to_le_bytes()) {
                hash = fnv(hash, b);
            }
        }
        format!("{kind}:{key}:{count}:{hash:016x}")
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
        stream_case(&format!("{}_{}", self.prefix, kind.token()))
    }

    /// Every subject of a stream, e.g. `tiendo.ingest.>`: also what a subscriber to all of
    /// a kind's messages subscribes to.
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

    /// Internal: alerting's input (see [`StreamKind::Figures`]).
    pub fn figures(&self, indicator: &str) -> String {
        format!("{}.figures.{indicator}", self.prefix)
    }

    pub fn alerts(&self, indicator: &str, org_unit: &str) -> String {
        format!("{}.alerts.{indicator}.{org_unit}", self.prefix)
    }

    pub fn overdue(&self, department: &str) -> String {
        format!("{}.overdue.{department}", self.prefix)
    }

    pub fn dead_letter(&self, service: &str) -> String {
        format!("{}.deadletter.{service}", self.prefix)
    }

    /// Where alerting says which figures it has just judged: core NATS, in no stream.
    pub fn judged(&self) -> String {
        format!("{}.judged", self.prefix)
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

/// `text` as it appears in a stream name: upper-cased, `-` as `_` (a stream's name is its
/// prefix and kind so written, see [`Names::stream`]).
pub fn stream_case(text: &str) -> String {
    text.to_uppercase().replace('-', "_")
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

    #[test]
    fn a_service_owns_its_consumer_and_its_partitions_only() {
        let name = consumer::partition(service::AGGREGATION, "smartphone_adults");
        assert_eq!(name, "aggregation-smartphone_adults");
        assert!(consumer::of_service(service::AGGREGATION, &name));
        assert!(consumer::of_service(service::AGGREGATION, service::AGGREGATION));
        assert!(!consumer::of_service(service::AGGREGATION, "aggregationx"));
        assert!(!consumer::of_service(service::ALERTING, &name));
    }

    #[test]
    fn batch_ids_follow_the_positions() {
        let a = msg_id::batch("r", "dic", [(1, 0), (1, 1)]);
        assert_eq!(a, msg_id::batch("r", "dic", [(1, 0), (1, 1)]));
        assert_ne!(a, msg_id::batch("r", "dic", [(1, 0), (2, 0)]));
        assert_ne!(a, msg_id::batch("r", "doh", [(1, 0), (1, 1)]));
    }

    #[test]
    fn figure_batch_ids_follow_the_figures_and_their_versions() {
        let a = msg_id::figures("i", [("1", "2024-06", 3), ("2", "2024-06", 1)]);
        assert_eq!(a, msg_id::figures("i", [("1", "2024-06", 3), ("2", "2024-06", 1)]));
        assert_ne!(a, msg_id::figures("i", [("1", "2024-06", 4), ("2", "2024-06", 1)]));
        assert_ne!(a, msg_id::figures("i", [("12", "024-06", 3), ("2", "2024-06", 1)]));
        assert_ne!(a, msg_id::figures("j", [("1", "2024-06", 3), ("2", "2024-06", 1)]));
    }
}
