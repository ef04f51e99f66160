//! One TCP link per box to the bureau's platform: queued records out, oldest first, each sent
//! with `Flag=5` (2017 edition, answer wanted) and kept until the platform answers with CN=9014
//! and its QN. No answer within [`ANSWER`] or a broken connection: reconnect (1 s, doubling, at
//! most 30 s apart) and send again from the oldest unanswered record, under the same QN.

use super::hj212;
use super::Reporter;
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::notify::deliver::Source;
use crate::orders::Store;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

/// How long the platform has to answer a record.
pub const ANSWER: Duration = Duration::from_secs(10);
/// The longest line read from the platform.
const LINE_MAX: u64 = 4096;

/// A box's link, password read.
#[derive(Debug, Clone)]
pub struct Link {
    pub mn: String,
    pub host: String,
    pub port: u16,
    pub password: String,
    pub st: u16,
}

/// Starts the queue writer (records into the database; quiet windows flushed every 10 s) and
/// one uplink per link.
pub fn spawn(
    links: Vec<Link>,
    reporter: Arc<Reporter>,
    mut records: mpsc::UnboundedReceiver<super::Record>,
    db: &Source,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, crate::orders::StoreError> {
    let (wake, woken) = watch::channel(0u64);
    let store = Arc::new(Mutex::new(db.open()?));
    let mut tasks = Vec::new();
    let (queue, mut stop) = (store.clone(), shutdown.clone());
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                r = records.recv() => match r {
                    Some(r) => {
                        let queued = queue.lock().unwrap_or_else(|p| p.into_inner())
                            .hj212_queue(&r.mn, r.cn, &r.data_time, &r.qn, &r.cp, now_ms() as i64);
                        match queued {
                            Ok(_) => { wake.send_modify(|n| *n += 1); }
                            Err(e) => tracing::error!(mn = %r.mn, cn = r.cn, data_time = %r.data_time, error = %e, "HJ 212 record not queued"),
                        }
                    }
                    None => return,
                },
                _ = tick.tick() => reporter.flush(now_ms()),
            }
        }
    }));
    for link in links {
        // One connection for all (a record a minute per box): not one per box.
        let up = Uplink { link, store: store.clone(), metrics: metrics.clone() };
        tasks.push(tokio::spawn(up.run(woken.clone(), shutdown.clone())));
    }
    Ok(tasks)
}

struct Uplink {
    link: Link,
    store: Arc<Mutex<Store>>,
    metrics: Arc<Metrics>,
}

impl Uplink {
    async fn run(self, mut wake: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_secs(1);
        let addr = format!("{}:{}", self.link.host, self.link.port);
        let mut down_since: Option<u64> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let connected =
                tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&addr)).await;
            let why = match connected {
                Ok(Ok(stream)) => {
                    if let Some(since) = down_since.take() {
                        tracing::info!(mn = %self.link.mn, %addr, down_s = (now_ms() - since) / 1000, "HJ 212 platform reachable again; sending what it missed");
                    }
                    backoff = Duration::from_secs(1);
                    tokio::select! {
                        r = self.serve(stream, &mut wake) => r.err().unwrap_or_default(),
                        _ = shutdown.changed() => return,
                    }
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "connect timed out".into(),
            };
            if down_since.is_none() {
                down_since = Some(now_ms());
                tracing::warn!(mn = %self.link.mn, %addr, error = %why, "HJ 212 link down; records wait in the database");
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    fn with_db<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.store.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Sends until the connection fails (`Err` says why).
    async fn serve(
        &self,
        stream: tokio::net::TcpStream,
        wake: &mut watch::Receiver<u64>,
    ) -> Result<(), String> {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let l = &self.link;
        loop {
            let pending = self.with_db(|s| s.hj212_pending(&l.mn, 20)).map_err(|e| e.to_string())?;
            if pending.is_empty() {
                let mut line = Vec::new();
                let mut limited = (&mut read).take(LINE_MAX);
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    n = limited.read_until(b'\n', &mut line) => match n {
                        Ok(0) | Err(_) => return Err("the platform closed the connection".into()),
                        Ok(_) => tracing::debug!(mn = %l.mn, "HJ 212 platform said something unasked; ignored"),
                    },
                }
                continue;
            }
            for f in pending {
                let data = format!(
                    "QN={};ST={};CN={};PW={};MN={};Flag=5;CP=&&{}&&",
                    f.qn, l.st, f.cn, l.password, l.mn, f.cp
                );
                let packet = hj212::packet(&data)?;
                write.write_all(packet.as_bytes()).await.map_err(|e| e.to_string())?;
                let answered = tokio::time::timeout(ANSWER, answer(&mut read, &f.qn)).await;
                match answered {
                    Ok(Ok(())) => {
                        self.with_db(|s| s.hj212_sent(f.id, true, now_ms() as i64))
                            .map_err(|e| e.to_string())?;
                        self.metrics.hj212_sent.fetch_add(1, Relaxed);
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        self.metrics.hj212_unanswered.fetch_add(1, Relaxed);
                        let _ = self.with_db(|s| s.hj212_sent(f.id, false, now_ms() as i64));
                        return Err(format!("no answer to QN={} within {ANSWER:?}", f.qn));
                    }
                }
            }
        }
    }
}

/// Reads until the platform's CN=9014 answer to `qn` (other packets are skipped).
async fn answer(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, qn: &str) -> Result<(), String> {
    // One warning per record however much a broken platform sends (lines are read 4 KiB at most).
    let mut damaged = false;
    loop {
        let mut line = Vec::new();
        match read.take(LINE_MAX).read_until(b'\n', &mut line).await {
            Ok(0) => return Err("the platform closed the connection".into()),
            Err(e) => return Err(e.to_string()),
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        match hj212::parse(&text) {
            Ok(s) if s.get("CN") == Some("9014") && s.get("QN") == Some(qn) => return Ok(()),
            Ok(_) => {}
            Err(e) if !damaged => {
                damaged = true;
                tracing::warn!(error = %e, qn, "HJ 212 platform sent a damaged packet; ignored (and any more while this record waits)");
            }
            Err(_) => {}
        }
    }
}
