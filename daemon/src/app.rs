//! Wiring: starts every stage of the daemon from a config and stops them on a shutdown signal.
//!
//! ```text
//! broker ─▶ ingest ─(batches)─▶ pipeline thread: rules → orders (SQLite) ─(batch of acks)─▶ ingest
//!                                               │ outbox rows    │ (with [influx]:)
//!                                               ▼                ▼
//!                  notify workers (one per receiver)   series thread: batches → InfluxDB
//!                                   ─▶ webhooks        (or disk spool, replayed) ─▶ acks
//! api (axum): orders, actions, dead letters, health, metrics ─▶ same SQLite file
//! watchdog: every hand-off's progress; a stalled or ended stage → /readyz 503, `fatal`
//! ```

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::ingest::mqtt::{self, Settings};
use crate::metrics::Metrics;
use crate::notify::deliver::{self, Backoff, Endpoint};
use crate::orders::{Change, Receiver, Store, StoreError};
use crate::pipeline::{Control, Outputs, Pipeline, PipelineError, Sink, Tuning};
use crate::rules::{Engine, RuleError};
use crate::watchdog::{self, Health, Progress};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The order store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rule is impossible (normally caught by the config check).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// MQTT could not be set up.
    #[error(transparent)]
    Ingest(#[from] mqtt::IngestError),
    /// A secret could not be read.
    #[error("{0}")]
    Secret(String),
    /// Files, sockets, threads.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The pipeline thread died.
    #[error("pipeline stopped: {0}")]
    Pipeline(String),
    /// The store stage could not start.
    #[error(transparent)]
    Series(#[from] crate::series::SeriesError),
    /// Cluster mode could not start.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Settings that the command line (or the demo) overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// API address instead of `daemon.http`.
    pub http: Option<String>,
    /// Data directory instead of `daemon.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Receiver URLs by name.
    pub receiver_urls: HashMap<String, String>,
    /// Wall-clock check interval (default 1 s).
    pub tick: Option<Duration>,
    /// Webhook retry timing.
    pub backoff: Option<Backoff>,
    /// Time-series server instead of `[influx]` (the demo's `--influx-url`).
    pub influx: Option<crate::config::Influx>,
    /// Where order transitions are announced, for a caller that must see them from the very
    /// first (subscribe before starting: the stages start working before `start` returns).
    pub changes: Option<broadcast::Sender<Change>>,
}

/// A running daemon.
pub struct Running {
    /// Where the API listens.
    pub http: SocketAddr,
    /// The broker's port (the embedded one, or the configured one).
    pub mqtt_port: u16,
    /// Every order transition.
    pub changes: broadcast::Sender<Change>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Config reloads go here.
    pub control: mpsc::UnboundedSender<Control>,
    /// The watchdog's verdict: `fatal()` fires when a stage stalled or ended.
    pub health: Arc<Health>,
    pipeline: std::thread::JoinHandle<Result<(), PipelineError>>,
    series: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The data directory's lock ([`lock_data_dir`]), held until the daemon has stopped.
    _lock: Option<std::fs::File>,
}

/// Locks `dir` for this process (`dir/gridsentry.lock`, released by the kernel when the
/// process ends, however it ends): a second daemon on the same data directory would share the
/// SQLite file's writers, the time-series spool and the broker session, and is refused.
pub(crate) fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, AppError> {
    let path = dir.join("gridsentry.lock");
    let file =
        std::fs::File::create(&path).map_err(|e| AppError::Io("creating data_dir/gridsentry.lock", e))?;
    file.try_lock().map_err(|_| {
        AppError::Io(
            "data_dir",
            std::io::Error::other(format!(
                "{} is in use by another gridsentry process on this machine (each daemon or cluster worker needs its own [daemon] data_dir)",
                dir.display()
            )),
        )
    })?;
    Ok(file)
}

/// Starts the daemon; it stops when `shutdown` turns true. With `[cluster]` it is a cluster
/// worker ([`crate::cluster::run`]).
pub async fn start(cfg: Config, o: Overrides, shutdown: watch::Receiver<bool>) -> Result<Running, AppError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if cfg.cluster.is_some() {
        return crate::cluster::run::start(cfg, o, shutdown).await;
    }
    let data_dir = o.data_dir.clone().unwrap_or_else(|| cfg.daemon.data_dir.clone());
    std::fs::create_dir_all(&data_dir).map_err(|e| AppError::Io("creating the data directory", e))?;
    let lock = lock_data_dir(&data_dir)?;
    let db = data_dir.join("orders.db");
    let (endpoints, routing) = endpoints(&cfg, &o)?;
    let (outputs, outbox_rx) = outputs(&o);
    let Outputs { changes, outbox, metrics, live } = outputs.clone();
    let pipeline = pipeline(&cfg, Store::open(&db, cfg.sla, routing.clone())?, outputs)?;

    let (settings, mqtt_port) = match &cfg.mqtt {
        Some(m) => (Settings::from_config(m)?, m.port),
        None => {
            let mut listen: std::net::SocketAddr =
                cfg.daemon.embedded_broker.get_ref().parse().map_err(|_| {
                    AppError::Io("embedded_broker", std::io::Error::other("not an IP:port address"))
                })?;
            if listen.port() == 0 {
                listen.set_port(
                    crate::broker::free_port().map_err(|e| AppError::Io("choosing a broker port", e))?,
                );
            }
            crate::broker::start(listen).map_err(|e| AppError::Io("starting the embedded broker", e))?;
            tracing::info!(%listen, "embedded MQTT broker listening");
            (Settings::local("gridsentry", listen.port()), listen.port())
        }
    };
    let health = Arc::new(Health::default());
    let progress = [Progress::new("ingest"), Progress::new("pipeline"), Progress::new("series")];
    let (inbound_tx, inbound_rx) = crate::flow::channel(progress[1].clone());
    let mut field = crate::ingest::modbus::spawn(
        &cfg.modbus.iter().map(|m| m.get_ref().clone()).collect::<Vec<_>>(),
        inbound_tx.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    field.extend(crate::ingest::serial::spawn(
        &cfg.serial.iter().map(|s| s.get_ref().clone()).collect::<Vec<_>>(),
        inbound_tx.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let (acks, ingest) =
        mqtt::spawn(settings, inbound_tx, metrics.clone(), progress[0].clone(), shutdown.clone());
    let (control, control_rx) = mpsc::unbounded_channel();
    let tuning = tuning(&cfg, &o);
    let stage = Stage { data_dir: &data_dir, marks: &db, progress: progress[2].clone() };
    let (sink, series) = sink(&cfg, &o, stage, acks, metrics.clone(), &health, &shutdown)?;
    let rt = tokio::runtime::Handle::current();
    let ended = watchdog::ended_hook("pipeline", &health, &shutdown);
    let pipeline = std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || {
            let r = pipeline.run(rt, inbound_rx, control_rx, sink, tuning);
            ended(r.as_ref().err().map(|e| e.to_string()));
            r
        })
        .map_err(|e| AppError::Io("starting the pipeline thread", e))?;

    let stall = Duration::from_secs(cfg.daemon.stall_s.get());
    let mut tasks = vec![
        watchdog::spawn(progress.to_vec(), stall, health.clone(), shutdown.clone()),
        watchdog::supervise("ingest", ingest, &health, &shutdown),
    ];
    tasks.extend(field.into_iter().map(|t| watchdog::supervise("field bus", t, &health, &shutdown)));
    let backoff =
        o.backoff.unwrap_or_else(|| cfg.delivery.as_ref().map(|d| d.get_ref().backoff()).unwrap_or_default());
    let notify = deliver::spawn(
        endpoints,
        deliver::Source::Sqlite(db.clone()),
        backoff,
        metrics.clone(),
        outbox_rx,
        shutdown.clone(),
    )?;
    tasks.extend(notify.into_iter().map(|t| watchdog::supervise("notify", t, &health, &shutdown)));

    let token = cfg.daemon.api_token.as_ref().map(|s| s.resolve()).transpose().map_err(AppError::Secret)?;
    if token.is_none() {
        tracing::warn!("no api_token configured: the /api endpoints refuse every request");
    }
    let state = ApiState {
        store: Mutex::new(Store::open(&db, cfg.sla, routing)?),
        token,
        metrics: metrics.clone(),
        changes: changes.clone(),
        feed: changes.clone(),
        outbox,
        live,
        health: health.clone(),
        sites: cfg.sites.iter().map(|s| s.get_ref().clone()).collect(),
        cluster: None,
    };
    let addr = o.http.clone().unwrap_or_else(|| cfg.daemon.http.get_ref().clone());
    let (http, api) = serve_api(state, &addr, &health, &shutdown).await?;
    tasks.push(api);
    Ok(Running {
        http,
        mqtt_port,
        changes,
        metrics,
        control,
        health,
        pipeline,
        series,
        tasks,
        _lock: Some(lock),
    })
}

/// Where pipelines report (order transitions, outbox wake-ups, counters, the console's live
/// values), and the notifier's end of the wake-ups. Edge mode has one pipeline, a cluster
/// worker one per owned partition; they share these.
pub(crate) fn outputs(o: &Overrides) -> (Outputs, watch::Receiver<u64>) {
    let (outbox, outbox_rx) = watch::channel(0u64);
    let outputs = Outputs {
        changes: o.changes.clone().unwrap_or_else(|| broadcast::channel(4096).0),
        outbox,
        metrics: Arc::new(Metrics::default()),
        live: Arc::new(crate::live::Live::default()),
    };
    (outputs, outbox_rx)
}

/// Batching and timing of a pipeline.
pub(crate) fn tuning(cfg: &Config, o: &Overrides) -> Tuning {
    Tuning {
        batch_max: cfg.daemon.batch_max.max(1),
        linger: Duration::from_millis(cfg.daemon.batch_linger_ms),
        tick: o.tick.unwrap_or(Duration::from_secs(1)),
    }
}

/// A pipeline on `store` with the config's rules, devices, clock and privacy settings (edge
/// mode's one, or a cluster worker's for one partition).
pub(crate) fn pipeline(cfg: &Config, store: Store, outputs: Outputs) -> Result<Pipeline, AppError> {
    let tz = jiff::tz::TimeZone::get(cfg.daemon.timezone.get_ref())
        .map_err(|e| AppError::Secret(e.to_string()))?;
    let max_bands = cfg.devices.as_ref().map_or(crate::rules::MAX_BANDS, |d| d.get_ref().max_bands.get());
    let engine =
        Engine::new(cfg.rules.iter().map(|r| r.get_ref().clone()).collect(), tz)?.with_max_bands(max_bands);
    Ok(Pipeline::new(engine, store, outputs)?
        .with_max_skew(Duration::from_secs(cfg.daemon.max_clock_skew_s))
        .with_gate(gate_policy(cfg))
        .with_evidence_days(cfg.privacy.evidence_days))
}

/// Starts the API and console on `addr`; its address and supervised task.
pub(crate) async fn serve_api(
    state: ApiState,
    addr: &str,
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), AppError> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| AppError::Io("binding the API address", e))?;
    let http = listener.local_addr().map_err(|e| AppError::Io("reading the API address", e))?;
    let mut stop = shutdown.clone();
    let router = api::router(Arc::new(state));
    let api = tokio::spawn(async move {
        let graceful = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(graceful).await {
            tracing::error!(error = %e, "api server stopped");
        }
    });
    tracing::info!(%http, "api listening");
    Ok((http, watchdog::supervise("api", api, health, shutdown)))
}

impl Running {
    /// A running cluster worker (`cluster::run`): the ownership loop stands where the pipeline
    /// thread stands in edge mode.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn worker(
        http: SocketAddr,
        changes: broadcast::Sender<Change>,
        metrics: Arc<Metrics>,
        control: mpsc::UnboundedSender<Control>,
        health: Arc<Health>,
        owner: std::thread::JoinHandle<Result<(), PipelineError>>,
        series: Option<std::thread::JoinHandle<()>>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
        lock: Option<std::fs::File>,
    ) -> Running {
        Running {
            http,
            mqtt_port: 0,
            changes,
            metrics,
            control,
            health,
            pipeline: owner,
            series,
            tasks,
            _lock: lock,
        }
    }
}

impl Running {
    /// Waits until every stage has stopped (after shutdown), or the pipeline failed.
    pub async fn wait(self) -> Result<(), AppError> {
        let pipeline = self.pipeline;
        let result = tokio::task::spawn_blocking(move || pipeline.join())
            .await
            .map_err(|e| AppError::Pipeline(e.to_string()))?
            .map_err(|_| AppError::Pipeline("panicked".into()))?;
        if let Some(s) = self.series {
            // The pipeline dropped its sender: the stage spills what is pending and ends.
            let _ = tokio::task::spawn_blocking(move || s.join()).await;
        }
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        result.map_err(|e| AppError::Pipeline(e.to_string()))
    }
}

/// The time-series server readings go to: `[influx]`, or the demo's override.
pub(crate) fn influx(cfg: &Config, o: &Overrides) -> Option<crate::config::Influx> {
    o.influx.clone().or_else(|| cfg.influx.as_ref().map(|i| i.get_ref().clone()))
}

/// Where the store stage keeps its files, and its watchdog progress.
pub(crate) struct Stage<'a> {
    /// Its spool goes under `data_dir/spool`.
    pub data_dir: &'a std::path::Path,
    /// The SQLite file of its marks (what the server already has).
    pub marks: &'a std::path::Path,
    /// Readings taken and finished.
    pub progress: Arc<Progress>,
}

/// Where committed readings go: with a time-series server ([`influx`]) the store stage, which
/// acks them into `acks` once stored or spilled (and whose end is reported to `health`);
/// without one, straight to `acks`.
pub(crate) fn sink(
    cfg: &Config,
    o: &Overrides,
    stage: Stage,
    acks: crate::flow::AckSender,
    metrics: Arc<Metrics>,
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(Sink, Option<std::thread::JoinHandle<()>>), AppError> {
    let Some(i) = influx(cfg, o) else { return Ok((Sink::Ack(acks), None)) };
    let token = match &i.token {
        Some(t) => t.resolve().map_err(|e| AppError::Secret(format!("[influx] token: {e}")))?,
        None => String::new(),
    };
    let writer =
        crate::series::Influx::new(&i.url, &i.org, &i.bucket, &token, Duration::from_millis(i.timeout_ms))
            .map_err(crate::series::SeriesError::Client)?;
    let settings = crate::series::Settings {
        batch_lines: i.batch_lines,
        linger: Duration::from_millis(i.linger_ms),
        retry_initial: Duration::from_millis(i.retry_initial_ms),
        retry_max: Duration::from_millis(i.retry_max_ms),
        spool_dir: stage.data_dir.join("spool"),
        spool_max_bytes: i.spool_max_mb << 20,
        tags: i.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        db: stage.marks.to_path_buf(),
        readings_max_age: (cfg.privacy.readings_days > 0)
            .then(|| Duration::from_secs(cfg.privacy.readings_days * 86_400)),
    };
    tracing::info!(url = %i.url, bucket = %i.bucket, "storing readings in the time-series server");
    let ended = watchdog::ended_hook("series", health, shutdown);
    let (tx, handle) = crate::series::spawn(writer, settings, acks, metrics, stage.progress, ended)?;
    Ok((Sink::Series(tx), Some(handle)))
}

pub(crate) fn endpoints(cfg: &Config, o: &Overrides) -> Result<(Vec<Endpoint>, Vec<Receiver>), AppError> {
    let mut endpoints = Vec::new();
    let mut routing = Vec::new();
    for r in cfg.receivers.iter().map(|r| r.get_ref()) {
        let secret = match &r.secret {
            Some(s) => {
                Some(s.resolve().map_err(|e| AppError::Secret(format!("receiver `{}`: {e}", r.name)))?)
            }
            None => None,
        };
        endpoints.push(Endpoint {
            name: r.name.clone(),
            url: o.receiver_urls.get(&r.name).cloned().unwrap_or_else(|| r.url.clone()),
            format: r.format,
            secret,
            timeout: Duration::from_millis(r.timeout_ms),
            max_attempts: r.max_attempts,
            fallback: r.fallback.clone(),
            redact: r.redact.clone(),
        });
        routing.push(Receiver { name: r.name.clone(), tier: r.tier });
    }
    Ok((endpoints, routing))
}

/// The rules, deadlines and routing of a config, for a reload.
pub fn reload_of(cfg: &Config) -> Control {
    Control::Reload {
        rules: cfg.rules.iter().map(|r| r.get_ref().clone()).collect(),
        sla: cfg.sla,
        receivers: cfg
            .receivers
            .iter()
            .map(|r| Receiver { name: r.get_ref().name.clone(), tier: r.get_ref().tier })
            .collect(),
    }
}

/// Who the pipeline hears (`[devices]`): the registry plus every configured field device.
fn gate_policy(cfg: &Config) -> crate::gate::Policy {
    use gridsentry_sensors::Id;
    let d = cfg.devices.as_ref().map(|d| d.get_ref().clone()).unwrap_or_default();
    let modbus = cfg.modbus.iter().map(|m| (m.get_ref().site.clone(), m.get_ref().device.clone()));
    let serial = cfg.serial.iter().map(|s| (s.get_ref().site.clone(), s.get_ref().device.clone()));
    let field =
        modbus.chain(serial).filter_map(|(s, dev)| Some((Id::new(&s).ok()?, Id::new(&dev).ok()?))).collect();
    crate::gate::Policy { allow: d.allow, registry: d.registry, field, max_tracked: d.max_tracked.get() }
}
