//! Alerting: how each (indicator, org unit) stands now, judged on its latest period.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub indicator: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_unit: String,
    pub period: String,
    pub period_end: String,
    pub value: f64,
    pub expected: f64,
    pub gap: f64,
    pub target: f64,
    pub status: String,
    /// The alert firing now for this key, if any.
    pub open_alert_id: Option<String>,
    /// How many alerts this key has fired: numbers the next alert id.
    pub alerts_fired: i64,
    pub judged_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
