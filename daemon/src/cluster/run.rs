//! `gridsentry run` with `[cluster]`: a worker. No MQTT here (the relays have it): the
//! ownership loop runs the owned partitions' pipelines; every worker serves the API and console
//! and delivers notifications from the shared outbox (claimed rows, never two at once). With
//! `[influx]` the worker has one store stage (spool and marks in its data directory) that every
//! owned partition's pipeline feeds; the acks it hands back are routed to their partition's
//! progress ([`super::worker::Lag`]) by partition and epoch.

use super::owner::{Owner, Status};
use super::worker::Recipe;
use super::{stream, ClusterError};
use crate::api::ApiState;
use crate::app::{self, AppError, Overrides, Running};
use crate::config::Config;
use crate::flow::Ack;
use crate::notify::deliver::{self, Source};
use crate::orders::Store;
use crate::pipeline::Outputs;
use crate::watchdog::{Health, Progress};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Starts a worker.
pub async fn start(cfg: Config, o: Overrides, shutdown: watch::Receiver<bool>) -> Result<Running, AppError> {
    let cluster = cfg.cluster.as_ref().expect("called with [cluster]").get_ref().clone();
    let postgres = cluster
        .postgres
        .as_ref()
        .ok_or_else(|| ClusterError::Secret("[cluster] postgres: a worker needs its PostgreSQL".into()))?
        .resolve()
        .map_err(|e| ClusterError::Secret(format!("[cluster] postgres: {e}")))?;
    let (endpoints, routing) = app::endpoints(&cfg, &o)?;
    let (outputs, outbox_rx) = app::outputs(&o);
    let Outputs { changes, outbox, metrics, live } = outputs.clone();
    let tuning = app::tuning(&cfg, &o);
    let js = super::connect::connect(&cluster).await?;
    let nats = js.client();
    let status = Arc::new(Status::default());
    let _ = status.nats.set(nats.clone());
    stream::ensure(&js, cluster.replicas, cluster.keep_days, Duration::from_secs(120)).await?;
    let health = Arc::new(Health::default());
    let stray =
        tokio::spawn(super::checks::run(js.clone(), status.clone(), cluster.partitions, shutdown.clone()));
    // The watchdog watches the worker's own hand-offs (acks back from the pipelines, the store
    // stage); each partition's progress against the stream is the ownership loop's (stall.rs).
    let progress = [Progress::new("acks"), Progress::new("series")];
    let (acks, acked) = crate::flow::channel::<Ack>(progress[0].clone());
    let router = tokio::spawn(super::worker::route_acks(acked, status.clone()));
    // A worker's disk holds its time-series spool and marks (only with [influx]); two workers
    // started from one file on one machine would share them: refused.
    let data_dir = o.data_dir.clone().unwrap_or_else(|| cfg.daemon.data_dir.clone());
    let lock = match app::influx(&cfg, &o) {
        Some(_) => {
            std::fs::create_dir_all(&data_dir).map_err(|e| AppError::Io("creating the data directory", e))?;
            Some(app::lock_data_dir(&data_dir)?)
        }
        None => None,
    };
    let marks = data_dir.join("series.db");
    let stage = app::Stage { data_dir: &data_dir, marks: &marks, progress: progress[1].clone() };
    let (sink, series) = app::sink(&cfg, &o, stage, acks, metrics.clone(), &health, &shutdown)?;
    // SIGHUP: the last reload, which every running partition's pipeline applies and
    // partitions taken later start with.
    let (control, mut control_rx) = mpsc::unbounded_channel::<crate::pipeline::Control>();
    let reloads = watch::Sender::new(None);
    let last = reloads.clone();
    let reloader = tokio::spawn(async move {
        while let Some(c) = control_rx.recv().await {
            last.send_replace(Some(c));
        }
    });
    let recipe = Recipe {
        postgres: postgres.clone(),
        config: Arc::new(cfg.clone()),
        routing: routing.clone(),
        outputs,
        tuning,
        partitions: cluster.partitions,
        sink,
        reloads,
    };
    let rt = tokio::runtime::Handle::current();
    let (owner_cfg, owner_status, owner_stop) = (cluster.clone(), status.clone(), shutdown.clone());
    let (stall, owner_health) = (Duration::from_secs(cfg.daemon.stall_s.get()), health.clone());
    let owner = tokio::task::spawn_blocking(move || {
        Owner::new(&owner_cfg, recipe, js, rt, owner_status, stall, owner_health)
    })
    .await
    .map_err(|e| AppError::Pipeline(e.to_string()))?;
    let owner = owner?;
    let ended = crate::watchdog::ended_hook("cluster", &health, &shutdown);
    let owner = std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || {
            owner.run(owner_stop);
            ended(None);
            Ok(())
        })
        .map_err(|e| AppError::Io("starting the ownership thread", e))?;

    let backoff =
        o.backoff.unwrap_or_else(|| cfg.delivery.as_ref().map(|d| d.get_ref().backoff()).unwrap_or_default());
    // Every session of this worker carries its name: a worker taking over from it when it falls
    // silent ends them all (their open transactions would hold rows).
    let session = super::owner::session(&cluster.worker());
    let notify = deliver::spawn(
        endpoints,
        Source::Postgres(postgres.clone(), session.clone()),
        backoff,
        metrics.clone(),
        outbox_rx,
        shutdown.clone(),
    )?;
    let watch = |stage: &'static str, t| crate::watchdog::supervise(stage, t, &health, &shutdown);
    let mut tasks: Vec<_> = notify.into_iter().map(|t| watch("notify", t)).collect();
    tasks.push(watch("cluster checks", stray));
    tasks.push(watch("ack router", router));
    tasks.push(watch("reloads", reloader));
    // The console hears every worker's order changes.
    let feed = tokio::sync::broadcast::channel(4096).0;
    let fanout = tokio::spawn(super::fanout::run(
        nats,
        cluster.worker(),
        changes.clone(),
        feed.clone(),
        shutdown.clone(),
    ));
    tasks.push(watch("fan-out", fanout));
    let stall = Duration::from_secs(cfg.daemon.stall_s.get());
    tasks.push(crate::watchdog::spawn(progress.to_vec(), stall, health.clone(), shutdown.clone()));
    let token = cfg.daemon.api_token.as_ref().map(|s| s.resolve()).transpose().map_err(AppError::Secret)?;
    let (sla, url) = (cfg.sla, postgres);
    let store = tokio::task::spawn_blocking(move || Store::connect_as(&url, &session, sla, routing))
        .await
        .map_err(|e| AppError::Pipeline(e.to_string()))??;
    let state = ApiState {
        store: Mutex::new(store),
        token,
        metrics: metrics.clone(),
        changes: changes.clone(),
        feed,
        outbox,
        live,
        health: health.clone(),
        sites: cfg.sites.iter().map(|s| s.get_ref().clone()).collect(),
        cluster: Some(status),
    };
    let addr = o.http.clone().unwrap_or_else(|| cfg.daemon.http.get_ref().clone());
    let (http, api) = app::serve_api(state, &addr, &health, &shutdown).await?;
    tasks.push(api);
    if !cfg.modbus.is_empty() || !cfg.serial.is_empty() {
        tracing::warn!("[[modbus]]/[[serial]] devices are not polled by a cluster worker: a relay next to them polls them (`gridsentry relay`)");
    }
    tracing::info!(worker = %cluster.worker(), partitions = cluster.partitions, "cluster worker running");
    Ok(Running::worker(http, changes, metrics, control, health, owner, series, tasks, lock))
}
