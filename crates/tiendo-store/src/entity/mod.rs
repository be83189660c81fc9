//! One module per table.

pub mod alert;
pub mod alert_event;
pub mod alert_figure;
pub mod due_period;
pub mod figure;
pub mod observation;
pub mod outbox;
pub mod overdue_notice;
pub mod standing;
