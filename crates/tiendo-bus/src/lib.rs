//! tiendo's use of NATS JetStream.
//!
//! Owns every subject, stream, consumer and header name and every message id (all under
//! `nats.prefix`), creates the streams and durable consumers, runs a consumer loop that hands
//! batches to a service and applies its decisions (ack, retry later and give up after
//! `pipeline.max_deliver`, hold through an outage), and publishes with pipelined
//! acknowledgements. It knows nothing of the messages' contents.
//!
//! # Layout
//! - [`names`]: subjects, streams, services, headers, message ids (a wire contract).
//! - [`connect`]: [`Bus`], the connection with its JetStream context and names.
//! - [`consume`]: the consumer loop and [`Decision`].
//! - [`publish`]: [`Outgoing`] messages and [`Bus::publish_all`].

pub mod connect;
pub mod consume;
pub mod names;
pub mod publish;

pub use async_nats;
pub use connect::Bus;
pub use consume::{Decision, Delivery};
pub use names::{Names, StreamKind};
pub use publish::{group_into_messages, ContentType, Outgoing, OBSERVATIONS_PER_MESSAGE};
