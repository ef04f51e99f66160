//! What both modes build the same way: outputs, tuning, the notifier, the API, the watchdog,
//! the data directory's lock, and a pipeline over a given store.

use super::{AppError, Overrides, Running};
use crate::api::{self, ApiState};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::deliver::{self, Backoff, Endpoint, Source};
use crate::orders::{Change, Names, Receiver, Store};
use crate::pipeline::{Control, Outputs, Pipeline, PipelineError, Tuning};
use crate::rules::Engine;
use crate::watchdog::{self, Health, Progress, Readiness};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// The stages every mode has, built once per process.
pub(super) struct Base {
    /// The watchdog's verdict.
    pub health: Arc<Health>,
    /// Where pipelines report (order transitions, outbox wake-ups, counters, live values).
    pub outputs: Outputs,
    /// Receivers by name and tier, for routing.
    pub routing: Vec<Receiver>,
    /// Batching and timing of pipelines.
    pub tuning: Tuning,
    /// `[daemon] stall_s`.
    pub stall: Duration,
    outbox_rx: Option<watch::Receiver<u64>>,
    endpoints: Option<Vec<Endpoint>>,
    /// The `[[warning]]`s' channels, secrets and residents read.
    warnings: Vec<crate::warn::Channels>,
    /// The `[[hj212]]` links and the records their windows close into.
    hj212: Option<(
        Vec<crate::report::uplink::Link>,
        tokio::sync::mpsc::UnboundedReceiver<crate::report::Record>,
    )>,
    backoff: Backoff,
    token: Option<String>,
    tls: Option<api::serve::Tls>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown: watch::Receiver<bool>,
}

impl Base {
    /// Reads what the config and overrides say (secrets included).
    pub fn new(cfg: &Config, o: &Overrides, shutdown: &watch::Receiver<bool>) -> Result<Base, AppError> {
        let (endpoints, routing) = endpoints(cfg, o)?;
        let warnings = crate::warn::channels(cfg).map_err(AppError::Secret)?;
        let tz = jiff::tz::TimeZone::get(cfg.daemon.timezone.get_ref()).unwrap_or(jiff::tz::TimeZone::UTC);
        let (report, hj212) = match cfg.hj212.is_empty() {
            true => (None, None),
            false => {
                let mut links = Vec::new();
                for h in cfg.hj212.iter().map(|h| h.get_ref()) {
                    let password = h
                        .password
                        .resolve()
                        .map_err(|e| AppError::Secret(format!("[[hj212]] {}: {e}", h.device)))?;
                    links.push(crate::report::uplink::Link {
                        mn: h.mn.clone(),
                        host: h.host.clone(),
                        port: h.port,
                        password,
                        st: h.st,
                    });
                }
                let boxes: Vec<(String, String)> =
                    cfg.hj212.iter().map(|h| (h.get_ref().device.clone(), h.get_ref().mn.clone())).collect();
                let (reporter, rx) = crate::report::Reporter::new(&boxes, tz);
                (Some(Arc::new(reporter)), Some((links, rx)))
            }
        };
        let (outbox, outbox_rx) = watch::channel(0u64);
        let outputs = Outputs {
            // The ring keeps its last 1,024 changes (~1 KB each) for as long as the daemon runs;
            // a console feed further behind is told it lagged and reloads (api/events.rs).
            changes: o.changes.clone().unwrap_or_else(|| broadcast::channel(1024).0),
            outbox,
            metrics: Arc::new(Metrics::default()),
            live: Arc::new(crate::live::Live::new(
                cfg.devices.as_ref().map_or(crate::rules::MAX_BANDS, |d| d.get_ref().max_bands.get()) + 16,
            )),
            report,
        };
        let token =
            cfg.daemon.legacy_token.as_ref().map(|s| s.resolve()).transpose().map_err(AppError::Secret)?;
        if token.is_some() {
            tracing::warn!("legacy_token set: whoever has it acts as `legacy-token` with an operator's rights (machines only; people log in)");
        }
        let tls = match &cfg.daemon.tls {
            None => None,
            Some(t) => {
                let config = load_tls(t.get_ref()).map_err(AppError::Secret)?;
                Some(Arc::new(std::sync::RwLock::new(Arc::new(config))))
            }
        };
        if tls.is_none() && cfg.daemon.allow_plain_http {
            tracing::warn!(http = %cfg.daemon.http.get_ref(), "allow_plain_http: the API is served in plain HTTP (put a TLS proxy in front)");
        }
        Ok(Base {
            health: Arc::new(Health::default()),
            outputs,
            routing,
            tuning: Tuning {
                batch_max: cfg.daemon.batch_max.max(1),
                linger: Duration::from_millis(cfg.daemon.batch_linger_ms),
                tick: o.tick.unwrap_or(Duration::from_secs(1)),
            },
            stall: Duration::from_secs(cfg.daemon.stall_s.get()),
            outbox_rx: Some(outbox_rx),
            endpoints: Some(endpoints),
            warnings,
            hj212,
            backoff: o
                .backoff
                .unwrap_or_else(|| cfg.delivery.as_ref().map(|d| d.get_ref().backoff()).unwrap_or_default()),
            token,
            tls,
            tasks: Vec::new(),
            shutdown: shutdown.clone(),
        })
    }

    /// Counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.outputs.metrics.clone()
    }

    /// Order transitions.
    pub fn changes(&self) -> broadcast::Sender<Change> {
        self.outputs.changes.clone()
    }

    /// Watches `task` as stage `stage`: its end outside a shutdown is fatal.
    pub fn supervise(&mut self, stage: &'static str, task: tokio::task::JoinHandle<()>) {
        self.tasks.push(watchdog::supervise(stage, task, &self.health, &self.shutdown));
    }

    /// Watches the hand-offs `stages` for progress ([`watchdog`]).
    pub fn watch(&mut self, stages: Vec<Arc<Progress>>) {
        self.tasks.push(watchdog::spawn(stages, self.stall, self.health.clone(), self.shutdown.clone()));
    }

    /// Reports to the watchdog when a stage's thread returns.
    pub fn ended_hook(&self, stage: &'static str) -> impl FnOnce(Option<String>) + Send + 'static {
        watchdog::ended_hook(stage, &self.health, &self.shutdown)
    }

    /// Starts the notifier on the outbox in `source`.
    pub fn notify(&mut self, source: Source) -> Result<(), AppError> {
        let (endpoints, outbox_rx) = (self.endpoints.take(), self.outbox_rx.take());
        let (Some(endpoints), Some(outbox_rx)) = (endpoints, outbox_rx) else {
            return Err(AppError::Pipeline("the notifier was started twice".into()));
        };
        let notify = deliver::spawn(
            endpoints,
            source.clone(),
            self.backoff,
            self.metrics(),
            outbox_rx,
            self.shutdown.clone(),
        )?;
        for t in notify {
            self.supervise("notify", t);
        }
        let warnings = std::mem::take(&mut self.warnings);
        if let Some(t) = crate::warn::spawn(warnings, &source, self.metrics(), self.shutdown.clone())? {
            self.supervise("warnings", t);
        }
        if let (Some((links, records)), Some(reporter)) = (self.hj212.take(), self.outputs.report.clone()) {
            let tasks = crate::report::uplink::spawn(
                links,
                reporter,
                records,
                &source,
                self.metrics(),
                self.shutdown.clone(),
            )?;
            for t in tasks {
                self.supervise("hj212", t);
            }
        }
        Ok(())
    }

    /// Serves the API and console on `store`; the console's live feed hears `feed`, `/readyz`
    /// asks `readiness` (`None`: the broker connection, edge mode's).
    pub async fn serve(
        &mut self,
        cfg: &Config,
        o: &Overrides,
        store: Store,
        feed: broadcast::Sender<Change>,
        readiness: Option<Arc<dyn Readiness>>,
    ) -> Result<SocketAddr, AppError> {
        let state = ApiState {
            store: Mutex::new(store.named(names(cfg))),
            legacy_token: self.token.take(),
            logins: Default::default(),
            secure_cookies: self.tls.is_some(),
            timezone: cfg.daemon.timezone.get_ref().clone(),
            metrics: self.metrics(),
            changes: self.changes(),
            feed,
            outbox: self.outputs.outbox.clone(),
            live: self.outputs.live.clone(),
            health: self.health.clone(),
            sites: cfg.sites.iter().map(|s| s.get_ref().clone()).collect(),
            warnings: cfg
                .warnings
                .iter()
                .map(|w| (w.get_ref().site.clone(), w.get_ref().route.clone()))
                .collect(),
            duty: cfg.duty.iter().map(|d| d.get_ref().clone()).collect(),
            readiness,
        };
        let addr = o.http.clone().unwrap_or_else(|| cfg.daemon.http.get_ref().clone());
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| AppError::Io("binding the API address", e))?;
        let http = listener.local_addr().map_err(|e| AppError::Io("reading the API address", e))?;
        let router = api::router(Arc::new(state));
        let limits = api::serve::Limits {
            header_timeout: Duration::from_secs(cfg.daemon.header_timeout_s.get()),
            idle_timeout: Duration::from_secs(cfg.daemon.idle_timeout_s.get()),
            max_connections: cfg
                .daemon
                .max_connections
                .map_or_else(api::serve::default_max_connections, |n| n.get()),
        };
        let (tls, stop) = (self.tls.clone(), self.shutdown.clone());
        tracing::info!(connections = limits.max_connections, tls = tls.is_some(), "api limits");
        let task = tokio::spawn(api::serve::serve(listener, router, limits, tls, stop));
        tracing::info!(%http, "api listening");
        self.supervise("api", task);
        Ok(http)
    }

    /// The running daemon: `main` is the pipeline thread (edge) or the ownership loop (worker).
    pub fn running(
        self,
        (http, mqtt_port): (SocketAddr, u16),
        control: mpsc::UnboundedSender<Control>,
        main: std::thread::JoinHandle<Result<(), PipelineError>>,
        series: Option<std::thread::JoinHandle<()>>,
        lock: Option<std::fs::File>,
    ) -> Running {
        Running {
            http,
            mqtt_port,
            changes: self.outputs.changes.clone(),
            metrics: self.outputs.metrics.clone(),
            control,
            health: self.health,
            tls: self.tls,
            pipeline: main,
            series,
            tasks: self.tasks,
            _lock: lock,
        }
    }
}

/// Locks `dir` for this process (`dir/gridsentry.lock`, released by the kernel when the
/// process ends, however it ends): a second daemon on the same data directory would share the
/// SQLite file's writers, the time-series spool and the broker session, and is refused.
pub(crate) fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, AppError> {
    private_dir(dir).map_err(|e| AppError::Io("creating the data directory", e))?;
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

/// A pipeline on `store` with the config's rules, devices, clock and privacy settings (edge
/// mode's one, or a cluster worker's for one partition).
pub(super) fn pipeline(cfg: &Config, store: Store, outputs: Outputs) -> Result<Pipeline, AppError> {
    let tz = jiff::tz::TimeZone::get(cfg.daemon.timezone.get_ref())
        .map_err(|e| AppError::Secret(e.to_string()))?;
    let max_bands = cfg.devices.as_ref().map_or(crate::rules::MAX_BANDS, |d| d.get_ref().max_bands.get());
    let engine =
        Engine::new(cfg.rules.iter().map(|r| r.get_ref().clone()).collect(), tz)?.with_max_bands(max_bands);
    Ok(Pipeline::new(engine, store.named(names(cfg)), outputs)?
        .with_max_skew(Duration::from_secs(cfg.daemon.max_clock_skew_s))
        .with_gate(gate_policy(cfg))
        .with_evidence_days(cfg.privacy.evidence_days))
}

fn endpoints(cfg: &Config, o: &Overrides) -> Result<(Vec<Endpoint>, Vec<Receiver>), AppError> {
    let mut endpoints = Vec::new();
    let mut routing = Vec::new();
    for r in cfg.receivers.iter().map(|r| r.get_ref()) {
        let secret = match &r.secret {
            Some(s) => {
                Some(s.resolve().map_err(|e| AppError::Secret(format!("receiver `{}`: {e}", r.name)))?)
            }
            None => None,
        };
        let key = match &r.key {
            Some(k) => {
                Some(k.resolve().map_err(|e| AppError::Secret(format!("receiver `{}` key: {e}", r.name)))?)
            }
            None => None,
        };
        let url = o.receiver_urls.get(&r.name).cloned().unwrap_or_else(|| r.url.clone());
        if crate::notify::urls::carries_key(&url) && key.is_none() {
            tracing::warn!(receiver = %r.name, url = %crate::notify::urls::redacted(&url), "the receiver's URL carries a key or token: move it to `key = {{ file = … }}`");
        }
        endpoints.push(Endpoint {
            name: r.name.clone(),
            url: crate::notify::urls::with_key(r.format, &url, key.as_deref()),
            format: r.format,
            secret,
            timeout: Duration::from_millis(r.timeout_ms),
            max_attempts: r.max_attempts,
            fallback: r.fallback.clone(),
            redact: r.redact.clone(),
            max_per_minute: r.rate_limit(),
        });
        routing.push(Receiver { name: r.name.clone(), tier: r.tier, person: r.person.clone() });
    }
    Ok((endpoints, routing))
}

/// What people call the config's rules and sites, and its time zone.
pub fn names(cfg: &Config) -> Names {
    let tz = jiff::tz::TimeZone::get(cfg.daemon.timezone.get_ref()).unwrap_or(jiff::tz::TimeZone::UTC);
    let sites =
        cfg.sites.iter().map(|s| s.get_ref()).map(|s| (s.id.as_str(), s.name.as_str(), s.street.as_str()));
    let rules: Vec<&crate::rules::RuleConfig> = cfg.rules.iter().map(|r| r.get_ref()).collect();
    let grouping = crate::orders::Grouping::new(cfg.groups.iter().map(|g| g.get_ref()), &rules);
    let hazards = cfg
        .warnings
        .iter()
        .map(|w| w.get_ref())
        .map(|w| crate::orders::warnings::Hazard {
            site: w.site.clone(),
            route: w.route.clone(),
            auto_within_ms: w.auto_within_h.map(|h| (h * 3_600_000.0) as i64),
        })
        .collect();
    Names::new(tz, rules.iter().copied(), sites).grouped(grouping).with_hazards(hazards)
}

/// The rules, deadlines and routing of a config, for a reload.
pub fn reload_of(cfg: &Config) -> Control {
    Control::Reload {
        names: names(cfg),
        rules: cfg.rules.iter().map(|r| r.get_ref().clone()).collect(),
        sla: cfg.sla,
        receivers: cfg
            .receivers
            .iter()
            .map(|r| r.get_ref())
            .map(|r| Receiver { name: r.name.clone(), tier: r.tier, person: r.person.clone() })
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

/// Creates `dir` if needed and makes it and the files directly in it readable by this user
/// only (0700, files 0600), whatever the umask was when they were made: the order database
/// holds health readings, names and password hashes.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// The API's TLS configuration from `[daemon] tls` (at start, and again on SIGHUP).
pub fn load_tls(t: &crate::config::ApiTls) -> Result<rustls::ServerConfig, String> {
    let (cert, key) = t.read().map_err(|e| format!("[daemon] tls: {e}"))?;
    api::serve::tls_config(&cert, &key).map_err(|e| format!("[daemon] tls: {e}"))
}
