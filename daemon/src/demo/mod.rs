//! `gridsentry demo`: the whole story on one machine in about a minute.
//!
//! An embedded broker, the daemon on `config/demo.toml` (shortened timers), simulated devices
//! speaking the real wire contract over MQTT, a landslide extensometer served over Modbus TCP
//! and polled by the daemon, a webhook receiver that checks signatures, and an operator who
//! works the red heart-rate order through the API. stdout carries one JSON object per order
//! transition; logs go to stderr.

mod devices;
mod operator;
mod receiver;
mod station;

use crate::config;
use crate::runtime::{self, Overrides};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::watch;

/// The demo's config, embedded in the binary.
pub const CONFIG: &str = include_str!("../../../config/demo.toml");
const PASSWORD_ENV: &str = "GRIDSENTRY_DEMO_PASSWORD";
/// Grid worker Wang's password (his phone view), printed at the start.
const FIELD_PASSWORD_ENV: &str = "GRIDSENTRY_DEMO_FIELD_PASSWORD";
/// The person the demo prints a password for (an operator).
pub const DUTY_OFFICER: &str = "duty-officer";
const SECRET_ENV: &str = "GRIDSENTRY_DEMO_SECRET";

/// Demo options.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to run.
    pub duration: Duration,
    /// API address (default: a free loopback port).
    pub http: Option<String>,
    /// Data directory (default: a fresh temporary one, removed afterwards).
    pub data_dir: Option<PathBuf>,
    /// Time-series server to write every reading to.
    pub influx: Option<config::Influx>,
}

/// Sets the duty officer's password and the webhook secret in the environment (unless given).
/// Call before any thread starts.
pub fn prepare_env() {
    for (name, value) in [
        (PASSWORD_ENV, crate::access::new_password()),
        (FIELD_PASSWORD_ENV, crate::access::new_password()),
        (SECRET_ENV, format!("{:032x}", rand::random::<u128>())),
    ] {
        if std::env::var_os(name).is_none() {
            // Single-threaded at this point (called before the runtime starts).
            std::env::set_var(name, value);
        }
    }
}

/// The demo's people: the duty officer (an operator: the one who reads this at the console),
/// the dispatcher robot (an operator) and grid worker Wang (field), with their passwords.
fn people(duty_password: &str, field_password: &str) -> [(&'static str, crate::access::Role, String); 3] {
    use crate::access::{new_password, Role};
    [
        (DUTY_OFFICER, Role::Operator, duty_password.to_string()),
        (operator::DISPATCHER, Role::Operator, new_password()),
        (operator::WORKER, Role::Field, field_password.to_string()),
    ]
}

/// Adds `people` to the demo's order database.
async fn add_people(
    db: PathBuf,
    people: Vec<(&'static str, crate::access::Role, String)>,
) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let mut store =
            crate::orders::Store::open(&db, Default::default(), Vec::new()).map_err(|e| e.to_string())?;
        for (name, role, password) in people {
            let hash = crate::access::hash_password(&password).map_err(|e| e.to_string())?;
            store
                .person_add(name, role, &[], &hash, "demo", crate::clock::now_ms() as i64)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The demo slope's `[[warning]]`: two made-up residents (a file of mode 0600 in `dir`), the
/// route, and the demo's receiver as the broadcast system.
fn hazard(dir: &std::path::Path, hook_url: &str, secret: &str) -> Result<config::WarningConfig, String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let residents = dir.join("residents-slope-7.txt");
    std::fs::write(&residents, "# 鹅岭边坡下方住户（演示号码）\n13800000001\n13800000002\n")
        .and_then(|()| std::fs::set_permissions(&residents, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| format!("{}: {e}", residents.display()))?;
    Ok(config::WarningConfig {
        site: "slope-7".into(),
        route: "沿鹅岭正街向东撤离至鹅岭公园广场".into(),
        residents_file: residents,
        auto_within_h: None,
        sms: None,
        broadcast: Some(config::BroadcastConfig {
            url: format!("{hook_url}/broadcast"),
            secret: config::Secret::Value(secret.to_string()),
        }),
    })
}

/// Runs the demo.
pub async fn run(opts: Options) -> Result<(), String> {
    let mut cfg = config::parse("config/demo.toml", CONFIG).map_err(|e| e.to_string())?;
    cfg.daemon.embedded_broker = toml::Spanned::new(0..0, "127.0.0.1:0".into());
    let temp = opts
        .data_dir
        .is_none()
        .then(|| std::env::temp_dir().join(format!("gridsentry-demo-{}", std::process::id())));
    let data_dir = opts.data_dir.clone().or(temp.clone());
    let db = data_dir.clone().unwrap_or_default().join("orders.db");
    let secret = std::env::var(SECRET_ENV).map_err(|_| format!("{SECRET_ENV} not set"))?;
    let password = std::env::var(PASSWORD_ENV).map_err(|_| format!("{PASSWORD_ENV} not set"))?;
    let field_password =
        std::env::var(FIELD_PASSWORD_ENV).map_err(|_| format!("{FIELD_PASSWORD_ENV} not set"))?;
    let (hook_url, counts) =
        receiver::start(secret.clone()).await.map_err(|e| format!("webhook receiver: {e}"))?;
    let station = station::serve().await.map_err(|e| format!("demo slope station: {e}"))?;
    for m in &mut cfg.modbus {
        let m = m.get_mut();
        m.tcp = m.tcp.as_ref().map(|_| station.clone());
    }
    // The slope's residents are warned through loudspeakers (the demo's receiver stands in for
    // the broadcast system; no SMS): the console's 一键预警 on the red slope order sends it.
    if let Some(dir) = &data_dir {
        cfg.warnings.push(toml::Spanned::new(0..0, hazard(dir, &hook_url, &secret)?));
    }
    let receiver_urls: HashMap<String, String> = cfg
        .receivers
        .iter()
        .map(|r| (r.get_ref().name.clone(), format!("{hook_url}/{}", r.get_ref().name)))
        .collect();
    // Subscribed before the start, so that stdout has every transition from the first.
    let (changes_tx, mut changes) = tokio::sync::broadcast::channel(4096);
    let overrides = Overrides {
        http: Some(opts.http.clone().unwrap_or_else(|| "127.0.0.1:0".into())),
        data_dir,
        receiver_urls,
        tick: Some(Duration::from_millis(250)),
        backoff: None,
        influx: opts.influx.clone(),
        changes: Some(changes_tx),
    };
    let (stop_tx, stop) = watch::channel(false);
    let running = runtime::start(cfg, overrides, stop.clone()).await.map_err(|e| e.to_string())?;
    let api = format!("http://{}", running.http);
    eprintln!(
        "gridsentry demo: api {api}, broker 127.0.0.1:{}, running {} s",
        running.mqtt_port,
        opts.duration.as_secs()
    );
    let cast = people(&password, &field_password);
    add_people(db, cast.to_vec()).await.map_err(|e| format!("demo people: {e}"))?;
    eprintln!("gridsentry demo: console {api}/  log in as {DUTY_OFFICER} / {password}");
    eprintln!(
        "gridsentry demo: a grid worker's phone view: log in as {} / {field_password}; a wall screen: {api}/?wall",
        operator::WORKER
    );

    let printer = tokio::spawn(async move {
        let mut out = std::io::stdout();
        while let Ok(c) = changes.recv().await {
            let line = serde_json::to_string(&c).expect("changes serialise");
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    });
    let logins = cast.into_iter().skip(1).map(|(name, _, pw)| (name, pw)).collect();
    tokio::spawn(operator::run(api, logins, running.changes.subscribe()));
    let port = running.mqtt_port;
    let devices: Vec<_> =
        devices::cast().into_iter().map(|d| tokio::spawn(devices::run(d, port, stop.clone()))).collect();

    tokio::time::sleep(opts.duration).await;
    let _ = stop_tx.send(true);
    for d in devices {
        let _ = d.await;
    }
    let metrics = running.metrics.clone();
    let result = running.wait().await.map_err(|e| e.to_string());
    printer.abort();
    if let Some(i) = &opts.influx {
        eprintln!(
            "gridsentry demo: {} points written to {} (bucket {}), {} waiting on disk",
            metrics.series_written.load(Relaxed),
            i.url,
            i.bucket,
            metrics.series_queue_points.load(Relaxed),
        );
    }
    eprintln!(
        "gridsentry demo: {} readings applied, {} order transitions, {} webhooks delivered ({} with a valid signature, {} rejected)",
        metrics.readings.iter().map(|r| r.load(Relaxed)).sum::<u64>(),
        metrics.transitions.load(Relaxed),
        metrics.webhooks_delivered.load(Relaxed),
        counts.valid.load(Relaxed),
        counts.invalid.load(Relaxed),
    );
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}
