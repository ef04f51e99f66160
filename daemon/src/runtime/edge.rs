//! Edge mode's ends: the street's broker (or the embedded one) and the field devices in, one
//! pipeline thread, orders in SQLite (`data_dir/orders.db`).
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

use super::build::{self, Base};
use super::sink::{sink, Stage};
use super::{AppError, Overrides, Running};
use crate::config::Config;
use crate::ingest::mqtt::{self, Settings};
use crate::notify::deliver::Source;
use crate::orders::Store;
use crate::watchdog::Progress;
use tokio::sync::{mpsc, watch};

/// Starts edge mode.
pub(super) async fn start(
    cfg: Config,
    o: Overrides,
    shutdown: watch::Receiver<bool>,
) -> Result<Running, AppError> {
    let data_dir = o.data_dir.clone().unwrap_or_else(|| cfg.daemon.data_dir.clone());
    let lock = build::lock_data_dir(&data_dir)?;
    let db = data_dir.join("orders.db");
    let mut base = Base::new(&cfg, &o, &shutdown)?;
    let pipeline =
        build::pipeline(&cfg, Store::open(&db, cfg.sla, base.routing.clone())?, base.outputs.clone())?;
    let (settings, mqtt_port) = broker(&cfg)?;
    let metrics = base.metrics();
    let progress = [Progress::new("ingest"), Progress::new("pipeline"), Progress::new("series")];
    let (inbound_tx, inbound_rx) = crate::flow::channel(progress[1].clone());
    let field = crate::ingest::modbus::spawn(
        &cfg.modbus.iter().map(|m| m.get_ref().clone()).collect::<Vec<_>>(),
        inbound_tx.clone(),
        metrics.clone(),
        shutdown.clone(),
    )
    .into_iter()
    .chain(crate::ingest::serial::spawn(
        &cfg.serial.iter().map(|s| s.get_ref().clone()).collect::<Vec<_>>(),
        inbound_tx.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    for t in field {
        base.supervise("field bus", t);
    }
    if let Some(ota) = &cfg.ota {
        let store = Store::open(&db, cfg.sla, base.routing.clone())?;
        let outbox = Some(base.outputs.outbox.clone());
        let task = crate::ota::spawn(
            ota.get_ref(),
            settings.for_part("ota"),
            store,
            metrics.clone(),
            outbox,
            shutdown.clone(),
        );
        base.supervise("ota", task);
    }
    let (acks, ingest) =
        mqtt::spawn(settings, inbound_tx, metrics.clone(), progress[0].clone(), shutdown.clone());
    base.supervise("ingest", ingest);
    let (control, control_rx) = mpsc::unbounded_channel();
    let stage = Stage { data_dir: &data_dir, marks: &db, progress: progress[2].clone() };
    let (sink, series) = sink(&cfg, &o, stage, acks, metrics, (&base.health, &shutdown))?;
    let (rt, tuning, ended) = (tokio::runtime::Handle::current(), base.tuning, base.ended_hook("pipeline"));
    let pipeline = std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || {
            let r = pipeline.run(rt, inbound_rx, control_rx, sink, tuning);
            // `Ok`: its inlet closed, which happens only once every source (MQTT, Modbus,
            // serial) ended; each source's supervisor reports that, the root cause, which a
            // report from here could race and hide.
            if let Err(e) = &r {
                ended(Some(e.to_string()));
            }
            r
        })
        .map_err(|e| AppError::Io("starting the pipeline thread", e))?;
    base.watch(progress.to_vec());
    base.notify(Source::Sqlite(db.clone()))?;
    let store = Store::open(&db, cfg.sla, base.routing.clone())?;
    let changes = base.changes();
    let http = base.serve(&cfg, &o, store, changes, None).await?;
    Ok(base.running((http, mqtt_port), control, pipeline, series, Some(lock)))
}

/// The broker to read: `[mqtt]`, or the embedded one on `[daemon] embedded_broker`.
fn broker(cfg: &Config) -> Result<(Settings, u16), AppError> {
    if let Some(m) = &cfg.mqtt {
        return Ok((Settings::from_config(m)?, m.port));
    }
    let mut listen: std::net::SocketAddr = cfg
        .daemon
        .embedded_broker
        .get_ref()
        .parse()
        .map_err(|_| AppError::Io("embedded_broker", std::io::Error::other("not an IP:port address")))?;
    if listen.port() == 0 {
        listen.set_port(crate::broker::free_port().map_err(|e| AppError::Io("choosing a broker port", e))?);
    }
    crate::broker::start(listen).map_err(|e| AppError::Io("starting the embedded broker", e))?;
    tracing::info!(%listen, "embedded MQTT broker listening");
    Ok((Settings::local("gridsentry", listen.port()), listen.port()))
}
