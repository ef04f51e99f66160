//! A three-node nats-server cluster with JetStream (Debian's `nats-server`), on free loopback
//! ports, each node with its own store directory, the subject mapping cluster mode needs
//! (`gs.in.SITE.DEVICE.STREAM` → `gs.p.PARTITION.SITE.DEVICE.STREAM`, the partition hashed from
//! the site), and kill/restart of single nodes for fault tests.

use crate::{free_port, kill, terminate, wait_port};
use std::process::{Child, Command, Stdio};

/// One node.
struct Node {
    port: u16,
    cluster_port: u16,
    child: Option<Child>,
}

/// A cluster of three nodes.
pub struct Nats {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    partitions: u32,
}

impl Nats {
    /// Starts three nodes mapping sites to `partitions` partitions; returns once all listen and
    /// JetStream has a meta leader.
    pub fn start(partitions: u32) -> Nats {
        let dir = tempfile::tempdir().unwrap();
        let nodes =
            (0..3).map(|_| Node { port: free_port(), cluster_port: free_port(), child: None }).collect();
        let mut n = Nats { dir, nodes, partitions };
        for i in 0..3 {
            n.spawn(i);
        }
        for node in &n.nodes {
            wait_port(node.port);
        }
        n
    }

    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> =
            self.nodes.iter().map(|n| format!("\"nats-route://127.0.0.1:{}\"", n.cluster_port)).collect();
        let store = self.dir.path().join(format!("n{i}"));
        let conf = format!(
            "server_name: n{i}\nlisten: \"127.0.0.1:{port}\"\n\
             jetstream {{ store_dir: \"{store}\", max_memory_store: 64MB, max_file_store: 2GB }}\n\
             cluster {{ name: gs, listen: \"127.0.0.1:{cport}\", routes: [{routes}] }}\n\
             mappings = {{ \"gs.in.*.*.*\": \"gs.p.{{{{partition({k},1)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{wildcard(3)}}}}\" }}\n",
            port = self.nodes[i].port,
            cport = self.nodes[i].cluster_port,
            store = store.display(),
            routes = routes.join(", "),
            k = self.partitions,
        );
        let path = self.dir.path().join(format!("n{i}.conf"));
        std::fs::write(&path, conf).unwrap();
        let log = std::fs::File::create(self.dir.path().join(format!("n{i}.log"))).unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server did not start (Debian package `nats-server`; scripts/test installs it)");
        self.nodes[i].child = Some(child);
    }

    /// The client URLs of all nodes (`nats://127.0.0.1:P`).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.port)).collect()
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        kill(&mut self.nodes[i].child);
    }

    /// Starts node `i` again (same ports, same store).
    pub fn restart(&mut self, i: usize) {
        terminate(&mut self.nodes[i].child);
        self.spawn(i);
        wait_port(self.nodes[i].port);
    }

    /// Node `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("n{i}.log"))).unwrap_or_default()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            kill(&mut n.child);
        }
    }
}
