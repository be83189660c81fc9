//! Tables as earlier migrations created them, for the entities that have changed since, frozen
//! as they were, so those migrations still create exactly what they created then.

/// `alert_states`, replaced by `standings` in m20261201_000001_plans.
pub mod alert_state {
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
}

/// `alerts` as first created, replaced in m20261201_000001_plans.
pub mod alert {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "alerts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub alert_id: String,
        pub indicator: String,
        pub org_unit: String,
        /// "firing" or "resolved".
        pub state: String,
        pub fired_at: String,
        pub resolved_at: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `standings` as m20261201_000001_plans created it (m20261202_000001_reporting adds `coverage`).
pub mod standing {
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
        pub expected: Option<f64>,
        pub gap: Option<f64>,
        pub target: Option<f64>,
        pub status: String,
        pub judged_at: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `observations` as m20261127_000001_create_tables created it (m20261204_000001_notes adds `note`).
pub mod observation {
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
        pub value: f64,
        pub numerator: Option<i64>,
        pub denominator: Option<i64>,
        pub source_seq: i64,
        pub source_index: i32,
        pub received_at: String,
        pub applied_at: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `outbox` (one row per message), replaced by `outbox_batches` in
/// m20261205_000001_outbox_batches.
pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The service whose relay publishes it.
        pub service: String,
        pub subject: String,
        pub msg_id: String,
        pub content_type: String,
        pub payload: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
