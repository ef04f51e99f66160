//! Cluster mode's ends (`gridsentry run` with `[cluster]`): readings from the JetStream
//! partitions this worker owns (the ownership loop stands where edge mode's pipeline thread
//! stands, running one pipeline per owned partition), orders in PostgreSQL. No MQTT here (the
//! relays have it). Every worker serves the API and console and delivers notifications from the
//! shared outbox (claimed rows, never two at once). With `[influx]` the worker has one store
//! stage (spool and marks in its data directory) that every owned partition's pipeline feeds;
//! the acks it hands back are routed to their partition's progress by partition and epoch.

use super::build::{self, Base};
use super::sink::{influx, sink, Stage};
use super::{AppError, Overrides, Running};
use crate::cluster::owner::{self, Owner, Status};
use crate::cluster::worker::{route_acks, Recipe};
use crate::cluster::{checks, fanout, stream, ClusterError};
use crate::config::Config;
use crate::flow::Ack;
use crate::notify::deliver::Source;
use crate::orders::Store;
use crate::pipeline::Control;
use crate::watchdog::Progress;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Starts a worker.
pub(super) async fn start(
    cfg: Config,
    o: Overrides,
    shutdown: watch::Receiver<bool>,
) -> Result<Running, AppError> {
    let cluster = cfg.cluster.as_ref().expect("called with [cluster]").get_ref().clone();
    let postgres = cluster
        .postgres
        .as_ref()
        .ok_or_else(|| ClusterError::Secret("[cluster] postgres: a worker needs its PostgreSQL".into()))?
        .resolve()
        .map_err(|e| ClusterError::Secret(format!("[cluster] postgres: {e}")))?;
    let mut base = Base::new(&cfg, &o, &shutdown)?;
    let js = crate::cluster::connect::connect(&cluster).await?;
    let status = Arc::new(Status::default());
    let _ = status.nats.set(js.client());
    stream::ensure(&js, cluster.replicas, cluster.keep_days, Duration::from_secs(120)).await?;
    base.supervise(
        "cluster checks",
        tokio::spawn(checks::run(js.clone(), status.clone(), cluster.partitions, shutdown.clone())),
    );
    // The watchdog watches the worker's own hand-offs (acks back from the pipelines, the store
    // stage); each partition's progress against the stream is the ownership loop's (stall.rs).
    let progress = [Progress::new("acks"), Progress::new("series")];
    let (acks, acked) = crate::flow::channel::<Ack>(progress[0].clone());
    base.supervise("ack router", tokio::spawn(route_acks(acked, status.clone())));
    // A worker's disk holds its time-series spool and marks (only with [influx]); two workers
    // started from one file on one machine would share them: refused.
    let data_dir = o.data_dir.clone().unwrap_or_else(|| cfg.daemon.data_dir.clone());
    let stores_series = influx(&cfg, &o).is_some();
    let lock = stores_series.then(|| build::lock_data_dir(&data_dir)).transpose()?;
    let marks = data_dir.join("series.db");
    let stage = Stage { data_dir: &data_dir, marks: &marks, progress: progress[1].clone() };
    let (sink, series) = sink(&cfg, &o, stage, acks, base.metrics(), (&base.health, &shutdown))?;
    base.watch(progress.to_vec());
    let (control, reloads) = reloads(&mut base);
    let (build_cfg, outputs) = (Arc::new(cfg.clone()), base.outputs.clone());
    let recipe = Recipe {
        postgres: postgres.clone(),
        sla: cfg.sla,
        routing: base.routing.clone(),
        build: Arc::new(move |store| {
            build::pipeline(&build_cfg, store, outputs.clone()).map_err(|e| e.to_string())
        }),
        tuning: base.tuning,
        partitions: cluster.partitions,
        sink,
        stores_series,
        reloads,
    };
    let rt = tokio::runtime::Handle::current();
    let (owner_cfg, owner_status, stall, health) =
        (cluster.clone(), status.clone(), base.stall, base.health.clone());
    let owner = tokio::task::spawn_blocking(move || {
        Owner::new(&owner_cfg, recipe, js.clone(), rt, owner_status, stall, health)
    })
    .await
    .map_err(|e| AppError::Pipeline(e.to_string()))??;
    let (ended, owner_stop) = (base.ended_hook("cluster"), shutdown.clone());
    let owner = std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || {
            owner.run(owner_stop);
            ended(None);
            Ok(())
        })
        .map_err(|e| AppError::Io("starting the ownership thread", e))?;
    // Every session of this worker carries its name: a worker taking over from it when it falls
    // silent ends them all (their open transactions would hold rows).
    let session = owner::session(&cluster.worker());
    base.notify(Source::Postgres(postgres.clone(), session.clone()))?;
    // The console hears every worker's order changes.
    let feed = tokio::sync::broadcast::channel(4096).0;
    let nats = status.nats.get().cloned().expect("set above");
    base.supervise(
        "fan-out",
        tokio::spawn(fanout::run(nats, cluster.worker(), base.changes(), feed.clone(), shutdown.clone())),
    );
    let (sla, routing) = (cfg.sla, base.routing.clone());
    let store = tokio::task::spawn_blocking(move || Store::connect_as(&postgres, &session, sla, routing))
        .await
        .map_err(|e| AppError::Pipeline(e.to_string()))??;
    let http = base.serve(&cfg, &o, store, feed, Some(status)).await?;
    if !cfg.modbus.is_empty() || !cfg.serial.is_empty() {
        tracing::warn!("[[modbus]]/[[serial]] devices are not polled by a cluster worker: a relay next to them polls them (`gridsentry relay`)");
    }
    tracing::info!(worker = %cluster.worker(), partitions = cluster.partitions, "cluster worker running");
    Ok(base.running((http, 0), control, owner, series, lock))
}

/// SIGHUP: the last reload, which every running partition's pipeline applies and partitions
/// taken later start with.
fn reloads(base: &mut Base) -> (mpsc::UnboundedSender<Control>, watch::Sender<Option<Control>>) {
    let (control, mut control_rx) = mpsc::unbounded_channel::<Control>();
    let reloads = watch::Sender::new(None);
    let last = reloads.clone();
    base.supervise(
        "reloads",
        tokio::spawn(async move {
            while let Some(c) = control_rx.recv().await {
                last.send_replace(Some(c));
            }
        }),
    );
    (control, reloads)
}
