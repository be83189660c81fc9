//! Crashes: the services are killed where they stand (no graceful stop, nothing more acked)
//! in the middle of a stream of observations with revisions and duplicate event ids, and
//! restarted. At the end every figure equals the one computed here, independently, from what
//! was published, and every event id counts once.

use std::time::Duration;

use tiendo_tests::story::{check, story};
use tiendo_tests::{db_matrix, Db, TestApp};

async fn services_killed_mid_stream_lose_nothing_and_count_nothing_twice(db: Db) {
    let story = story(3_000, 50);
    let mut app = TestApp::spawn(db).await;
    let third = story.messages.len() / 3;
    for m in &story.messages[..third] {
        app.publish("dic", m).await;
    }
    while app.observations().await == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = app.http;
    app.crash().await;
    // Departments keep publishing while tiendo is down: JetStream keeps it.
    for m in &story.messages[third..2 * third] {
        app.publish("dic", m).await;
    }
    // Everything it ran is gone: its HTTP server answers no more, and nothing is applied.
    let applied = app.observations().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tiendo_tests::http_get(before, "/healthz").await.0, 0, "the crashed HTTP server still answers");
    assert_eq!(app.observations().await, applied, "a crashed instance still applies messages");
    app.restart().await;
    for m in &story.messages[2 * third..] {
        app.publish("dic", m).await;
    }
    // Kill it again while it works through the backlog.
    let applied = app.observations().await;
    while app.observations().await == applied {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.restart().await;
    app.wait_idle().await;
    check(&app, &story).await;
    app.cleanup().await;
}

db_matrix!(services_killed_mid_stream_lose_nothing_and_count_nothing_twice);
