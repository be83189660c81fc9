//! The metrics every service keeps. Names and labels are a wire contract with ops: README.md
//! ("Metrics"), the rules in deploy/prometheus/ and the dashboards use them.

use prometheus::{Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Counts and timings of what each service handled. Label `service` is one of `ingest`,
/// `validation`, `aggregation`, `alerting`.
#[derive(Clone)]
pub struct PipelineMetrics {
    /// `tiendo_messages_received_total{service}`: bus messages handed to the service.
    pub messages: IntCounterVec,
    /// `tiendo_observations_received_total{service}`: observations (or figures) it looked at.
    pub received: IntCounterVec,
    /// `tiendo_observations_accepted_total{service}`: passed on or applied.
    pub accepted: IntCounterVec,
    /// `tiendo_observations_rejected_total{service,department,reason}`: refused, by reason code.
    pub rejected: IntCounterVec,
    /// `tiendo_observations_duplicate_total{service}`: ignored because already applied.
    pub duplicates: IntCounterVec,
    /// `tiendo_dead_letters_total{service}`: messages given up and moved to the dead-letter subject.
    pub dead_letters: IntCounterVec,
    /// `tiendo_batch_duration_seconds{service}`: time to handle one batch, commit included.
    pub batch_seconds: HistogramVec,
    /// `tiendo_database_errors_total{service}`: transactions that failed (and were retried).
    pub database_errors: IntCounterVec,
    /// `tiendo_consumer_pending_messages{service}`: in the service's stream, not yet delivered to
    /// it (summed over its consumers: a partitioned service has one per indicator).
    pub consumer_pending: GaugeVec,
    /// `tiendo_consumer_ack_pending_messages{service}`: delivered to the service, not yet acknowledged.
    pub consumer_ack_pending: GaugeVec,
    /// `tiendo_outbox_pending_messages{service}`: committed to the service's outbox and still
    /// not published after its relay's last pass failed; 0 after a pass that emptied it
    /// (services with an outbox).
    pub outbox_pending: GaugeVec,
    /// `tiendo_ready{check}`: 1 when the readiness check passes.
    pub ready: GaugeVec,
}

impl PipelineMetrics {
    /// Creates `service`'s counters at 0, so that rules see the first increase of each and
    /// dashboards show 0 rather than nothing.
    pub fn touch(&self, service: &str) {
        for c in [
            &self.messages,
            &self.received,
            &self.accepted,
            &self.duplicates,
            &self.dead_letters,
            &self.database_errors,
        ] {
            c.with_label_values(&[service]);
        }
    }

    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let batch_seconds = HistogramVec::new(
            HistogramOpts::new(
                "tiendo_batch_duration_seconds",
                "Time to handle one batch of messages, commit included.",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["service"],
        )?;
        registry.register(Box::new(batch_seconds.clone()))?;
        let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<GaugeVec> {
            let g = GaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(Self {
            messages: counter("tiendo_messages_received_total", "Bus messages handed to the service.", &["service"])?,
            received: counter(
                "tiendo_observations_received_total",
                "Observations or figures the service looked at.",
                &["service"],
            )?,
            accepted: counter(
                "tiendo_observations_accepted_total",
                "Observations passed on or applied.",
                &["service"],
            )?,
            rejected: counter(
                "tiendo_observations_rejected_total",
                "Observations refused, by department and reason code.",
                &["service", "department", "reason"],
            )?,
            duplicates: counter(
                "tiendo_observations_duplicate_total",
                "Observations ignored because their event id was already applied.",
                &["service"],
            )?,
            dead_letters: counter(
                "tiendo_dead_letters_total",
                "Messages given up and moved to the dead-letter subject.",
                &["service"],
            )?,
            batch_seconds,
            database_errors: counter(
                "tiendo_database_errors_total",
                "Database transactions that failed; their messages are retried.",
                &["service"],
            )?,
            consumer_pending: gauge(
                "tiendo_consumer_pending_messages",
                "Messages in the service's stream not yet delivered to its consumers (all of them, summed).",
                &["service"],
            )?,
            consumer_ack_pending: gauge(
                "tiendo_consumer_ack_pending_messages",
                "Messages delivered to the service's consumers and not yet acknowledged (summed).",
                &["service"],
            )?,
            outbox_pending: gauge(
                "tiendo_outbox_pending_messages",
                "Messages in the service's outbox its relay's last pass failed to publish (0 once a pass empties it).",
                &["service"],
            )?,
            ready: gauge("tiendo_ready", "1 when the readiness check passes, 0 when it fails.", &["check"])?,
        })
    }
}

/// `tiendo_database_up`: 1 when the database answers a ping. Registered only by a process
/// that has a database, so a stateless service does not report one it never opens.
pub fn database_up(registry: &Registry) -> prometheus::Result<Gauge> {
    let g = Gauge::new("tiendo_database_up", "1 when the database answers a ping.")?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}
