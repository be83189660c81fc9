//! One module per table.

pub mod alert;
pub mod alert_event;
pub mod alert_figure;
pub mod figure;
pub mod observation;
pub mod outbox;
pub mod standing;
