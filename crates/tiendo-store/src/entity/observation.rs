//! Aggregation: every observation applied, one row per (department, event id), holding the
//! first use of that id in publication order. Written in the same transaction as the figure
//! it changed, so an event id counts once whatever the bus redelivers, and the unit's direct
//! figure can be recomputed when messages arrive out of order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "observations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub department: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    pub indicator: String,
    pub org_unit: String,
    pub period: String,
    /// Percentage.
    pub value: f64,
    pub numerator: Option<i64>,
    pub denominator: Option<i64>,
    /// Position in the ingest stream, and within the department's message: publication order.
    pub source_seq: i64,
    pub source_index: i32,
    pub received_at: String,
    pub applied_at: String,
    /// The department's note, as sent (absent when it sent none).
    pub note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
