//! Alerting: every overdue notice sent, one per (department, indicator, period).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "overdue_notices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub department: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub indicator: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    /// The last day the reports were on time, YYYY-MM-DD.
    pub due: String,
    pub expected: i64,
    pub received: i64,
    /// The missing units' codes, space separated.
    pub missing: String,
    pub at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
