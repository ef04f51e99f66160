//! Store-stage benchmark (run by `scripts/bench`): the stage alone (no broker, no rules) against
//! a real VictoriaMetrics on loopback. Sustained points/s into the server, then spill (server
//! stopped: points/s to the disk spool, fsync per batch) and replay (server back: points/s from
//! the spool). Prints one `name value` line per figure.
//!
//! usage: series-bench [--quick]

use gridsentry::flow::{self, Ack, Inbound};
use gridsentry::metrics::Metrics;
use gridsentry::series::{self, Influx, Settings};
use gridsentry::watchdog::Progress;
use gridsentry_sensors::*;
use gridsentry_tests::victoria::Victoria;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn inbound(i: u64) -> Inbound {
    let dev = i % 1000;
    let header = Header {
        site: Id::new("bench").unwrap(),
        device: Id::new(&format!("d{dev}")).unwrap(),
        boot_id: 1,
        seq: (i / 1000) as u32,
        time: Timestamp::Utc(1_764_072_000_000 + i),
        historical: false,
    };
    let reading = Reading { header, body: Body::Noise(NoiseReport::levels(60.0, 65.0)) };
    let topic = Topic::new(reading.header.site.clone(), reading.header.device.clone(), Stream::Noise);
    Inbound::new(topic, reading, Default::default(), 0, Ack::None)
}

async fn feed(tx: &series::SeriesSender, from: u64, n: u64) {
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(512) {
        tx.send(chunk.iter().map(|&i| inbound(i)).collect()).unwrap();
        tokio::task::yield_now().await;
    }
}

async fn until(counter: &AtomicU64, n: u64) -> Duration {
    let t = Instant::now();
    while counter.load(Relaxed) < n {
        assert!(t.elapsed() < Duration::from_secs(600), "stuck at {}", counter.load(Relaxed));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    t.elapsed()
}

#[tokio::main]
async fn main() {
    let n: u64 = if std::env::args().any(|a| a == "--quick") { 100_000 } else { 500_000 };
    let mut vm = Victoria::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        batch_lines: 5000,
        linger: Duration::from_millis(20),
        retry_initial: Duration::from_millis(100),
        retry_max: Duration::from_millis(500),
        spool_dir: dir.path().join("spool"),
        spool_max_bytes: 4 << 30,
        tags: vec![("grid".into(), "g12".into())],
        db: dir.path().join("orders.db"),
        readings_max_age: None,
    };
    let writer = Influx::new(&vm.url(), "bench", "bench", "", Duration::from_secs(5)).unwrap();
    let metrics = Arc::new(Metrics::default());
    let (acks, mut acks_rx) = flow::channel(Progress::new("acks"));
    tokio::spawn(async move { while acks_rx.recv().await.is_some() {} });
    let (tx, handle) =
        series::spawn(writer, settings, acks, metrics.clone(), Progress::new("series"), |_| {}).unwrap();

    let t = Instant::now();
    feed(&tx, 0, n).await;
    until(&metrics.series_written, n).await;
    println!("series_points_per_s {:.0}", n as f64 / t.elapsed().as_secs_f64());

    vm.stop();
    let t = Instant::now();
    feed(&tx, n, n).await;
    until(&metrics.series_spilled, n - 5000).await; // the batch in flight when it failed may be counted late
    let spill = t.elapsed();
    println!(
        "series_spill_points_per_s {:.0}",
        metrics.series_spilled.load(Relaxed) as f64 / spill.as_secs_f64()
    );
    println!("series_spill_mb {:.1}", metrics.series_queue_bytes.load(Relaxed) as f64 / 1e6);

    vm.start_again();
    let before = metrics.series_replayed.load(Relaxed);
    let queued = metrics.series_queue_points.load(Relaxed);
    let t = Instant::now();
    until(&metrics.series_replayed, before + queued).await;
    println!("series_replay_points_per_s {:.0}", queued as f64 / t.elapsed().as_secs_f64());
    drop(tx);
    let _ = tokio::task::spawn_blocking(move || handle.join()).await;
}
