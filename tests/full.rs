//! Full disks and oversize input (issue 14): the JetStream store refusing messages, the
//! database's disk full, a message larger than the server takes. A department gets a clear
//! failure or its messages wait; nothing acknowledged is lost; the services recover by
//! themselves when there is room again. Also where SQLite keeps its temporary files, and
//! who copies its WAL into the database file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tiendo_bus::async_nats::jetstream::stream::DiscardPolicy;
use tiendo_bus::StreamKind;
use tiendo_tests::story::{check, story};
use tiendo_tests::{Db, TestApp};

const MAX_DELIVER: i64 = 2;

async fn publish_all(app: &mut TestApp, messages: &[serde_json::Value]) {
    for m in messages {
        app.publish("dic", m).await;
    }
}

async fn dead_letters(app: &TestApp) -> f64 {
    let mut total = 0.0;
    for service in ["ingest", "validation", "aggregation", "alerting"] {
        total += app.metric("tiendo_dead_letters_total", &[("service", service)]).await.unwrap_or(0.0);
    }
    total
}

/// Sets the stream's byte limit (refusing what does not fit), or lifts it.
async fn limit(app: &TestApp, kind: StreamKind, max_bytes: Option<i64>) {
    let mut stream = app.bus.js.get_stream(app.bus.names.stream(kind)).await.unwrap();
    let info = stream.info().await.unwrap();
    let mut config = info.config.clone();
    config.max_bytes = max_bytes.unwrap_or(-1);
    config.discard = if max_bytes.is_some() { DiscardPolicy::New } else { DiscardPolicy::Old };
    app.bus.js.update_stream(config).await.unwrap();
}

async fn stream_bytes(app: &TestApp, kind: StreamKind) -> i64 {
    let mut stream = app.bus.js.get_stream(app.bus.names.stream(kind)).await.unwrap();
    stream.info().await.unwrap().state.bytes as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_jetstream_store_holds_messages_and_tells_departments_then_recovers_by_itself() {
    let mut app = TestApp::namespace_with(Db::Sqlite, |s| s.pipeline.max_deliver = MAX_DELIVER).await;
    app.restart().await;
    let story = story(2_000, 50);
    let half = story.messages.len() / 2;
    publish_all(&mut app, &story.messages[..half]).await;
    app.wait_idle().await;

    // The stream between ingest and validation is full: ingest cannot pass anything on.
    limit(&app, StreamKind::Received, Some(stream_bytes(&app, StreamKind::Received).await)).await;
    publish_all(&mut app, &story.messages[half..]).await;
    // Far longer than `max_deliver` failed attempts would take (0.5 s, then 1 s).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let waiting = tiendo_testkit::idle::backlog(&app.bus).await.unwrap();
    assert!(waiting > 0, "the messages wait in the pipeline");
    assert_eq!(dead_letters(&app).await, 0.0, "holding is not failing");

    // A department publishing into a full ingest stream is told so, in words.
    limit(&app, StreamKind::Ingest, Some(stream_bytes(&app, StreamKind::Ingest).await)).await;
    let refused = app
        .bus
        .js
        .publish(app.bus.names.ingest("dic"), serde_json::json!([]).to_string().into())
        .await
        .unwrap()
        .await
        .expect_err("a full stream refuses the publish");
    assert!(refused.to_string().contains("maximum bytes"), "{refused}");

    // Room again: everything flows on by itself, nothing lost, nothing twice.
    limit(&app, StreamKind::Ingest, None).await;
    limit(&app, StreamKind::Received, None).await;
    app.wait_idle().await;
    check(&app, &story).await;
    assert_eq!(dead_letters(&app).await, 0.0);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_the_server_takes_is_refused_to_the_sender() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let max = app.bus.client.server_info().max_payload;
    let huge = vec![b' '; max + 1];
    let refused = app.bus.js.publish(app.bus.names.ingest("dic"), huge.into()).await;
    let refused = match refused {
        Err(e) => e.to_string(),
        Ok(ack) => ack.await.expect_err("the server refuses it").to_string(),
    };
    assert!(refused.contains("payload size"), "{refused}");
    app.cleanup().await;
}

/// A small tmpfs, mounted for the test and unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("tiendo-full-{}", tiendo_testkit::namespace::unique("fs")));
        std::fs::create_dir_all(&dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root (CI runs as root): mount exited {status}");
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fills the file system holding `dir` with a file, up to the last byte it takes.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_disk_holds_messages_then_recovers_by_itself() {
    let disk = Tmpfs::mount("24m");
    let file = disk.path().join("tiendo.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let mut app = TestApp::namespace_with(Db::Sqlite, |s| {
        s.database.url = url.into();
        s.pipeline.max_deliver = MAX_DELIVER;
    })
    .await;
    app.restart().await;
    let story = story(4_000, 50);
    let third = story.messages.len() / 3;
    publish_all(&mut app, &story.messages[..third]).await;
    app.wait_idle().await;

    // No room left anywhere: the write-ahead log emptied to nothing, the disk filled up.
    use tiendo_store::sea_orm::ConnectionTrait;
    app.db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
    let filler = fill(disk.path());
    publish_all(&mut app, &story.messages[third..]).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let waiting = tiendo_testkit::idle::backlog(&app.bus).await.unwrap();
    assert!(waiting > 0, "the messages wait for room");
    assert_eq!(dead_letters(&app).await, 0.0, "a full disk is an outage, not a failing message");

    std::fs::remove_file(filler).unwrap();
    app.wait_idle().await;
    check(&app, &story).await;
    assert_eq!(dead_letters(&app).await, 0.0);
    app.cleanup().await;
}

/// An SQLite database opened as the services open theirs, in `dir`.
async fn sqlite_in(dir: &tempfile::TempDir) -> tiendo_store::sea_orm::DatabaseConnection {
    let mut settings = tiendo_settings::Settings::defaults().database;
    settings.url = format!("sqlite://{}?mode=rwc", dir.path().join("pragmas.db").display()).into();
    tiendo_store::connect(&settings).await.unwrap()
}

/// Issue 15, change 14: SQLite keeps its temporary files in memory (a multi-row statement's
/// journal spilled to a file past 64 KiB, a write per page), and its page cache holds a
/// transaction of 5,000 observations (16 MiB, not 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_its_statement_journals_in_memory_and_a_page_cache_of_16_mib() {
    use tiendo_store::sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_in(&dir).await;
    let pragma = |name: &'static str| {
        let db = db.clone();
        async move {
            let row = db.query_one(Statement::from_string(db.get_database_backend(), format!("PRAGMA {name}")));
            row.await.unwrap().unwrap().try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(pragma("temp_store").await, 2, "2 is MEMORY");
    assert_eq!(pragma("cache_size").await, -16 * 1024, "negative: KiB");
}

/// Issue 15, change 26: `tiendo up` on SQLite copies what its transactions commit into the
/// database file from a connection of its own, long before the transactions' connection would
/// by itself (at 64 MiB of WAL): after a few observations the file's pages change only if
/// that checkpointer runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_tiendo_up_copies_the_wal_into_the_database_file_in_the_background() {
    let mut app = TestApp::spawn(Db::Sqlite).await;
    let url = app.settings.database.url.expose().to_owned();
    let file = PathBuf::from(url.trim_start_matches("sqlite://").split('?').next().unwrap());
    // What the migrations wrote is copied by the first passes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = std::fs::read(&file).unwrap();
    for i in 0..20 {
        let unit = ["883", "884", "885", "886"][i % 4];
        let m = tiendo_tests::counts(&format!("wal-{i}"), "smartphone_adults", unit, "2024-06", 100 + i as u64, 200);
        app.publish("dic", &m).await;
    }
    app.wait_idle().await;
    app.wait_for("the database file to take in the WAL", Duration::from_secs(5), |_| {
        std::fs::read(&file).unwrap() != before
    })
    .await;
    app.cleanup().await;
}

/// Issue 15, change 16: the bundled SQLite is built without its memory statistics (one global
/// mutex around every allocation), by `LIBSQLITE3_FLAGS` in `.cargo/config.toml`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_sqlite_is_built_without_its_memory_statistics() {
    use tiendo_store::sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_in(&dir).await;
    let rows = db.query_all(Statement::from_string(db.get_database_backend(), "PRAGMA compile_options")).await.unwrap();
    let options: Vec<String> = rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "compiled with {options:?}");
}
