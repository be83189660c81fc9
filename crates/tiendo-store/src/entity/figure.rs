//! Aggregation: one row per (indicator, org unit, period): the unit's latest direct observation
//! (if any) and the running sums of its children's contributions.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "figures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub indicator: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_unit: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    /// Last day of the period, YYYY-MM-DD.
    pub period_end: String,
    pub direct_value: Option<f64>,
    pub direct_numerator: Option<i64>,
    pub direct_denominator: Option<i64>,
    pub direct_event_id: Option<String>,
    pub direct_department: Option<String>,
    pub direct_seq: Option<i64>,
    pub direct_index: Option<i32>,
    pub sum_numerator: i64,
    pub sum_denominator: i64,
    pub covered: i64,
    pub value_only: i64,
    pub version: i64,
    pub updated_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
