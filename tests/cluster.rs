//! tiendo on a three-node NATS cluster, every stream at three replicas (`nats.replicas = 3`,
//! `nats.url` the seed list): the node leading the ingest stream is SIGKILLed while a
//! department publishes, and started again later. Nothing acknowledged is lost or counted
//! twice, and the services keep working on the two nodes left. A stream made before the
//! move to three replicas is raised to them, never lowered.

use std::time::{Duration, Instant};

use tiendo_bus::names::STAGES;
use tiendo_bus::{Bus, StreamKind};
use tiendo_settings::Settings;
use tiendo_testkit::namespace::unique;
use tiendo_testkit::{idle, NatsCluster};
use tiendo_tests::story::{check, check_db, story};
use tiendo_tests::{Db, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// Publishes `messages` as `dic` and returns the longest any one took to be stored: while
/// a stream elects a new leader, the harness's publish retries until a receipt comes back.
async fn publish_all(app: &mut TestApp, messages: &[serde_json::Value]) -> Duration {
    let mut longest = Duration::ZERO;
    for m in messages {
        let started = Instant::now();
        app.publish("dic", m).await;
        longest = longest.max(started.elapsed());
    }
    longest
}

/// Waits until every stage has nothing pending. Unlike `wait_idle`, a consumer's info that
/// does not come back (for some seconds after a failover, even while the consumer delivers)
/// is asked for again rather than failing the test.
async fn settle(app: &TestApp) {
    let deadline = Instant::now() + WAIT;
    let mut quiet = 0;
    let mut last = String::new();
    while quiet < 2 {
        assert!(Instant::now() < deadline, "the pipeline did not settle on the nodes left: {last}");
        match idle::stages(&app.bus).await {
            Ok(stages) if stages.iter().all(|(_, pending, unacked)| pending + unacked == 0) => quiet += 1,
            Ok(stages) => (quiet, last) = (0, format!("{stages:?}")),
            Err(e) => (quiet, last) = (0, e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many of the namespace's streams `node` leads.
async fn streams_led_by(cluster: &NatsCluster, app: &TestApp, node: usize) -> usize {
    let mut led = 0;
    for kind in StreamKind::ALL {
        led += usize::from(cluster.leader_of(&app.bus.js, &app.bus.names.stream(kind)).await.unwrap() == node);
    }
    led
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_streams_leader_killed_mid_stream_loses_nothing_and_counts_nothing_twice() {
    let mut cluster = NatsCluster::start().await.unwrap();
    let seeds = cluster.url();
    let mut app = TestApp::namespace_with(Db::Sqlite, |s| {
        s.nats.url = seeds.into();
        s.nats.replicas = 3;
    })
    .await;
    app.restart().await;
    for kind in StreamKind::ALL {
        let name = app.bus.names.stream(kind);
        let stream = app.bus.js.get_stream(&name).await.unwrap();
        assert_eq!(stream.cached_info().config.num_replicas, 3, "{name} has a copy on every node");
    }

    let story = story(4_000, 100);
    let third = story.messages.len() / 3;
    publish_all(&mut app, &story.messages[..third]).await;
    let deadline = Instant::now() + WAIT;
    while app.observations().await == 0 {
        assert!(Instant::now() < deadline, "aggregation applied nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The node the departments' receipts come from, killed while the first third is still
    // going through the stages.
    let ingest = app.bus.names.stream(StreamKind::Ingest);
    let leader = cluster.leader_of(&app.bus.js, &ingest).await.unwrap();
    let led = streams_led_by(&cluster, &app, leader).await;
    let in_flight = idle::backlog(&app.bus).await.unwrap();
    assert!(in_flight > 0, "the kill lands while messages are in the stages");
    cluster.kill(leader).await.unwrap();
    let killed = Instant::now();
    let longest = publish_all(&mut app, &story.messages[third..2 * third]).await;
    let published = killed.elapsed();

    // Two nodes are a quorum: the stream has a new leader and the services carry on.
    let deadline = Instant::now() + WAIT;
    let new_leader = loop {
        if let Ok(node) = cluster.leader_of(&app.bus.js, &ingest).await {
            break node;
        }
        assert!(Instant::now() < deadline, "no new leader for {ingest}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(new_leader, leader, "a node that is down cannot lead");
    let so_far = story.prefix(2 * third);
    while app.observations().await < so_far.unique_ids as u64 {
        assert!(Instant::now() < deadline, "the services stopped on the nodes left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let applied = killed.elapsed();
    settle(&app).await;
    check_db(&app.db, &so_far).await;

    cluster.start_node(leader).await.unwrap();
    publish_all(&mut app, &story.messages[2 * third..]).await;
    app.wait_idle().await;
    check(&app, &story).await;
    for (_, service) in STAGES {
        let dead = app.metric("tiendo_dead_letters_total", &[("service", service)]).await;
        assert_eq!(dead, Some(0.0), "{service} gave nothing up");
    }
    // The restarted node caught up: every stream has its three copies again.
    for kind in StreamKind::ALL {
        cluster.wait_in_sync(&app.bus.js, &app.bus.names.stream(kind), WAIT).await.unwrap();
    }
    eprintln!(
        "killed {} (it led {led} of {} streams) with {in_flight} messages in the stages; {} took over {ingest}; \
         {third} messages published after the kill took {published:?}, the slowest {longest:?}; \
         everything published so far was applied {applied:?} after the kill",
        cluster.server_name(leader),
        StreamKind::ALL.len(),
        cluster.server_name(new_leader),
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_one_copy_is_raised_to_nats_replicas_with_its_messages_and_never_lowered() {
    let cluster = NatsCluster::start().await.unwrap();
    let mut settings = Settings::defaults();
    settings.nats.url = cluster.url().into();
    settings.nats.prefix = unique("r");
    let one = Bus::connect(&settings.nats, "tiendo-test-r1").await.unwrap();
    let name = one.names.stream(StreamKind::Ingest);
    let created = one.ensure_stream(StreamKind::Ingest, &settings.pipeline).await.unwrap();
    assert_eq!(created.cached_info().config.num_replicas, 1);
    one.js.publish(one.names.ingest("dic"), "[]".into()).await.unwrap().await.unwrap();

    settings.nats.replicas = 3;
    let three = Bus::connect(&settings.nats, "tiendo-test-r3").await.unwrap();
    let raised = three.ensure_stream(StreamKind::Ingest, &settings.pipeline).await.unwrap();
    assert_eq!(raised.cached_info().config.num_replicas, 3);
    assert_eq!(raised.cached_info().state.messages, 1, "the message published before is kept");
    cluster.wait_in_sync(&three.js, &name, WAIT).await.unwrap();

    let again = one.ensure_stream(StreamKind::Ingest, &settings.pipeline).await.unwrap();
    assert_eq!(again.cached_info().config.num_replicas, 3, "a bus asking for one copy leaves three");
    three.js.delete_stream(&name).await.unwrap();
}
