//! A three-node nats-server cluster with JetStream (Debian's `nats-server`), on free loopback
//! ports, each node with its own store directory, the subject mapping cluster mode needs
//! (`gs.in.SITE.DEVICE.STREAM` → `gs.p.PARTITION.SITE.DEVICE.STREAM`, the partition hashed from
//! the site), and kill/restart of single nodes for fault tests.
//!
//! Every node closes its boundary as deploy/cluster/nats-*.conf does: the users `relay`,
//! `worker` and `admin` with the shipped permissions ([`PERMISSIONS`], the same text), and with
//! [`Nats::start_tls`] client TLS with a CA made for the test.

use crate::{free_port, kill, terminate, wait_port};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One node.
struct Node {
    port: u16,
    cluster_port: u16,
    child: Option<Child>,
}

/// The `authorization` block of the shipped nats-server configs (deploy/cluster/nats-1.conf
/// includes the same file), with `$RELAY_PASSWORD`, `$WORKER_PASSWORD` and `$ADMIN_PASSWORD`.
pub const PERMISSIONS: &str = include_str!("../../deploy/cluster/nats-users.conf");

/// A role's NATS user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Publishes readings.
    Relay,
    /// Reads them, announces order changes.
    Worker,
    /// Everything (an operator's account).
    Admin,
}

impl Role {
    /// The user's name.
    pub fn user(self) -> &'static str {
        match self {
            Role::Relay => "relay",
            Role::Worker => "worker",
            Role::Admin => "admin",
        }
    }

    /// The user's password in the tests.
    pub fn password(self) -> String {
        format!("{}-test-password", self.user())
    }
}

/// A cluster of three nodes.
pub struct Nats {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    partitions: u32,
    tls: bool,
}

impl Nats {
    /// Starts three nodes mapping sites to `partitions` partitions; returns once all listen and
    /// JetStream has a meta leader.
    pub fn start(partitions: u32) -> Nats {
        Nats::start_with(partitions, false)
    }

    /// The same, clients speaking TLS with a certificate from a CA made for the test
    /// ([`Nats::ca`]).
    pub fn start_tls(partitions: u32) -> Nats {
        Nats::start_with(partitions, true)
    }

    /// A node that cannot listen (its port taken by another test between `free_port` and its
    /// start, or a start slower than the wait on a loaded machine) makes the cluster start again
    /// on fresh ports, up to three times.
    fn start_with(partitions: u32, tls: bool) -> Nats {
        let mut why = String::new();
        for _ in 0..3 {
            let mut n = Nats::try_start(partitions, tls);
            match n.listening(Duration::from_secs(30)) {
                Ok(()) => return n,
                Err(e) => why = e,
            }
        }
        panic!("the NATS test cluster did not start three times: {why}");
    }

    /// Whether every node listens within `wait`; else which did not, with its log.
    fn listening(&mut self, wait: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + wait;
        for (i, node) in self.nodes.iter_mut().enumerate() {
            while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
                let exited = node.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                if exited.is_some() || std::time::Instant::now() >= deadline {
                    let log = std::fs::read_to_string(self.dir.path().join(format!("n{i}.log")));
                    return Err(format!(
                        "node n{i} (port {}, {exited:?}): {}",
                        node.port,
                        log.unwrap_or_default()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    fn try_start(partitions: u32, tls: bool) -> Nats {
        let dir = tempfile::tempdir().unwrap();
        if tls {
            crate::make_ca(dir.path());
        }
        for role in [Role::Relay, Role::Worker, Role::Admin] {
            crate::write_secret(&dir.path().join(role.user()), &role.password());
        }
        let nodes =
            (0..3).map(|_| Node { port: free_port(), cluster_port: free_port(), child: None }).collect();
        let mut n = Nats { dir, nodes, partitions, tls };
        for i in 0..3 {
            n.spawn(i);
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
             mappings = {{ \"gs.in.*.*.*\": \"gs.p.{{{{partition({k},1)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{wildcard(3)}}}}\" }}\n\
             {users}\n{tls}\n",
            port = self.nodes[i].port,
            cport = self.nodes[i].cluster_port,
            store = store.display(),
            routes = routes.join(", "),
            k = self.partitions,
            users = PERMISSIONS
                .replace("$RELAY_PASSWORD", &Role::Relay.password())
                .replace("$WORKER_PASSWORD", &Role::Worker.password())
                .replace("$ADMIN_PASSWORD", &Role::Admin.password()),
            tls = if self.tls {
                let d = self.dir.path();
                format!(
                    "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
                    d.join("server.pem").display(),
                    d.join("server.key").display()
                )
            } else {
                String::new()
            },
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

    /// The `[cluster]` lines a process of `role` needs to reach this cluster: the servers, the
    /// role's user and password (a secret file), the CA when TLS.
    pub fn toml(&self, role: Role) -> String {
        let urls: Vec<String> = self.urls().iter().map(|u| format!("\"{u}\"")).collect();
        let mut t = format!(
            "nats = [{}]\nnats_user = \"{}\"\nnats_password = {{ file = \"{}\" }}\n",
            urls.join(", "),
            role.user(),
            self.dir.path().join(role.user()).display()
        );
        if self.tls {
            t += &format!("nats_ca = \"{}\"\n", self.ca().display());
        }
        t
    }

    /// The test CA's certificate (TLS clusters).
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A NATS client as `role` (`None`: no credentials), with a short request timeout.
    pub async fn client(&self, role: Option<Role>) -> Result<async_nats::Client, String> {
        let mut o = async_nats::ConnectOptions::new()
            .request_timeout(Some(std::time::Duration::from_secs(2)))
            .connection_timeout(std::time::Duration::from_secs(3));
        if let Some(r) = role {
            o = o.user_and_password(r.user().into(), r.password());
        }
        if self.tls {
            o = o.add_root_certificates(self.ca()).require_tls(true);
        }
        let addrs: Vec<async_nats::ServerAddr> = self.urls().iter().map(|u| u.parse().unwrap()).collect();
        o.connect(addrs).await.map_err(|e| e.to_string())
    }

    /// JetStream as the operator's admin user, with the reading stream made if missing (as a
    /// worker would: a relay alone waits for it).
    pub async fn admin(&self) -> async_nats::jetstream::Context {
        let js = async_nats::jetstream::new(self.client(Some(Role::Admin)).await.unwrap());
        gridsentry::cluster::stream::ensure(&js, 3, 1, std::time::Duration::from_secs(60)).await.unwrap();
        js
    }

    /// The node leading the reading stream (its index), as the cluster says.
    pub async fn stream_leader(&self, js: &async_nats::jetstream::Context) -> Option<usize> {
        let info = js.get_stream("GS_READINGS").await.ok()?.info().await.ok()?.clone();
        let leader = info.cluster?.leader?;
        leader.strip_prefix('n')?.parse().ok()
    }

    /// Waits until the reading stream has a leader and both other replicas are current (a node
    /// restarted after a kill has caught up): a fault test's next fault hits a whole cluster.
    pub async fn wait_stream_healthy(&self, js: &async_nats::jetstream::Context) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(mut s) = js.get_stream("GS_READINGS").await {
                if let Ok(info) = s.info().await {
                    if let Some(c) = &info.cluster {
                        if c.leader.is_some()
                            && c.replicas.len() == 2
                            && c.replicas.iter().all(|r| r.current && !r.offline)
                        {
                            return;
                        }
                    }
                }
            }
            assert!(std::time::Instant::now() < deadline, "the stream's replicas did not catch up");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
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
