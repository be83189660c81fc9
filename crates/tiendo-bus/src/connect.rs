//! The connection to NATS, and the streams and consumers tiendo needs.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use tiendo_settings::{ExposeSecret as _, NatsSettings, PipelineSettings};

use crate::names::{Names, StreamKind};

/// A connection to NATS with its JetStream context and the names under `nats.prefix`.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub names: Names,
}

/// How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate publish.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl Bus {
    /// Connects with the settings' URL, credentials and TLS files. Never logs the credentials.
    pub async fn connect(settings: &NatsSettings, client_name: &str) -> anyhow::Result<Self> {
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
        let client = tokio::time::timeout(Duration::from_secs(10), options.connect(settings.url.expose()))
            .await
            .map_err(|_| anyhow::anyhow!("no NATS server answered at {} within 10 s", settings.url))?
            .with_context(|| format!("connecting to NATS at {}", settings.url))?;
        let js = jetstream::new(client.clone());
        Ok(Self { client, js, names: Names::new(settings.prefix.clone()) })
    }

    /// True while the client is connected to a server.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates (or finds) the stream of `kind`: file storage, kept `retention_days`.
    pub async fn ensure_stream(&self, kind: StreamKind, pipeline: &PipelineSettings) -> anyhow::Result<stream::Stream> {
        let config = stream::Config {
            name: self.names.stream(kind),
            subjects: vec![self.names.stream_subjects(kind)],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(pipeline.retention_days * 86_400),
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .with_context(|| format!("creating stream {}", self.names.stream(kind)))
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
        let config = consumer::pull::Config {
            durable_name: Some(service.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(pipeline.ack_wait_secs),
            // Unlimited here: the consumer loop counts deliveries itself and dead-letters a
            // message that keeps failing, while an outage (Decision::Hold) never gives up.
            max_deliver: -1,
            max_ack_pending: (pipeline.batch_size as i64 * 8).max(1024),
            ..Default::default()
        };
        stream
            .get_or_create_consumer(service, config)
            .await
            .with_context(|| format!("creating consumer {service} on {}", self.names.stream(kind)))
    }
}
