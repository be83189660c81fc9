//! The outbox keeps one row per transaction: what a transaction enqueues is committed with
//! it (or not at all), the relay publishes what a crash left there once and in order, and
//! messages waiting in the table of one row per message (before
//! m20261205_000001_outbox_batches) survive the migration both ways. A row the relay cannot
//! read shows in `tiendo_outbox_pending_messages` (rule TiendoOutboxStuck).

use std::time::Duration;

use futures::StreamExt;
use sea_orm_migration::MigratorTrait;
use tiendo_bus::{ContentType, Outgoing, StreamKind};
use tiendo_store::migration::Migrator;
use tiendo_store::outbox::{self, Message};
use tiendo_store::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, Statement,
    Value,
};
use tiendo_tests::{db_matrix, migrate_down_through, Db, TestApp};

db_matrix!(
    messages_a_crash_left_in_the_outbox_are_relayed_once_in_order_and_their_rows_removed,
    messages_waiting_in_the_outbox_of_one_row_per_message_survive_the_migration_both_ways,
    a_row_the_relay_cannot_read_shows_as_pending_messages_until_it_is_gone,
);

/// The migration that made the outbox one row per transaction.
const OUTBOX_BATCHES: &str = "m20261205_000001_outbox_batches";

/// A service name no running service relays: the test's relay is the only one. (The
/// services' own outboxes are busy meanwhile: alerting announces the periods due at start.)
const SERVICE: &str = "outbox-test";

fn message(app: &TestApp, n: usize) -> Outgoing {
    let subject = app.bus.names.aggregates("outbox_test", &format!("unit_{n}"));
    Outgoing::new(subject, format!("outbox-test-{n}"), format!("payload {n}").into_bytes(), ContentType::Json)
}

async fn messages_a_crash_left_in_the_outbox_are_relayed_once_in_order_and_their_rows_removed(db: Db) {
    let app = TestApp::spawn(db).await;
    let mut seen = app.bus.client.subscribe(app.bus.names.aggregates("outbox_test", "*")).await.expect("subscribe");
    // Two committed transactions whose publish never happened (the process died after the
    // commit), and one rolled back.
    for range in [0..3, 3..5] {
        let tx = tiendo_store::begin(&app.db).await.expect("begin");
        tiendo_stateful::outbox::enqueue(&*tx, SERVICE, range.map(|n| message(&app, n)).collect())
            .await
            .expect("enqueue");
        tx.commit().await.expect("commit");
    }
    let tx = tiendo_store::begin(&app.db).await.expect("begin");
    tiendo_stateful::outbox::enqueue(&*tx, SERVICE, vec![message(&app, 99)]).await.expect("enqueue");
    drop(tx);
    let waiting = outbox::pending(&app.db, SERVICE, 10).await.expect("pending");
    assert_eq!(waiting.iter().map(|p| p.messages.len()).collect::<Vec<_>>(), [3, 2], "one row per transaction");

    let relayed = tiendo_stateful::outbox::relay(&app.db, &app.bus, SERVICE).await.expect("relay");
    assert_eq!(relayed, 5);
    let mut payloads = Vec::new();
    while payloads.len() < 5 {
        let m = tokio::time::timeout(Duration::from_secs(10), seen.next())
            .await
            .expect("the relayed messages arrive")
            .expect("subscription open");
        payloads.push(String::from_utf8(m.payload.to_vec()).expect("text"));
    }
    assert_eq!(payloads, (0..5).map(|n| format!("payload {n}")).collect::<Vec<_>>(), "in order, each once");
    assert_eq!(outbox::pending(&app.db, SERVICE, 10).await.expect("pending"), [], "relayed rows are deleted");
    assert_eq!(tiendo_stateful::outbox::relay(&app.db, &app.bus, SERVICE).await.expect("relay"), 0);

    // Nothing else runs through this namespace: its aggregates stream holds the five. The
    // same messages left behind again (a relay that died before deleting its row) are
    // published again and dropped by JetStream as duplicates of their message ids.
    let stored = || async {
        let stream = app.bus.names.stream(StreamKind::Aggregates);
        app.bus.js.get_stream(&stream).await.expect("the stream").info().await.expect("stream info").state.messages
    };
    assert_eq!(stored().await, 5);
    let tx = tiendo_store::begin(&app.db).await.expect("begin");
    tiendo_stateful::outbox::enqueue(&*tx, SERVICE, (0..5).map(|n| message(&app, n)).collect()).await.expect("enqueue");
    tx.commit().await.expect("commit");
    assert_eq!(tiendo_stateful::outbox::relay(&app.db, &app.bus, SERVICE).await.expect("relay"), 5);
    assert_eq!(stored().await, 5, "a message published twice is stored once");
    app.cleanup().await;
}

async fn messages_waiting_in_the_outbox_of_one_row_per_message_survive_the_migration_both_ways(db: Db) {
    let app = TestApp::namespace(db).await;
    // Back to the schema before m20261205_000001_outbox_batches, with 2,500 messages of one
    // service and one of another waiting, interleaved.
    migrate_down_through(&app.db, OUTBOX_BATCHES).await;
    let mut old: Vec<(String, Message)> = Vec::new();
    for n in 0..2_500 {
        let service = if n == 1_200 { "alerting" } else { "aggregation" };
        let m = Message {
            subject: format!("t.aggregates.i.u{n}"),
            msg_id: format!("id-{n}"),
            content_type: "application/json".into(),
            payload: format!("{{\"n\":{n}}}").into_bytes(),
        };
        insert_old(&app.db, service, &m).await;
        old.push((service.to_owned(), m));
    }
    let of =
        |service: &str| -> Vec<Message> { old.iter().filter(|(s, _)| s == service).map(|(_, m)| m.clone()).collect() };

    Migrator::up(&app.db, None).await.expect("up");
    let aggregation = outbox::pending(&app.db, "aggregation", 100).await.expect("pending");
    assert!(aggregation.len() > 1, "moved in steps, {} rows", aggregation.len());
    let moved: Vec<Message> = aggregation.into_iter().flat_map(|p| p.messages).collect();
    assert!(moved == of("aggregation"), "every message of the service, in order");
    let alerting: Vec<Message> = outbox::pending(&app.db, "alerting", 100)
        .await
        .expect("pending")
        .into_iter()
        .flat_map(|p| p.messages)
        .collect();
    assert_eq!(alerting, of("alerting"));
    assert_eq!(outbox::count(&app.db, None).await.expect("count"), 2_500);

    migrate_down_through(&app.db, OUTBOX_BATCHES).await;
    let back = read_old(&app.db).await;
    assert_eq!(back.len(), old.len(), "one row per message again");
    for service in ["aggregation", "alerting"] {
        let theirs: Vec<Message> = back.iter().filter(|(s, _)| s == service).map(|(_, m)| m.clone()).collect();
        assert!(theirs == of(service), "{service}'s messages come back in order");
    }
    Migrator::up(&app.db, None).await.expect("up again");
    assert_eq!(outbox::count(&app.db, None).await.expect("count"), 2_500);
    app.cleanup().await;
}

async fn a_row_the_relay_cannot_read_shows_as_pending_messages_until_it_is_gone(db: Db) {
    let app = TestApp::spawn(db).await;
    let pending = || app.metric("tiendo_outbox_pending_messages", &[("service", "aggregation")]);
    let wait_for = |want: f64, what: &'static str| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = pending().await;
            if got == Some(want) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: tiendo_outbox_pending_messages is {got:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_for(0.0, "exported from the start, at 0").await;

    // A row of aggregation's outbox whose body is cut short (a damaged file, a hand edit):
    // the relay cannot publish it, or anything after it, and says how much is waiting.
    let row = tiendo_store::entity::outbox::ActiveModel {
        service: Set("aggregation".to_owned()),
        messages: Set(3),
        body: Set(vec![1, 0xff]),
        ..Default::default()
    };
    let id = row.insert(&app.db).await.expect("insert the row").id;
    wait_for(3.0, "the stuck row's messages").await;

    // Meanwhile aggregation still announces what it applies: a batch publishes its own
    // messages; only the relay of leftovers is stuck.
    let mut province =
        app.bus.client.subscribe(app.bus.names.aggregates("smartphone_adults", "89")).await.expect("subscribe");
    app.publish_bytes(
        "dic",
        serde_json::to_vec(&tiendo_tests::counts("o1", "smartphone_adults", "883", "2024-06", 150, 200)).expect("json"),
        None,
        "o1",
    )
    .await;
    tokio::time::timeout(Duration::from_secs(20), province.next())
        .await
        .expect("the province's figure is announced")
        .expect("subscription open");

    tiendo_store::entity::outbox::Entity::delete_by_id(id).exec(&app.db).await.expect("remove the row");
    wait_for(0.0, "back to 0 once the row is gone").await;
    app.wait_idle().await;
    app.cleanup().await;
}

/// Issue 15, change 17: on PostgreSQL a transaction's body, past the size at which PostgreSQL
/// compresses a value, is compressed with LZ4 (not `pglz`); the migration's way down puts
/// the column's default back, and the body reads the same either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_outbox_bodies_are_compressed_with_lz4_and_the_migration_undoes_it() {
    let app = TestApp::namespace(Db::Postgres).await;
    let query = |sql: &'static str| {
        let db = app.db.clone();
        async move {
            let row = db
                .query_one(Statement::from_string(DatabaseBackend::Postgres, sql))
                .await
                .expect("query")
                .expect("a row");
            row.try_get_by_index::<Option<String>>(0).expect("text")
        }
    };
    let column = "SELECT attcompression::text FROM pg_attribute \
                  WHERE attrelid = 'outbox_batches'::regclass AND attname = 'body'";
    let stored = "SELECT pg_column_compression(body) FROM outbox_batches WHERE service = 'outbox-test'";
    assert_eq!(query(column).await.as_deref(), Some("l"), "the column asks for LZ4");

    let messages: Vec<Outgoing> = (0..200).map(|n| message(&app, n)).collect();
    let tx = tiendo_store::begin(&app.db).await.expect("begin");
    tiendo_stateful::outbox::enqueue(&*tx, SERVICE, messages.clone()).await.expect("enqueue");
    tx.commit().await.expect("commit");
    assert_eq!(query(stored).await.as_deref(), Some("lz4"), "the body is stored compressed with LZ4");
    let read = || async {
        let rows = outbox::pending(&app.db, SERVICE, 10).await.expect("pending");
        rows.into_iter().flat_map(|p| p.messages).map(|m| m.payload).collect::<Vec<_>>()
    };
    let payloads: Vec<Vec<u8>> = messages.iter().map(|m| m.payload.to_vec()).collect();
    assert!(read().await == payloads, "the 200 messages read back");

    migrate_down_through(&app.db, "m20261205_000002_outbox_lz4").await;
    assert_eq!(query(column).await.as_deref(), Some(""), "the column's default again");
    assert!(read().await == payloads, "the 200 messages read back after the way down");
    Migrator::up(&app.db, None).await.expect("up");
    assert_eq!(query(column).await.as_deref(), Some("l"));
    app.cleanup().await;
}

fn placeholders(backend: DatabaseBackend, n: usize) -> String {
    (1..=n)
        .map(|i| if backend == DatabaseBackend::Postgres { format!("${i}") } else { "?".to_owned() })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert_old(db: &DatabaseConnection, service: &str, m: &Message) {
    let backend = db.get_database_backend();
    let sql = format!(
        "INSERT INTO outbox (service, subject, msg_id, content_type, payload) VALUES ({})",
        placeholders(backend, 5)
    );
    let values: Vec<Value> = vec![
        service.into(),
        m.subject.clone().into(),
        m.msg_id.clone().into(),
        m.content_type.clone().into(),
        m.payload.clone().into(),
    ];
    db.execute(Statement::from_sql_and_values(backend, sql, values)).await.expect("an old outbox row");
}

async fn read_old(db: &DatabaseConnection) -> Vec<(String, Message)> {
    let sql = "SELECT service, subject, msg_id, content_type, payload FROM outbox ORDER BY id";
    let rows = db.query_all(Statement::from_string(db.get_database_backend(), sql)).await.expect("the old table");
    rows.iter()
        .map(|r| {
            let m = Message {
                subject: r.try_get("", "subject").expect("subject"),
                msg_id: r.try_get("", "msg_id").expect("msg_id"),
                content_type: r.try_get("", "content_type").expect("content_type"),
                payload: r.try_get("", "payload").expect("payload"),
            };
            (r.try_get("", "service").expect("service"), m)
        })
        .collect()
}
