//! Alerting: every alert, one row each: a plan's alert of one kind about one unit's
//! indicator, with its current state and how many times it has fired.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    /// `<plan>:<indicator>:<org_unit>:<kind>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub alert_id: String,
    pub plan: String,
    pub indicator: String,
    pub org_unit: String,
    /// "trajectory" or "verdict".
    pub kind: String,
    /// "firing" or "resolved".
    pub state: String,
    /// How many times it has fired.
    pub episodes: i64,
    /// When it last fired.
    pub fired_at: String,
    pub resolved_at: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
