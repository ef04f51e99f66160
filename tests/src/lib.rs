//! Harness for the workspace integration tests in `tests/tests/`: real servers on free loopback
//! ports, started by the test and stopped when dropped.
//!
//! - [`Mosquitto`]: Debian's broker with `max_queued_messages` raised (its default of 1000
//!   drops QoS 1 messages to a slow subscriber) and persistence on (sessions survive a restart).
//! - [`Hooks`]: an HTTP webhook receiver that records every request, checks its HMAC signature
//!   independently of the daemon's code, and can be told to fail or hang.
//! - [`modbus::Station`]: simulated Modbus devices (tokio-modbus servers, TCP or RTU on a socat
//!   pseudo-terminal pair).
//! - [`victoria::Victoria`]: Debian's VictoriaMetrics as the InfluxDB-v2-write server.
//! - [`config`]: a daemon config for these servers.

pub mod cluster;
pub mod daemon;
pub mod flips;
pub mod loadgen;
pub mod modbus;
mod mosquitto;
pub mod nats;
pub mod nodered;
pub mod ota_sim;
pub mod postgres;
pub mod receiver;
pub mod victoria;

pub use mosquitto::Mosquitto;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The HMAC key the test config gives every receiver.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The API token of the test config.
pub const TOKEN: &str = "test-api-token";

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts TCP connections on `port` (a server's readiness signal).
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a server process politely (SIGTERM, so it can save its state) and waits for it.
pub fn terminate(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let _ = c.wait();
    }
}

/// Kills a server process (SIGKILL) and waits for it: what a test leaves behind when it ends.
pub fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One webhook request as received.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Path segment: the receiver's name.
    pub receiver: String,
    /// `Idempotency-Key` header.
    pub key: String,
    /// The query string, if any (DingTalk's signature travels there).
    pub query: Option<String>,
    /// The signature header matched an HMAC computed here.
    pub signed: bool,
    /// The JSON body.
    pub body: serde_json::Value,
    /// The status this receiver answered.
    pub status: u16,
    /// When it arrived, UTC ms.
    pub received_ms: u64,
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// 204.
    Ok,
    /// This status.
    Fail(u16),
    /// Never answers (the client's timeout fires).
    Hang,
}

type HookState = (Arc<Mutex<Vec<Hook>>>, Arc<Mutex<Mode>>, watch::Sender<usize>);

/// A webhook receiver.
pub struct Hooks {
    /// Base URL; receivers post to `{url}/{name}`.
    pub url: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
    mode: Arc<Mutex<Mode>>,
    count: watch::Receiver<usize>,
}

impl Hooks {
    /// Serves on a free port.
    pub async fn start() -> Hooks {
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let (tx, count) = watch::channel(0);
        let state: HookState = (hooks.clone(), mode.clone(), tx);
        let app = axum::Router::new().route("/{receiver}", axum::routing::post(receive)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Hooks { url, hooks, mode, count }
    }

    /// Changes how it answers from now on.
    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }

    /// The requests since the last call, removed (a benchmark keeps hundreds of thousands from
    /// piling up; counts for [`Hooks::wait_for`] start again from zero).
    pub fn take(&self) -> Vec<Hook> {
        std::mem::take(&mut *self.hooks.lock().unwrap())
    }

    /// Waits until at least `n` requests have arrived (panics after `timeout`).
    pub async fn wait_for(&mut self, n: usize, timeout: Duration) -> Vec<Hook> {
        let waited = tokio::time::timeout(timeout, self.count.wait_for(|c| *c >= n)).await.is_ok();
        assert!(waited, "expected {n} webhook requests, got {}: {:#?}", self.all().len(), self.all());
        self.all()
    }

    /// Waits for the first request that `pred` accepts (panics after `timeout`).
    pub async fn wait_until(&mut self, pred: impl Fn(&Hook) -> bool, timeout: Duration) -> Hook {
        let hooks = self.hooks.clone();
        let found = || hooks.lock().unwrap().iter().find(|h| pred(h)).cloned();
        let waited = tokio::time::timeout(timeout, self.count.wait_for(|_| found().is_some())).await.is_ok();
        assert!(waited, "no such webhook request in {timeout:?}: {:#?}", self.all());
        found().unwrap()
    }
}

async fn receive(
    State((hooks, mode, count)): State<HookState>,
    Path(receiver): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mode = *mode.lock().unwrap();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let signed = gridsentry::notify::sign::verify(
        SECRET,
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        &body,
        now_s,
    )
    .is_ok();
    let status = match mode {
        Mode::Ok => 204,
        Mode::Fail(s) => s,
        Mode::Hang => 0,
    };
    let received_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let receiver_name = receiver.clone();
    let hook = Hook {
        received_ms,
        receiver,
        key: header("idempotency-key"),
        query,
        signed,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        status,
    };
    let n = {
        let mut all = hooks.lock().unwrap();
        all.push(hook);
        all.len()
    };
    // Outside the lock: `wait_until` reads the list while the watch is borrowed, so holding the
    // list while sending on the watch deadlocked the two (both runtime threads, for ever).
    count.send_replace(n);
    let chat = ["wecom", "dingtalk", "feishu"].iter().any(|c| receiver_name.starts_with(c));
    match mode {
        Mode::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        // Chat robots answer 200 with an error code in the body (0: taken).
        Mode::Ok if chat => {
            (StatusCode::OK, r#"{"errcode":0,"errmsg":"ok","code":0,"msg":"success"}"#).into_response()
        }
        _ => StatusCode::from_u16(status).unwrap().into_response(),
    }
}

/// Writes a secret file readable by its owner only (the daemon refuses world-readable ones).
pub fn write_secret(path: &std::path::Path, value: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, value).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Writes the secret file and returns a config (TOML) for a broker on `mqtt_port`, webhooks to
/// `hooks_url`, the API on `http_port` (0: any free port) and the given `[[rule]]` tables.
pub fn config(dir: &std::path::Path, mqtt_port: u16, http_port: u16, hooks_url: &str, rules: &str) -> String {
    let secret = dir.join("secret");
    let token = dir.join("token");
    write_secret(&secret, SECRET);
    write_secret(&token, TOKEN);
    format!(
        r#"[daemon]
data_dir = "{data}"
http = "127.0.0.1:{http_port}"
legacy_token = {{ file = "{token}" }}

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
client_id = "gridsentry-test"

[[receiver]]
name = "grid"
url = "{hooks_url}/grid"
secret = {{ file = "{secret}" }}
timeout_ms = 500
max_attempts = 4

[[receiver]]
name = "duty"
url = "{hooks_url}/duty"
tier = 1
secret = {{ file = "{secret}" }}
timeout_ms = 500

{rules}
"#,
        data = dir.join("data").display(),
        token = token.display(),
        secret = secret.display(),
    )
}

/// The `gridsentry` binary built next to this test (`cargo test --workspace` builds it).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|p| p.parent()).unwrap().join("gridsentry");
    assert!(bin.exists(), "{} not built: run `cargo build -p gridsentry` (scripts/test does)", bin.display());
    bin
}

/// A noise report at `db` dB(A) (LAeq = LAFmax, no optional levels, no flags).
pub fn noise(db: f32) -> gridsentry_sensors::Body {
    gridsentry_sensors::Body::Noise(gridsentry_sensors::NoiseReport::levels(db, db))
}

/// The value of an unlabelled metric on the daemon's `/metrics` at `http_port`; `None` while the
/// daemon does not answer or does not export it.
pub async fn metric(http_port: u16, name: &str) -> Option<u64> {
    let text = reqwest::get(format!("http://127.0.0.1:{http_port}/metrics")).await.ok()?.text().await.ok()?;
    let line = text.lines().find(|l| l.split(' ').next() == Some(name))?;
    Some(line.rsplit(' ').next()?.parse::<f64>().ok()? as u64)
}

/// Waits until the daemon's `/readyz` on `port` answers 200 (panics after 20 s).
pub async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("http://127.0.0.1:{port}/readyz");
    loop {
        if let Ok(r) = reqwest::get(&url).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "daemon not ready on port {port}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A daemon child process, killed (SIGKILL) when dropped: a failing test leaves nothing running.
pub struct DaemonProcess(Child);

impl std::ops::Deref for DaemonProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for DaemonProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl DaemonProcess {
    /// Owns `child` (killed when dropped).
    pub fn new(child: Child) -> DaemonProcess {
        DaemonProcess(child)
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `gridsentry run --config CFG` as a child process, appending its stderr to `log`.
pub fn spawn_daemon(bin: &std::path::Path, cfg: &std::path::Path, log: &std::path::Path) -> DaemonProcess {
    spawn_daemon_with(bin, cfg, log, &[])
}

/// [`spawn_daemon`] with extra environment variables (the debug build's test hooks).
pub fn spawn_daemon_with(
    bin: &std::path::Path,
    cfg: &std::path::Path,
    log: &std::path::Path,
    env: &[(&str, &str)],
) -> DaemonProcess {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    DaemonProcess(
        Command::new(bin)
            .args(["run", "--config"])
            .arg(cfg)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// A CA and a server certificate for 127.0.0.1 signed by it (openssl), in `dir`.
pub fn make_ca(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out =
            std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=gridsentry test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}
