//! One module per table.

pub mod alert;
pub mod alert_event;
pub mod alert_figure;
pub mod alert_state;
pub mod figure;
pub mod observation;
pub mod outbox;
