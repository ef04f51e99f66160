//! The API under a held-connection attack and over TLS, against the real binary: 10,000 idle
//! connections and a slowloris do not delay a red order's webhook nor stop the API answering
//! (they are closed after the header timeout and capped per address); TLS with a test CA, with
//! HSTS and a `Secure` session cookie; plain HTTP on it fails.

use gridsentry::access::{hash_password, Role};
use gridsentry::orders::{SlaTable, Store};
use gridsentry_tests::daemon::{Device, NOISE_RULE, WAIT};
use gridsentry_tests::{binary, config, make_ca, noise, spawn_daemon, Hooks, Mosquitto, TOKEN};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from another loopback address (127.0.0.2, ...): the attacker's own.
async fn connect_from(source: &str, port: u16) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(format!("{source}:0").parse().unwrap())?;
    s.connect(format!("127.0.0.1:{port}").parse().unwrap()).await
}

/// Whether the server closed `s` (EOF or reset) within `within`.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A config file whose noise rule raises red orders, with `daemon` added to `[daemon]`.
fn red_config(
    dir: &std::path::Path,
    broker: u16,
    port: u16,
    hooks: &str,
    daemon: &str,
) -> std::path::PathBuf {
    let rules = NOISE_RULE.replace("colour = \"yellow\"", "colour = \"red\"");
    let text = config(dir, broker, port, hooks, &rules).replace("[mqtt]", &format!("{daemon}\n\n[mqtt]"));
    let cfg = dir.join("gridsentry.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_idle_connections_and_a_slowloris_neither_delay_a_red_webhook_nor_the_api() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let (dir, port) = (tempfile::tempdir().unwrap(), gridsentry_tests::free_port());
    let cfg =
        red_config(dir.path(), broker.port, port, &hooks.url, "header_timeout_s = 1\nidle_timeout_s = 3");
    let _daemon = spawn_daemon(&binary(), &cfg, &dir.path().join("log"));
    gridsentry_tests::wait_ready(port).await;

    // The attacker: 10,000 connections that send nothing, from 127.0.0.2.
    let mut idle = Vec::new();
    let mut refused = 0;
    for _ in 0..10_000 {
        match connect_from("127.0.0.2", port).await {
            Ok(s) => idle.push(s),
            Err(_) => refused += 1,
        }
    }
    // And a slowloris from 127.0.0.3: a header line every 300 ms, never the end of the headers.
    let mut slow = connect_from("127.0.0.3", port).await.unwrap();
    slow.write_all(b"GET /api/v1/orders HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let slowloris = tokio::spawn(async move {
        let started = Instant::now();
        for i in 0..200 {
            if slow.write_all(format!("X-{i}: y\r\n").as_bytes()).await.is_err() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        None
    });

    // A red order meanwhile: its webhook arrives, and the API answers a person's request.
    let sent = Instant::now();
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..=11 {
        dev.send(seq, noise(85.0)).await;
    }
    let hook = hooks.wait_for(1, WAIT).await;
    assert_eq!(hook[0].body["colour"], "red", "{:?}", hook[0].body);
    println!(
        "red webhook {} ms after the readings, 10,000 idle connections held ({refused} refused)",
        sent.elapsed().as_millis()
    );
    let api = format!("http://127.0.0.1:{port}");
    let r =
        reqwest::Client::new().get(format!("{api}/api/v1/orders")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(reqwest::get(format!("{api}/readyz")).await.unwrap().status(), 200);

    // The server closed the idle ones (header timeout) and the slowloris.
    let mut still_open = 0;
    for s in idle.iter_mut().take(200) {
        if !closed_by_server(s, Duration::from_secs(10)).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "idle connections left open");
    let cut = slowloris.await.unwrap().expect("the slowloris connection was cut");
    assert!(cut < Duration::from_secs(30), "slowloris cut after {cut:?}");
    println!("slowloris cut after {} ms", cut.as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_tls_with_a_test_ca_sends_hsts_and_a_secure_cookie() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path());
    let port = gridsentry_tests::free_port();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let text = config(dir.path(), broker.port, port, &hooks.url, NOISE_RULE).replace(
        "http = \"127.0.0.1",
        &format!(
            "tls = {{ cert = {{ file = \"{}\" }}, key = {{ file = \"{}\" }} }}\nhttp = \"127.0.0.1",
            cert.display(),
            key.display()
        ),
    );
    let cfg = dir.path().join("gridsentry.toml");
    std::fs::write(&cfg, &text).unwrap();
    // A world-readable key is refused at start, naming it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(binary()).args(["run", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server.key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A person to log in as (the daemon makes the database at start; add them before).
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let mut s = Store::open(&dir.path().join("data/orders.db"), SlaTable::default(), Vec::new()).unwrap();
    s.person_add("li", Role::Operator, &[], &hash_password("li-long-password").unwrap(), "test", 1).unwrap();
    drop(s);
    let _daemon = spawn_daemon(&binary(), &cfg, &dir.path().join("log"));
    let log = dir.path().join("log");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < WAIT,
            "not listening: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.pem")).unwrap()).unwrap();
    let https = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + WAIT;
    let ready = loop {
        match https.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status() == 200 => break r,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("not ready over TLS: {other:?}"),
        }
    };
    assert!(ready.headers()["strict-transport-security"].to_str().unwrap().contains("max-age="));
    // The data directory and its files were made under the test's umask (022, 0755/0644): the
    // daemon made them its user's only.
    let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode("data"), mode("data/orders.db"), mode("data/gridsentry.lock")), (0o700, 0o600, 0o600));
    let login = https
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({ "name": "li", "password": "li-long-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Without the CA the certificate is not trusted; plain HTTP to the TLS port gets no answer.
    assert!(reqwest::get(format!("{base}/readyz")).await.is_err(), "trusted without the CA");
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_a_red_webhook_waits_without_spending_attempts_then_goes_out() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let (dir, port) = (tempfile::tempdir().unwrap(), gridsentry_tests::free_port());
    // The attacker's connections are let in (a high cap, a long header timeout) so that they use
    // up the daemon's 96 file descriptors; two attempts would dead-letter the order's webhook.
    let keys = "header_timeout_s = 600\nidle_timeout_s = 600\nmax_connections = 1000";
    let cfg = red_config(dir.path(), broker.port, port, &hooks.url, keys);
    let text = std::fs::read_to_string(&cfg).unwrap().replace("max_attempts = 4", "max_attempts = 2");
    std::fs::write(&cfg, text).unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let mut daemon = gridsentry_tests::DaemonProcess::new(
        std::process::Command::new("prlimit")
            .args(["--nofile=96:96", "--"])
            .arg(binary())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    gridsentry_tests::wait_ready(port).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    dev.send(0, noise(50.0)).await;
    // Hold connections until the daemon cannot take more (it accepts none: its table is full).
    let mut held = Vec::new();
    for _ in 0..200 {
        match tokio::time::timeout(Duration::from_millis(500), connect_from("127.0.0.2", port)).await {
            Ok(Ok(s)) => held.push(s),
            _ => break,
        }
    }
    let db = || rusqlite::Connection::open(dir.path().join("data/orders.db")).unwrap();
    for seq in 1..=12 {
        dev.send(seq, noise(85.0)).await;
    }
    // The notifier could not open a socket: the outbox says why, and no attempt was spent.
    let deadline = Instant::now() + WAIT;
    let why = loop {
        let row: Option<(String, i64)> = db()
            .query_row(
                "SELECT last_error, attempts FROM outbox WHERE receiver = 'grid' AND last_error IS NOT NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        if let Some(r) = row {
            break r;
        }
        assert!(Instant::now() < deadline, "no delivery failed: {} held", held.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(why.0.starts_with("local: ") && why.0.contains("Too many open files"), "{why:?}");
    assert_eq!(why.1, 0, "an attempt was spent on this machine's own failure");
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon survived");
    // The attacker goes: the webhook goes out, once, not dead-lettered.
    drop(held);
    let hook = hooks.wait_for(1, WAIT).await;
    assert_eq!((hook[0].receiver.as_str(), &hook[0].body["colour"]), ("grid", &serde_json::json!("red")));
    let dead: i64 =
        db().query_row("SELECT COUNT(*) FROM outbox WHERE status = 'dead'", [], |r| r.get(0)).unwrap();
    assert_eq!(dead, 0);
}
