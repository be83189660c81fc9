//! The outbox table: a service writes the messages a change must announce in the same
//! transaction as the change, and deletes them once the bus has stored them. Publishing is
//! the service's consumer kit's business; this module only keeps the rows.
//!
//! One row holds all the messages of one transaction (thousands, for a batch of
//! observations), framed in its `body` by [`encode`]: one insert and one delete per
//! transaction instead of one of each per message. On SQLite the body is compressed
//! ([`encode_compressed`]): a batch's body is hundreds of kB of JSON written and deleted
//! again within the second, and SQLite's thread is the pipeline's bound (docs/performance.md,
//! issue 15, change 25). PostgreSQL compresses it itself (LZ4, change 17).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entity::outbox;
use crate::keys::any_of;

/// One message to keep until it is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row<'a> {
    pub subject: &'a str,
    pub msg_id: &'a str,
    pub content_type: &'a str,
    pub payload: &'a [u8],
}

/// A message read back from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub msg_id: String,
    pub content_type: String,
    pub payload: Vec<u8>,
}

/// One transaction's messages, not yet published: [`delete`] `id` once they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub messages: Vec<Message>,
}

/// Adds `rows` to `service`'s outbox as one row, inside the caller's transaction; returns
/// its id, to [`delete`] once the messages are published (`None`: nothing to add).
pub async fn enqueue<C: ConnectionTrait>(db: &C, service: &str, rows: &[Row<'_>]) -> Result<Option<i64>, DbErr> {
    if rows.is_empty() {
        return Ok(None);
    }
    let count =
        i32::try_from(rows.len()).map_err(|_| DbErr::Custom(format!("{} messages in one outbox row", rows.len())))?;
    let body = match db.get_database_backend() {
        DbBackend::Sqlite => encode_compressed(rows),
        _ => encode(rows),
    };
    let batch = outbox::ActiveModel {
        service: Set(service.to_owned()),
        messages: Set(count),
        body: Set(body),
        ..Default::default()
    };
    Ok(Some(outbox::Entity::insert(batch).exec(db).await?.last_insert_id))
}

/// Up to `limit` of `service`'s transactions not yet published, oldest first.
pub async fn pending<C: ConnectionTrait>(db: &C, service: &str, limit: u64) -> Result<Vec<Pending>, DbErr> {
    let rows = outbox::Entity::find()
        .filter(outbox::Column::Service.eq(service))
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|r| {
            let unreadable = |e: String| DbErr::Custom(format!("outbox row {} of {service} cannot be read: {e}", r.id));
            let messages = decode(&r.body).map_err(unreadable)?;
            if messages.len() != r.messages as usize {
                return Err(unreadable(format!("it holds {} messages, not {}", messages.len(), r.messages)));
            }
            Ok(Pending { id: r.id, messages })
        })
        .collect()
}

/// Messages not yet published: of `service`, or of every service.
pub async fn count<C: ConnectionTrait>(db: &C, service: Option<&str>) -> Result<u64, DbErr> {
    let mut rows = outbox::Entity::find();
    if let Some(service) = service {
        rows = rows.filter(outbox::Column::Service.eq(service));
    }
    let sum: Option<Option<i64>> =
        rows.select_only().column_as(outbox::Column::Messages.sum(), "messages").into_tuple().one(db).await?;
    Ok(sum.flatten().unwrap_or(0).max(0) as u64)
}

/// Ids deleted per statement: one bound parameter each.
const IDS_PER_STATEMENT: usize = 4096;

/// Removes published transactions' rows.
pub async fn delete<C: ConnectionTrait>(db: &C, ids: &[i64]) -> Result<(), DbErr> {
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let ids = any_of(db.get_database_backend(), outbox::Column::Id, chunk.iter().copied());
        outbox::Entity::delete_many().filter(ids).exec(db).await?;
    }
    Ok(())
}

/// The first byte of a body: the framing below. Another framing gets another number, and
/// every framing ever written stays readable: rows may wait in the table across an upgrade.
const FORMAT: u8 = 1;
/// The first byte of a compressed body: a little-endian `u32`, the length of the [`FORMAT`]
/// framing's messages (without its first byte), then those bytes as one LZ4 block.
const FORMAT_LZ4: u8 = 2;
/// The most bytes a compressed body may expand to: far above any transaction's messages (a
/// few MB), so that a damaged length is refused instead of allocated.
const MOST_EXPANDED: usize = 256 << 20;

/// Frames `rows` as one body: [`FORMAT`], then for each message its subject, message id,
/// content type and payload, each as a little-endian `u32` length and that many bytes.
pub fn encode(rows: &[Row<'_>]) -> Vec<u8> {
    let mut body = vec![FORMAT];
    frame(rows, &mut body);
    body
}

/// [`encode`]'s framing compressed: [`FORMAT_LZ4`], the framed length, the LZ4 block.
pub fn encode_compressed(rows: &[Row<'_>]) -> Vec<u8> {
    let mut framed = Vec::new();
    frame(rows, &mut framed);
    let compressed = lz4_flex::block::compress(&framed);
    let mut body = Vec::with_capacity(5 + compressed.len());
    body.push(FORMAT_LZ4);
    // A NATS message is far below 4 GiB, and a transaction's messages too.
    body.extend_from_slice(&(framed.len() as u32).to_le_bytes());
    body.extend_from_slice(&compressed);
    body
}

/// Appends each message of `rows`, as [`encode`] describes.
fn frame(rows: &[Row<'_>], body: &mut Vec<u8>) {
    let size: usize =
        rows.iter().map(|r| 16 + r.subject.len() + r.msg_id.len() + r.content_type.len() + r.payload.len()).sum();
    body.reserve(size);
    for r in rows {
        for field in [r.subject.as_bytes(), r.msg_id.as_bytes(), r.content_type.as_bytes(), r.payload] {
            // A NATS message is far below 4 GiB: the server refuses anything over 64 MiB.
            body.extend_from_slice(&(field.len() as u32).to_le_bytes());
            body.extend_from_slice(field);
        }
    }
}

/// The messages [`encode`] or [`encode_compressed`] framed, in order.
pub fn decode(body: &[u8]) -> Result<Vec<Message>, String> {
    let (format, rest) = body.split_first().ok_or("the body is empty")?;
    match *format {
        FORMAT => messages(rest),
        FORMAT_LZ4 => {
            let (len, block) = rest.split_first_chunk::<4>().ok_or("the body ends inside its length")?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > MOST_EXPANDED {
                return Err(format!("the body claims {len} bytes expanded, more than {MOST_EXPANDED}"));
            }
            let framed = lz4_flex::block::decompress(block, len).map_err(|e| format!("the body is damaged: {e}"))?;
            if framed.len() != len {
                return Err(format!("the body expands to {} bytes, not the {len} it claims", framed.len()));
            }
            messages(&framed)
        }
        other => Err(format!("unknown framing {other} (this build reads {FORMAT} and {FORMAT_LZ4})")),
    }
}

/// The messages framed in `rest`, in order.
fn messages(mut rest: &[u8]) -> Result<Vec<Message>, String> {
    let text =
        |bytes: &[u8], what: &str| String::from_utf8(bytes.to_vec()).map_err(|_| format!("a {what} is not UTF-8"));
    let mut messages = Vec::new();
    while !rest.is_empty() {
        let subject = text(field(&mut rest)?, "subject")?;
        let msg_id = text(field(&mut rest)?, "message id")?;
        let content_type = text(field(&mut rest)?, "content type")?;
        let payload = field(&mut rest)?.to_vec();
        messages.push(Message { subject, msg_id, content_type, payload });
    }
    Ok(messages)
}

/// Takes one length-prefixed field off the front of `rest`.
fn field<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let (len, after) = rest.split_first_chunk::<4>().ok_or("the body ends inside a length")?;
    let len = u32::from_le_bytes(*len) as usize;
    if after.len() < len {
        return Err(format!("the body ends inside a field of {len} bytes"));
    }
    let (bytes, after) = after.split_at(len);
    *rest = after;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(m: &Message) -> Row<'_> {
        Row { subject: &m.subject, msg_id: &m.msg_id, content_type: &m.content_type, payload: &m.payload }
    }

    fn rows() -> Vec<Message> {
        vec![
            Message {
                subject: "t.aggregates.smartphone_adults.91".into(),
                msg_id: "agg:smartphone_adults:91:2026-10:3".into(),
                content_type: "application/json".into(),
                payload: br#"{"value":71.5}"#.to_vec(),
            },
            Message {
                subject: "t.figures.fibre_households".into(),
                msg_id: "fig:x".into(),
                content_type: "application/x-protobuf".into(),
                payload: vec![],
            },
            Message {
                subject: "t.alerts.x.Xã Mỹ Hòa Hưng".into(),
                msg_id: "".into(),
                content_type: "application/json".into(),
                payload: vec![0, 255, 10, 13],
            },
        ]
    }

    #[test]
    fn messages_come_back_as_they_were_framed_in_order() {
        let messages = rows();
        let framed: Vec<Row> = messages.iter().map(row).collect();
        assert_eq!(decode(&encode(&framed)), Ok(messages));
    }

    #[test]
    fn a_body_cut_anywhere_inside_a_message_is_refused_not_misread() {
        let messages = rows();
        let framed: Vec<Row> = messages.iter().map(row).collect();
        let body = encode(&framed);
        // Cut between two messages, a body reads as the messages before the cut ([`pending`]
        // then finds fewer than the row's count).
        let boundaries: Vec<usize> = (0..framed.len()).map(|n| encode(&framed[..n]).len()).collect();
        for cut in 1..body.len() {
            let decoded = decode(&body[..cut]);
            if let Some(n) = boundaries.iter().position(|b| *b == cut) {
                assert_eq!(decoded.map(|m| m.len()), Ok(n));
            } else {
                assert!(decoded.is_err(), "a body cut at {cut} of {} was read", body.len());
            }
        }
    }

    #[test]
    fn an_empty_body_or_another_framing_is_refused() {
        assert_eq!(decode(&[]), Err("the body is empty".to_owned()));
        assert!(decode(&[3, 0, 0, 0, 0]).unwrap_err().contains("unknown framing 3"));
        assert_eq!(decode(&[FORMAT]), Ok(vec![]));
        assert_eq!(decode(&encode_compressed(&[])), Ok(vec![]));
    }

    /// A transaction's worth of aggregates, as aggregation announces them.
    fn aggregates(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| Message {
                subject: format!("tiendo.aggregates.smartphone_adults.{}", 30_000 + i),
                msg_id: format!("agg:smartphone_adults:{}:2025-12:{}", 30_000 + i, i % 7 + 1),
                content_type: "application/json".into(),
                payload: format!(
                    r#"{{"indicator":"smartphone_adults","org_unit":"{}","period":"2025-12","value":{}.5,"numerator":{},"denominator":1000,"covered":1,"version":{}}}"#,
                    30_000 + i,
                    55 + i % 40,
                    550 + i % 400,
                    i % 7 + 1
                )
                .into_bytes(),
            })
            .collect()
    }

    #[test]
    fn a_compressed_body_reads_as_the_same_messages_and_is_much_smaller() {
        for messages in [rows(), aggregates(1000)] {
            let framed: Vec<Row> = messages.iter().map(row).collect();
            assert_eq!(decode(&encode_compressed(&framed)), Ok(messages));
        }
        let messages = aggregates(1000);
        let framed: Vec<Row> = messages.iter().map(row).collect();
        let (plain, compressed) = (encode(&framed).len(), encode_compressed(&framed).len());
        assert!(compressed * 3 < plain, "{compressed} bytes compressed, {plain} plain");
    }

    #[test]
    fn a_damaged_compressed_body_is_refused_not_misread() {
        let messages = aggregates(50);
        let framed: Vec<Row> = messages.iter().map(row).collect();
        let body = encode_compressed(&framed);
        for cut in 1..body.len() {
            assert!(decode(&body[..cut]).is_err(), "a compressed body cut at {cut} of {} was read", body.len());
        }
        // A length claiming more than the block holds, or more than any body may hold.
        let mut longer = body.clone();
        longer[1..5].copy_from_slice(&(u32::from_le_bytes(body[1..5].try_into().unwrap()) + 1).to_le_bytes());
        assert!(decode(&longer).is_err());
        let mut huge = body.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).unwrap_err().contains("more than"));
    }
}
