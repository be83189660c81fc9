//! Placeholder: NATS permissions test (owned by the ops work).
