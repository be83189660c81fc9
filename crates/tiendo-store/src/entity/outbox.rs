//! Messages committed together with the change they announce, published after the commit:
//! one row per transaction, holding all of its messages (see [`crate::outbox`] for the body's
//! format).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_batches")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The service whose relay publishes it.
    pub service: String,
    /// How many messages `body` holds.
    pub messages: i32,
    /// The messages, framed by [`crate::outbox::encode`].
    pub body: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
