//! The durable stage with a disk the test controls: nothing is acted on before its sync
//! returns, and a failed sync stops the pipeline with nothing acked.

use super::durable::Syncer;
use super::*;
use crate::flow::{self, Ack, Closed, Sink};
use crate::orders::SlaTable;
use crate::watchdog::Progress;
use gridsentry_sensors::{Body, Header, NoiseReport, Reading, Timestamp, Topic};
use std::sync::mpsc as std_mpsc;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Remembers how many readings it was handed, and says so.
struct Acks(Mutex<usize>, std_mpsc::Sender<usize>);

impl Sink for Acks {
    fn committed(&self, batch: Vec<Inbound>) -> Result<(), Closed> {
        let mut n = self.0.lock().unwrap();
        *n += batch.len();
        let _ = self.1.send(*n);
        Ok(())
    }
}

fn reading(seq: u32) -> Inbound {
    let header = Header {
        site: Id::new("plaza-1").unwrap(),
        device: Id::new("nb-1").unwrap(),
        boot_id: 1,
        seq,
        time: Timestamp::Utc(now_ms()),
        historical: false,
    };
    let r = Reading { header, body: Body::Noise(NoiseReport::levels(55.0, 60.0)) };
    let topic = Topic::new(r.header.site.clone(), r.header.device.clone(), Stream::Noise);
    Inbound::new(topic, r, Default::default(), now_ms(), Ack::None)
}

type Run = std::thread::JoinHandle<Result<(), PipelineError>>;

/// A pipeline on a fresh SQLite store, syncing with `syncer`; its inlet, acks and thread.
fn start(
    dir: &std::path::Path,
    syncer: Syncer,
) -> (flow::Sender<Inbound>, Arc<Acks>, std_mpsc::Receiver<usize>, Arc<Progress>, Run) {
    let store = Store::open(&dir.join("orders.db"), SlaTable::default(), vec![]).unwrap();
    let out = Outputs {
        changes: broadcast::channel(16).0,
        outbox: watch::channel(0).0,
        metrics: Arc::default(),
        live: Arc::default(),
        report: None,
    };
    let pipeline = Pipeline::new(Engine::new(vec![], jiff::tz::TimeZone::UTC).unwrap(), store, out).unwrap();
    let progress = Progress::new("pipeline");
    let (tx, rx) = flow::channel(progress.clone());
    let (said, heard) = std_mpsc::channel();
    let acks = Arc::new(Acks(Mutex::new(0), said));
    let sink: Arc<dyn Sink> = acks.clone();
    let tuning = Tuning { batch_max: 512, linger: Duration::ZERO, tick: Duration::from_secs(3600) };
    let run = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (_control, control_rx) = mpsc::unbounded_channel();
        pipeline.run_with(rt.handle().clone(), rx, control_rx, sink, tuning, syncer)
    });
    (tx, acks, heard, progress, run)
}

#[test]
fn nothing_is_acked_before_its_sync_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (entered, in_sync) = std_mpsc::channel();
    let (release, released) = std_mpsc::channel::<()>();
    let released = Mutex::new(released);
    let syncer = Syncer::With(Box::new(move || {
        let _ = entered.send(());
        released.lock().unwrap().recv().map_err(std::io::Error::other)
    }));
    let (tx, acks, heard, progress, run) = start(dir.path(), syncer);
    tx.send((0..3).map(reading).collect()).unwrap();
    in_sync.recv_timeout(Duration::from_secs(60)).expect("the sync began");
    // Committed, and held at the sync: the next readings are taken meanwhile (and committed
    // together once that sync is done).
    tx.send((3..5).map(reading).collect()).unwrap();
    assert_eq!(*acks.0.lock().unwrap(), 0, "acked before the disk had it");
    assert_eq!(progress.finished(), 0);
    release.send(()).unwrap();
    assert_eq!(
        heard.recv_timeout(Duration::from_secs(60)).expect("acked"),
        3,
        "the first commit, once synced"
    );
    in_sync.recv_timeout(Duration::from_secs(60)).expect("the sync began");
    assert_eq!(*acks.0.lock().unwrap(), 3, "the second commit waits for its own sync");
    release.send(()).unwrap();
    assert_eq!(heard.recv_timeout(Duration::from_secs(60)).expect("acked"), 5);
    drop(tx);
    run.join().unwrap().unwrap();
    assert_eq!(progress.finished(), 5);
}

#[test]
fn a_failed_sync_stops_the_pipeline_and_acks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let syncer = Syncer::With(Box::new(|| Err(std::io::Error::other("disk gone"))));
    let (tx, acks, _heard, progress, run) = start(dir.path(), syncer);
    tx.send((0..3).map(reading).collect()).unwrap();
    // The pipeline stops by itself (no further reading needed to notice).
    let r = run.join().unwrap();
    assert!(matches!(r, Err(PipelineError::Store(StoreError::Io(_)))), "{r:?}");
    assert_eq!(*acks.0.lock().unwrap(), 0);
    assert_eq!(progress.finished(), 0);
}

#[test]
fn the_journal_sync_names_the_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("orders.db"), SlaTable::default(), vec![]).unwrap();
    let wal = store.defer_sync().unwrap().expect("SQLite defers its syncs");
    assert_eq!(wal, dir.path().join("orders.db-wal"));
    assert!(wal.exists(), "the log exists once the store is open");
}

/// Fills the log through `store`: `n` commits of about two pages each.
fn fill(store: &mut Store, n: i64) {
    let detail = "x".repeat(6000);
    for i in 0..n {
        let e =
            crate::orders::AuditEntry { who: "test", action: "test.fill", subject: "log", detail: &detail };
        store.audit(e, i).unwrap();
    }
}

/// Polls `done` until it holds (what it waits for happens on another thread).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < give_up, "{what}: not within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_pipelines_commits_never_checkpoint_the_log_its_thread_does() {
    use super::checkpoint::Checkpointer;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("orders.db"), SlaTable::default(), vec![]).unwrap();
    let wal = store.defer_sync().unwrap().unwrap();
    fill(&mut store, 700);
    // SQLite's default would have copied the log back inside a commit at 1,000 pages and
    // started it again: it is still all there.
    let len = std::fs::metadata(&wal).unwrap().len();
    assert!(len > 1_200 * 4096, "the log was checkpointed by a commit: {len} bytes");
    let checkpointer = Checkpointer::start(&wal).unwrap();
    wait_until("a checkpoint pass", || checkpointer.passes() >= 1);
    // Every frame was copied: the next commit starts the log from its beginning.
    fill(&mut store, 1);
    let (log, _) = store.checkpoint_pass().unwrap();
    assert!(log < 10, "the log did not restart after its checkpoint: {log} frames");
    assert!(!checkpointer.wanted(), "a short log needs no pass from the pipeline");
}

#[test]
fn a_checkpoint_thread_that_cannot_checkpoint_asks_the_pipeline_to() {
    use super::checkpoint::Checkpointer;
    let dir = tempfile::tempdir().unwrap();
    let checkpointer = Checkpointer::start(&dir.path().join("gone.db-wal")).unwrap();
    wait_until("a request for a pass", || checkpointer.wanted());
    assert_eq!(checkpointer.passes(), 0);
}
