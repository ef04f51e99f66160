//! What a broken or foreign device sends, against real mosquitto, the daemon and a real
//! time-series server: clocks years off, and sequence numbers out of order.

use gridsentry::clock::now_ms;
use gridsentry_sensors::Timestamp;
use gridsentry_tests::daemon::{Daemon, Device, NOISE_RULE};
use gridsentry_tests::victoria::{Series, Victoria};
use gridsentry_tests::{noise, Hooks, Mosquitto};
use std::sync::atomic::Ordering::Relaxed;

fn with_influx(url: &str) -> String {
    format!(
        "{NOISE_RULE}\n[influx]\nurl = \"{url}\"\norg = \"city\"\nbucket = \"street\"\nlinger_ms = 5\n\
         retry_initial_ms = 50\nretry_max_ms = 200\n"
    )
}

fn samples(all: &[Series], name: &str) -> Vec<(i64, f64)> {
    let mut v: Vec<(i64, f64)> =
        all.iter().filter(|s| s.labels["__name__"] == name).flat_map(|s| s.samples.clone()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_years_off_neither_mutes_the_device_nor_loses_a_point() {
    let broker = Mosquitto::start();
    let vm = Victoria::start_without_dedup();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, &with_influx(&vm.url())).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    let year_ms = 365 * 86_400_000;
    let ahead = now_ms() + year_ms;
    // A box whose clock jumped a year ahead, then to 1970, then came right.
    dev.send_as(7, 0, Timestamp::Utc(ahead), noise(50.0)).await;
    dev.send_as(7, 1, Timestamp::Utc(5_000), noise(50.0)).await;
    let base = now_ms() - 60_000;
    for seq in 2..20 {
        dev.send_as(7, seq, Timestamp::Utc(base + u64::from(seq) * 1000), noise(75.0)).await;
    }
    let raised = d.next_change().await;
    assert_eq!((raised.rule.as_str(), raised.state.as_str()), ("plaza-noise", "raised"));
    d.wait(|r| r.metrics.series_written.load(Relaxed) >= 20).await;
    let m = &d.running().metrics;
    assert_eq!(m.clock_skew.each_ref().map(|c| c.load(Relaxed)), [1, 1], "[ahead, behind]");
    assert_eq!(m.stale.load(Relaxed), 0, "no reading after the jump was called stale");
    let url = format!("http://{}/metrics", d.running().http);
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(text.contains("gridsentry_clock_skew_total{direction=\"ahead\"} 1"), "{text}");
    let all = vm.export("noise_.*").await;
    let seqs = samples(&all, "noise_seq");
    assert_eq!(seqs.len(), 20, "every point stored, the mis-stamped ones at their receive time");
    assert!(seqs.iter().all(|(t, _)| (*t as u64) < ahead - year_ms / 2 && *t as u64 > base - 60_000));
    let mut flagged: Vec<u64> = samples(&all, "noise_device_time_ms").iter().map(|s| s.1 as u64).collect();
    flagged.sort();
    assert_eq!(flagged, vec![5_000, ahead], "the device's stamps kept");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_arrivals_are_applied_once_and_only_repeats_are_dropped() {
    let broker = Mosquitto::start();
    let vm = Victoria::start_without_dedup();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, &with_influx(&vm.url())).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-02", false).await;
    let base = now_ms() - 600_000;
    // A gateway interleaving buffered readings (3, 1, 2) with live ones, and one real repeat.
    for seq in [0u32, 4, 3, 5, 1, 2, 5, 6] {
        dev.send_as(9, seq, Timestamp::Utc(base + u64::from(seq) * 1000), noise(60.0)).await;
    }
    d.wait(|r| r.metrics.series_written.load(Relaxed) >= 7).await;
    d.wait(|r| r.metrics.duplicates.load(Relaxed) >= 1).await;
    let m = &d.running().metrics;
    assert_eq!(m.out_of_order.load(Relaxed), 3, "3, 1 and 2 arrived late");
    assert_eq!(m.duplicates.load(Relaxed), 1, "5 was sent twice");
    assert_eq!(m.readings[0].load(Relaxed), 7);
    let seqs: Vec<u32> =
        samples(&vm.export("noise_seq").await, "noise_seq").iter().map(|s| s.1 as u32).collect();
    assert_eq!(seqs, (0..7).collect::<Vec<_>>(), "each reading stored exactly once");
    d.stop().await;
}
