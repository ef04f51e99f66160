//! Node-RED, for the comparison benchmark: the flow committed in `bench/` (mqtt in → threshold
//! with hysteresis → signed webhook), run by the `node-red` npm package that `scripts/bench`
//! installs into a cache directory.

use crate::{free_port, kill, SECRET};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Node-RED.
pub struct NodeRed {
    /// Its HTTP port (`GET /count`: readings and probes its flow has seen).
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl NodeRed {
    /// Starts Node-RED from `install` (a directory holding `node_modules/node-red`) on the
    /// flow in `bench/`, reading from the broker on `mqtt_port` and posting to `hook_url`.
    pub fn start(install: &Path, mqtt_port: u16, hook_url: &str) -> NodeRed {
        let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench");
        let red = install.join("node_modules/node-red/red.js");
        assert!(red.exists(), "{} missing: scripts/bench installs node-red", red.display());
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("node")
            .arg(&red)
            .arg("--settings")
            .arg(bench.join("nodered-settings.js"))
            .env("NODE_RED_PORT", port.to_string())
            .env("NODE_RED_USER_DIR", dir.path())
            .env("MQTT_PORT", mqtt_port.to_string())
            .env("HOOK_URL", hook_url)
            .env("HOOK_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("nodered.log")).unwrap())
            .spawn()
            .expect("node must be installed");
        NodeRed { port, child: Some(child), dir }
    }

    /// What it logged (errors only: a flow that does not compile says so here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nodered.log")).unwrap_or_default()
    }

    /// The process id (CPU and memory readings).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Bench readings the flow has seen, once its HTTP side answers (probes not included).
    pub async fn count(&self) -> Option<u64> {
        self.counters().await.map(|c| c.0)
    }

    /// Probe readings (site `probe`) the flow has seen: it is subscribed once this is non-zero.
    pub async fn probes(&self) -> Option<u64> {
        self.counters().await.map(|c| c.1)
    }

    async fn counters(&self) -> Option<(u64, u64)> {
        let r = reqwest::get(format!("http://127.0.0.1:{}/count", self.port)).await.ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        Some((v["count"].as_u64()?, v["probes"].as_u64()?))
    }

    /// Waits until the HTTP side answers (start-up time).
    pub async fn wait_http(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.count().await.is_none() {
            assert!(Instant::now() < deadline, "node-red did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for NodeRed {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
