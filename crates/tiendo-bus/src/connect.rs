//! The connection to NATS (one server, or a cluster through its seed list), and the streams
//! and consumers tiendo needs, each stream with `nats.replicas` copies.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use async_nats::ServerAddr;
use tiendo_settings::{redact_url, ExposeSecret as _, NatsSettings, PipelineSettings, SecretUrl};

use crate::names::{Names, StreamKind};

/// A connection to NATS with its JetStream context and the names under `nats.prefix`.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub names: Names,
    /// Copies JetStream keeps of each stream this bus creates (`nats.replicas`).
    pub replicas: usize,
}

/// How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate publish.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl Bus {
    /// Connects with the settings' URL (or comma-separated seed list), credentials and TLS
    /// files. Never logs the credentials.
    pub async fn connect(settings: &NatsSettings, client_name: &str) -> anyhow::Result<Self> {
        let servers = server_addrs(&settings.url)?;
        let mut options = async_nats::ConnectOptions::new()
            .name(client_name)
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .max_reconnects(None);
        if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
            options = options.user_and_password(user.clone(), password.expose_secret().to_owned());
        }
        if let Some(prefix) = &settings.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        if settings.tls_required {
            options = options.require_tls(true);
        }
        if let Some(ca) = &settings.tls_ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&settings.tls_cert_file, &settings.tls_key_file) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if let Some(path) = &settings.credentials_file {
            options = options
                .credentials_file(path)
                .await
                .with_context(|| format!("reading NATS credentials file {}", path.display()))?;
        }
        let client = tokio::time::timeout(Duration::from_secs(10), options.connect(servers))
            .await
            .map_err(|_| anyhow::anyhow!("no NATS server answered at {} within 10 s", settings.url))?
            .with_context(|| format!("connecting to NATS at {}", settings.url))?;
        let js = jetstream::new(client.clone());
        Ok(Self { client, js, names: Names::new(settings.prefix.clone()), replicas: settings.replicas })
    }

    /// True while the client is connected to a server.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates (or finds) the stream of `kind`: file storage, kept `retention_days`, with
    /// [`Bus::replicas`] copies.
    ///
    /// A stream found with fewer copies (created before the move to a cluster, or before
    /// `nats.replicas` was raised) is raised to [`Bus::replicas`]; JetStream copies its
    /// messages to the new replicas in the background. One found with more is left as it is:
    /// tiendo never lowers what an operator made more durable.
    pub async fn ensure_stream(&self, kind: StreamKind, pipeline: &PipelineSettings) -> anyhow::Result<stream::Stream> {
        let name = self.names.stream(kind);
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![self.names.stream_subjects(kind)],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(pipeline.retention_days * 86_400),
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: self.replicas,
            ..Default::default()
        };
        let mut stream = match self.js.get_or_create_stream(config).await {
            Ok(stream) => stream,
            // Every service creates the streams as it starts. When another process creates
            // this one between our look-up and our create, JetStream refuses ours ("subjects
            // overlap with an existing stream"): looked up again, it is there.
            Err(create) => match self.js.get_stream(&name).await {
                Ok(stream) => stream,
                Err(_) => return Err(create).with_context(|| format!("creating stream {name}")),
            },
        };
        let found = stream.cached_info().config.clone();
        if found.num_replicas.max(1) < self.replicas {
            tracing::info!(stream = %name, from = found.num_replicas, to = self.replicas, "raising the stream's replicas");
            let raised = self.js.update_stream(stream::Config { num_replicas: self.replicas, ..found }).await;
            stream = self.js.get_stream(&name).await.with_context(|| format!("reading stream {name}"))?;
            // Every service raises the streams as it starts: another may have done it first.
            if stream.cached_info().config.num_replicas < self.replicas {
                raised.with_context(|| format!("raising stream {name} to {} replicas", self.replicas))?;
            }
        }
        Ok(stream)
    }

    /// Creates every stream tiendo uses.
    pub async fn ensure_streams(&self, pipeline: &PipelineSettings) -> anyhow::Result<()> {
        for kind in StreamKind::ALL {
            self.ensure_stream(kind, pipeline).await?;
        }
        Ok(())
    }

    /// Creates (or finds) the durable pull consumer `service` on the stream of `kind`.
    /// `pipeline.max_deliver` is enforced by [`crate::consume::run`], not by the server.
    pub async fn ensure_consumer(
        &self,
        kind: StreamKind,
        service: &str,
        pipeline: &PipelineSettings,
    ) -> anyhow::Result<consumer::PullConsumer> {
        let stream = self.ensure_stream(kind, pipeline).await?;
        let config = consumer_config(service, None, consumer::DeliverPolicy::All, pipeline);
        stream
            .get_or_create_consumer(service, config)
            .await
            .with_context(|| format!("creating consumer {service} on {}", self.names.stream(kind)))
    }

    /// Makes `wanted` (durable name, filter subject) the consumers of `service` on the stream
    /// of `kind`, and returns them in order. A wanted consumer that does not exist yet starts
    /// where `service`'s other consumers (those [`crate::names::consumer::of_service`] but not
    /// wanted) stood: after the lowest of their acknowledgement floors (a consumer with nothing
    /// left counts as done up to the end of the stream), or at the start of the stream when
    /// there are none. Those others are then deleted. So switching between one
    /// shared consumer and one per partition neither skips a message nor replays the stream
    /// (what between the floor and the newest acknowledgement comes again is recognised as
    /// done by the service).
    ///
    /// Every instance of the service must be stopped while it switches: a consumer deleted
    /// under a running instance leaves it reading nothing.
    pub async fn take_over_consumers(
        &self,
        kind: StreamKind,
        service: &str,
        wanted: &[(String, Option<String>)],
        pipeline: &PipelineSettings,
    ) -> anyhow::Result<Vec<consumer::PullConsumer>> {
        let stream = self.ensure_stream(kind, pipeline).await?;
        let mut others = consumers_of(&stream, service).await?;
        others.retain(|name| !wanted.iter().any(|(w, _)| w == name));
        // Read before the consumers: a consumer with nothing pending and nothing in hand has
        // done everything up to here, whatever its own floor says (a partition whose subject
        // has had no message for a while has its floor far back).
        let last = if others.is_empty() { 0 } else { stream.clone().info().await?.state.last_sequence };
        let mut floor: Option<u64> = None;
        for name in &others {
            let mut c: consumer::PullConsumer =
                stream.get_consumer(name).await.map_err(|e| anyhow::anyhow!("consumer {name}: {e}"))?;
            let info = c.info().await?;
            let mut done = info.ack_floor.stream_sequence;
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                done = done.max(last);
            }
            floor = Some(floor.map_or(done, |f| f.min(done)));
        }
        let start = match floor {
            Some(acked) => consumer::DeliverPolicy::ByStartSequence { start_sequence: acked + 1 },
            None => consumer::DeliverPolicy::All,
        };
        let mut consumers = Vec::with_capacity(wanted.len());
        for (name, filter) in wanted {
            let config = consumer_config(name, filter.clone(), start, pipeline);
            let c = stream
                .get_or_create_consumer(name, config)
                .await
                .with_context(|| format!("creating consumer {name} on {}", self.names.stream(kind)))?;
            consumers.push(c);
        }
        for name in others {
            tracing::info!(consumer = %name, from = ?floor, "consumer taken over; deleting it");
            if let Err(e) = stream.delete_consumer(&name).await {
                // Another instance, switching at the same time, deleted it first.
                tracing::debug!(consumer = %name, error = %e, "deleting a consumer taken over");
            }
        }
        Ok(consumers)
    }
}

/// The names of `service`'s consumers on `stream` (its own and its partitions', see
/// [`crate::names::consumer::of_service`]), sorted.
pub async fn consumers_of(stream: &stream::Stream, service: &str) -> anyhow::Result<Vec<String>> {
    use futures::TryStreamExt as _;
    let mut names: Vec<String> = stream.consumer_names().try_collect().await?;
    names.retain(|name| crate::names::consumer::of_service(service, name));
    names.sort();
    Ok(names)
}

/// A tiendo durable pull consumer's settings.
fn consumer_config(
    name: &str,
    filter: Option<String>,
    deliver_policy: consumer::DeliverPolicy,
    pipeline: &PipelineSettings,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        filter_subject: filter.unwrap_or_default(),
        deliver_policy,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(pipeline.ack_wait_secs),
        // Unlimited here: the consumer loop counts deliveries itself and dead-letters a
        // message that keeps failing, while an outage (Decision::Hold) never gives up.
        max_deliver: -1,
        max_ack_pending: (pipeline.batch_size as i64 * 8).max(1024),
        ..Default::default()
    }
}

/// The servers of `nats.url`: one URL, or a comma-separated seed list of a cluster. Spaces
/// around an entry are ignored; an empty or unparsable entry is an error naming it (its
/// password redacted), so a typo stops the service at start rather than leaving a server out.
pub fn server_addrs(url: &SecretUrl) -> anyhow::Result<Vec<ServerAddr>> {
    url.expose()
        .split(',')
        .enumerate()
        .map(|(i, entry)| {
            let entry = entry.trim();
            anyhow::ensure!(!entry.is_empty(), "nats.url: server {} of `{url}` is empty", i + 1);
            entry.parse::<ServerAddr>().map_err(|e| {
                // The parser's message names the fault (a port, a scheme), never the input.
                anyhow::anyhow!("nats.url: server {} (`{}`) is not a NATS server URL: {e}", i + 1, redact_url(entry))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::server_addrs;

    fn servers(url: &str) -> Vec<(String, u16)> {
        server_addrs(&url.into()).unwrap().iter().map(|a| (a.host().to_owned(), a.port())).collect()
    }

    fn fault(url: &str) -> String {
        format!("{:#}", server_addrs(&url.into()).unwrap_err())
    }

    #[test]
    fn one_url_is_one_server() {
        assert_eq!(servers("nats://127.0.0.1:4222"), [("127.0.0.1".to_owned(), 4222)]);
        assert_eq!(servers("tls://nats.example.gov.vn"), [("nats.example.gov.vn".to_owned(), 4222)]);
    }

    #[test]
    fn a_comma_separated_seed_list_is_every_server_in_order() {
        let list = servers("nats://nats-1:4222, nats://nats-2:4223 ,nats-3:4224");
        let expected = [("nats-1", 4222), ("nats-2", 4223), ("nats-3", 4224)];
        assert_eq!(list, expected.map(|(h, p)| (h.to_owned(), p)));
    }

    #[test]
    fn credentials_in_each_url_are_kept_for_connecting() {
        let addrs = server_addrs(&"nats://a:pw1@n1:4222,nats://b:pw2@n2:4222".into()).unwrap();
        let credentials: Vec<_> = addrs.iter().map(|a| (a.username(), a.password())).collect();
        assert_eq!(credentials, [(Some("a"), Some("pw1")), (Some("b"), Some("pw2"))]);
    }

    #[test]
    fn a_bad_entry_is_named_without_its_password() {
        let shown = fault("nats://u:hunter2@n1:4222,nats://u:hunter3@n2:42x22");
        assert!(shown.contains("server 2 (`nats://u:<redacted>@n2:42x22`)"), "{shown}");
        assert!(shown.contains("invalid port number"), "{shown}");
        assert!(!shown.contains("hunter"), "{shown}");
        let shown = fault("http://u:hunter4@n1:4222");
        assert!(shown.contains("server 1") && shown.contains("scheme"), "{shown}");
        assert!(!shown.contains("hunter"), "{shown}");
    }

    #[test]
    fn an_empty_entry_is_an_error_not_a_server_left_out() {
        assert!(fault("nats://n1:4222,,nats://n3:4222").contains("server 2 of"));
        assert!(fault("nats://n1:4222,").contains("server 2 of"));
        assert!(fault("").contains("server 1 of"));
    }
}
