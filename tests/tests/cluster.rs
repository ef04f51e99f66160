//! Cluster mode on real engines: mosquitto, a three-node nats-server cluster with JetStream, and
//! PostgreSQL, each started here on loopback ports. Faults are SIGKILLs.

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use gridsentry_sensors::*;
use gridsentry_tests::loadgen::{self, Messages};
use gridsentry_tests::nats::Nats;
use gridsentry_tests::{binary, noise, DaemonProcess, Mosquitto};
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: u64 = 1_764_072_000_000;
const SITES: u64 = 30;

/// Reading `i`: site `i % SITES`, one device per site, boot 1, sequence number `i / SITES`.
fn reading(i: u64, boot: u32) -> (String, Vec<u8>) {
    let (site, device) = (format!("site-{}", i % SITES), "dev-1".to_string());
    let header = Header {
        site: Id::new(&site).unwrap(),
        device: Id::new(&device).unwrap(),
        boot_id: boot,
        seq: (i / SITES) as u32,
        time: Timestamp::Utc(T0 + i),
        historical: false,
    };
    let payload = codec::encode_vec(Format::Json, &Reading { header, body: noise(50.0) }).unwrap();
    (format!("gs/v1/{site}/{device}/noise"), payload)
}

fn messages(boot: u32) -> Messages {
    Arc::new(move |i| reading(i, boot))
}

/// `gridsentry relay` on `broker` into `nats`, as a child process killed when dropped.
fn relay(dir: &std::path::Path, broker: u16, nats: &Nats, partitions: u32) -> DaemonProcess {
    let cfg = dir.join("relay.toml");
    let urls: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    std::fs::write(
        &cfg,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\nclient_id = \"relay-1\"\n\n\
             [cluster]\nnats = [{}]\npartitions = {partitions}\nreplicas = 3\n",
            urls.join(", ")
        ),
    )
    .unwrap();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("relay.log")).unwrap();
    DaemonProcess::new(
        Command::new(binary())
            .args(["relay", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Every message of the stream: (subject, message id).
async fn stream_contents(js: &jetstream::Context, expect: usize) -> Vec<(String, String)> {
    let stream = js.get_stream("GS_READINGS").await.unwrap();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while out.len() < expect {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await else { break };
        let m = m.unwrap();
        let id =
            m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.to_string()).unwrap_or_default();
        out.push((m.subject.to_string(), id));
    }
    out
}

/// Messages in the stream now.
async fn stream_len(js: &jetstream::Context) -> u64 {
    match js.get_stream("GS_READINGS").await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Waits until the stream holds `n` messages (panics after 60 s with what it holds).
async fn wait_stream(js: &jetstream::Context, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = js.get_stream("GS_READINGS").await {
            if let Ok(info) = s.info().await {
                if info.state.messages >= n {
                    assert_eq!(info.state.messages, n, "more messages than readings: duplicates");
                    return;
                }
                assert!(Instant::now() < deadline, "stream holds {} of {n}", info.state.messages);
            }
        }
        assert!(Instant::now() < deadline, "no stream GS_READINGS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_acks_what_jetstream_holds_partitions_by_site_and_never_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(4);
    let broker = Mosquitto::start_saving_every_change();
    let mut relay_process = relay(dir.path(), broker.port, &nats, 4);
    let addrs: Vec<async_nats::ServerAddr> = nats.urls().iter().map(|u| u.parse().unwrap()).collect();
    let js = jetstream::new(async_nats::connect(addrs).await.unwrap());
    // A first reading proves the relay subscribed (the broker keeps nothing for nobody).
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_len(&js).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the relay never subscribed: {}\n{}",
            std::fs::read_to_string(dir.path().join("relay.log")).unwrap_or_default(),
            nats.log(0)
        );
        loadgen::publish(broker.port, 1, messages(9), 0, 1, None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stream_len(&js).await, 1, "the probe once, however often it was sent");

    // 3000 readings of 30 sites.
    loadgen::publish(broker.port, 2, messages(1), 0, 3000, None).await;
    wait_stream(&js, 3001).await;
    let contents = stream_contents(&js, 3001).await;
    let mut partition_of: HashMap<String, String> = HashMap::new();
    for (subject, _) in &contents {
        let t: Vec<&str> = subject.split('.').collect();
        assert_eq!((t[0], t[1]), ("gs", "p"), "{subject}");
        let previous = partition_of.insert(t[3].to_string(), t[2].to_string());
        assert!(previous.is_none_or(|p| p == t[2]), "site {} in two partitions", t[3]);
    }
    let used: HashSet<&String> = partition_of.values().collect();
    assert!(used.len() > 1 && used.iter().all(|p| p.parse::<u32>().unwrap() < 4), "{used:?}");

    // The same readings again (a device resending): dropped by message id.
    loadgen::publish(broker.port, 2, messages(1), 0, 500, None).await;
    loadgen::publish(broker.port, 1, messages(2), 0, 1, None).await;
    wait_stream(&js, 3002).await;

    // The relay SIGKILLed while readings flow: what it had not acked comes again from the
    // broker, what it had published is not doubled.
    let publishing = tokio::spawn(loadgen::publish(broker.port, 2, messages(3), 0, 3000, Some(3000.0)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_len(&js).await < 3002 + 300 {
        assert!(Instant::now() < deadline, "the relay does not move readings");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay_process.kill().unwrap();
    relay_process.wait().unwrap();
    let relay_process = relay(dir.path(), broker.port, &nats, 4);

    // One NATS node SIGKILLed: the stream keeps a quorum of two.
    nats.kill(1);
    publishing.await.unwrap();
    loadgen::publish(broker.port, 1, messages(4), 0, 1000, None).await;
    wait_stream(&js, 3002 + 3000 + 1000).await;
    let contents = stream_contents(&js, 7002).await;
    let ids: HashSet<&String> = contents.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 7002, "every reading once");
    for i in [0, 2999] {
        let (_, payload) = reading(i, 3);
        let r = codec::decode(&payload).unwrap();
        let id = format!("{}/{}/3/{}/noise", r.header.site.as_str(), r.header.device.as_str(), r.header.seq);
        assert!(ids.contains(&id), "{id} missing");
    }
    nats.restart(1);
    drop(relay_process);
}
