//! Aggregation: every (department, event id) ever applied. Written in the same transaction as
//! the figure it changed, so an event id is applied once whatever the bus redelivers.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "processed_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub department: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    /// "applied", or "superseded" when a later revision of the same figure was already in.
    pub outcome: String,
    pub applied_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
