//! The Grafana dashboard in deploy/ asks only for metrics the daemon exports: every
//! `gridsentry_*` name in its Prometheus queries appears in a running daemon's `/metrics`.

use gridsentry_tests::daemon::*;
use gridsentry_tests::{noise, Hooks, Mosquitto};
use std::collections::BTreeSet;

fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("gridsentry_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_queries_only_exported_metrics() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/gridsentry-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut wanted = BTreeSet::new();
    let mut titles = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        titles.push(p["title"].as_str().unwrap().to_string());
        for t in p["targets"].as_array().unwrap() {
            if let Some(expr) = t["expr"].as_str() {
                wanted.extend(names(expr));
            }
        }
    }
    assert!(wanted.len() >= 12, "{wanted:?}");

    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    dev.send(0, noise(60.0)).await;
    d.applied(1).await;
    let text =
        reqwest::get(format!("http://{}/metrics", d.running().http)).await.unwrap().text().await.unwrap();
    let exported = names(&text);
    let missing: Vec<_> = wanted.difference(&exported).collect();
    assert!(missing.is_empty(), "dashboard queries metrics the daemon does not export: {missing:?}");
    println!("dashboard panels: {}", titles.join(" | "));
    d.stop().await;
}
