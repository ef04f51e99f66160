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
    // Every family says what it is: HELP then TYPE, and the build and process families are there.
    let typed: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    for family in &typed {
        assert!(text.contains(&format!("# HELP {family} ")), "no HELP for {family}");
    }
    for family in [
        "gridsentry_build_info",
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "gridsentry_readings",
    ] {
        assert!(typed.contains(&family), "{family} missing:\n{text}");
    }
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics text");
    let mut exported = names(&text);
    // A counter family with no sample yet (no malformed message so far) still declares its
    // `_total` series.
    exported.extend(
        text.lines()
            .filter_map(|l| Some(format!("{}_total", l.strip_prefix("# TYPE ")?.strip_suffix(" counter")?))),
    );
    let missing: Vec<_> = wanted.difference(&exported).collect();
    assert!(missing.is_empty(), "dashboard queries metrics the daemon does not export: {missing:?}");
    println!("dashboard panels: {}", titles.join(" | "));
    d.stop().await;
}

/// Runs `gridsentry run` with `args` and `env` until ready, then SIGTERM; returns its stderr.
async fn run_logs(args: &[&str], env: &[(&str, &str)]) -> String {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let port = gridsentry_tests::free_port();
    let text = gridsentry_tests::config(dir.path(), broker.port, port, "http://127.0.0.1:9", NOISE_RULE);
    let cfg = dir.path().join("gridsentry.toml");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("stderr.log");
    let child = std::process::Command::new(gridsentry_tests::binary())
        .args(["run", "--config"])
        .arg(&cfg)
        .args(args)
        .envs(env.iter().copied())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    gridsentry_tests::wait_ready(port).await;
    gridsentry_tests::terminate(&mut Some(child));
    std::fs::read_to_string(&log).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_rust_log_and_the_flags_without_colour_off_a_terminal() {
    let text = run_logs(&[], &[("RUST_LOG", "debug")]).await;
    assert!(text.contains("DEBUG"), "RUST_LOG honoured:\n{text}");
    assert!(!text.contains('\u{1b}'), "no colour codes in a file:\n{text}");
    let json = run_logs(&["--log-format", "json", "--log-level", "info"], &[("RUST_LOG", "debug")]).await;
    let lines: Vec<serde_json::Value> =
        json.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["level"] != "DEBUG"), "--log-level wins over RUST_LOG");
    assert!(lines.iter().any(|l| l["target"].as_str().is_some_and(|t| t.starts_with("gridsentry"))));
}
