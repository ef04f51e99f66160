//! VictoriaMetrics (Debian `victoria-metrics`) as the time-series server: it accepts the
//! InfluxDB v2 write API (`/api/v2/write`) that the influxdb2 crate speaks, and its export API
//! reads back every sample.
//!
//! [`Victoria::start`] runs it with `-dedup.minScrapeInterval=1ms`: two writes of the same
//! series at the same millisecond keep one sample, which is what InfluxDB does (a point with the
//! same series and timestamp overwrites). [`Victoria::start_without_dedup`] keeps every write,
//! so that a test can see a reading written twice. `-retentionPeriod=100y` keeps readings with
//! old event times.

use crate::{free_port, kill, terminate, wait_port};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

/// A victoria-metrics process with its own storage directory.
pub struct Victoria {
    /// Its port.
    pub port: u16,
    dedup: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// One exported series: its labels (`__name__` is `{measurement}_{field}`) and samples.
#[derive(Debug, Clone)]
pub struct Series {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// (timestamp ms, value), in time order.
    pub samples: Vec<(i64, f64)>,
}

impl Victoria {
    /// Starts it on a free port (fails loudly if it is not installed).
    pub fn start() -> Victoria {
        let mut v =
            Victoria { port: free_port(), dedup: true, dir: tempfile::tempdir().unwrap(), child: None };
        v.spawn();
        v
    }

    /// Starts it keeping every sample written, duplicates included.
    pub fn start_without_dedup() -> Victoria {
        let mut v =
            Victoria { port: free_port(), dedup: false, dir: tempfile::tempdir().unwrap(), child: None };
        v.spawn();
        v
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("victoria-metrics")
            .arg(format!("-storageDataPath={}", self.dir.path().display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .args(["-retentionPeriod=100y", "-loggerLevel=ERROR"])
            .args(self.dedup.then_some("-dedup.minScrapeInterval=1ms"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("victoria-metrics must be installed (Debian package `victoria-metrics`; scripts/test installs it)");
        self.child = Some(child);
        wait_port(self.port);
        // The port answering is not enough: while it was stopped another test may have taken
        // the port, and a second server on the same storage would exit at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("victoria-metrics exited at start ({status}): port {} taken?", self.port);
                }
            }
            let health = std::net::TcpStream::connect(("127.0.0.1", self.port)).and_then(|mut s| {
                use std::io::{Read, Write};
                s.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
                let mut answer = String::new();
                s.read_to_string(&mut answer)?;
                Ok(answer)
            });
            if health.is_ok_and(|a| a.starts_with("HTTP/1.") && a.contains(" 200 ") && a.ends_with("OK")) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "victoria-metrics on port {} not healthy",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM). Not SIGKILL: VictoriaMetrics keeps the last second of
    /// accepted samples in memory, and losing what a server acknowledged is not the outage under
    /// test; the daemon only sees its writes fail, either way.
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }

    /// Starts it again on the same port and storage.
    pub fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Every series whose name matches the regex `name` (after a flush, so that what was
    /// written is searchable).
    pub async fn export(&self, name: &str) -> Vec<Series> {
        let c = reqwest::Client::new();
        let flush = c.get(format!("{}/internal/force_flush", self.url())).send().await.unwrap();
        assert!(flush.status().is_success());
        let r = c
            .get(format!("{}/api/v1/export", self.url()))
            .query(&[
                ("match[]", format!("{{__name__=~\"{name}\"}}")),
                ("start", "0".to_string()),
                ("end", "4102444800".to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "export: {}", r.status());
        let text = r.text().await.unwrap();
        let mut out: Vec<Series> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let labels = v["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let ts = v["timestamps"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap());
                let vals = v["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN));
                let mut samples: Vec<(i64, f64)> = ts.zip(vals).collect();
                samples.sort_by_key(|s| s.0);
                Series { labels, samples }
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
