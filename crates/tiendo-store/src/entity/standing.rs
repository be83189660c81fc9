//! Alerting: how each plan's (indicator, org unit) stands now, judged on its latest period
//! within the plan (or the plan's verdict on its final period).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "standings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub plan: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub indicator: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_unit: String,
    pub period: String,
    pub period_end: String,
    pub value: f64,
    /// Absent for a monitored indicator (no target).
    pub expected: Option<f64>,
    pub gap: Option<f64>,
    pub target: Option<f64>,
    pub status: String,
    /// Received ÷ expected of the reports the figure depends on, when worked out.
    pub coverage: Option<f64>,
    /// Open SDG's progress category and score.
    pub progress: Option<String>,
    pub score: Option<f64>,
    /// The trend forecast: the line's value at the target date, when it reaches the target
    /// (YYYY-MM-DD), and its weather symbol.
    pub projected: Option<f64>,
    pub expected_attainment: Option<String>,
    pub outlook: Option<String>,
    pub judged_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
