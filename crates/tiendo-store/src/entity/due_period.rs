//! Alerting: each (indicator, period) whose due date it has acted on: claimed in the
//! transaction that sends its overdue notices, so they go out once whatever runs where.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "due_periods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub indicator: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    pub processed_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
