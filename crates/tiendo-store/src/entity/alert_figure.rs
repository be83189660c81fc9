//! Alerting: the latest version of each figure it was told about.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_figures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub indicator: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_unit: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    pub period_end: String,
    /// Percentage; absent when the unit has no figure for the period.
    pub value: Option<f64>,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
