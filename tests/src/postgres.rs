//! Debian's PostgreSQL on a free loopback port, in a temporary directory: `initdb` as an
//! unprivileged user (the `postgres` account Debian's package creates, when the tests run as
//! root: the server refuses to run as root), trust authentication on 127.0.0.1 only, one fresh
//! database per test (`database()`).

use crate::{free_port, kill, terminate, wait_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A PostgreSQL server.
pub struct Postgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    tls: bool,
}

/// Where Debian keeps the server binaries (`/usr/lib/postgresql/15/bin`, the newest if several).
fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (Debian package `postgresql`; scripts/test installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("no /usr/lib/postgresql/*/bin/postgres")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A command run as the unprivileged user when we are root (setpriv execs the program: the
/// child's pid is the server's, so signals reach it).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// Initialises a cluster and starts the server (fails loudly if PostgreSQL is missing).
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// The same, with TLS (`ssl = on`) and a certificate for 127.0.0.1 from a CA made for the
    /// test ([`Postgres::ca`]).
    pub fn start_tls() -> Postgres {
        Postgres::start_with(true)
    }

    /// The test CA's certificate (TLS servers).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start_with(tls: bool) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        if tls {
            crate::make_ca(dir.path());
            std::fs::set_permissions(
                dir.path().join("server.key"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
        }
        if is_root() {
            let ok =
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(ok.success(), "chown of the data directory to postgres failed");
        }
        let data = dir.path().join("data");
        let out = as_server_user(&bin_dir().join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "gridsentry", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut pg = Postgres { port: free_port(), dir, child: None, tls };
        pg.spawn();
        pg
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = as_server_user(&bin_dir().join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(self.dir.path())
            .args(if self.tls {
                vec![
                    "-c".to_string(),
                    "ssl=on".into(),
                    "-c".into(),
                    format!("ssl_cert_file={}", self.dir.path().join("server.pem").display()),
                    "-c".into(),
                    format!("ssl_key_file={}", self.dir.path().join("server.key").display()),
                ]
            } else {
                Vec::new()
            })
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres did not start");
        self.child = Some(child);
        wait_port(self.port);
        // Accepting TCP is not accepting queries: wait for the server to say it is ready.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !Command::new(bin_dir().join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(std::time::Instant::now() < deadline, "postgres not ready: {}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The connection string of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("host=127.0.0.1 port={} user=gridsentry dbname={name} connect_timeout=5", self.port)
    }

    /// A new, empty database; its connection string.
    pub fn database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs SQL with psql in database `db`; its output (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(bin_dir().join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "gridsentry", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGKILLs the server (a crash), leaving its data directory.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Restarts the server the way an operator or a fail-over does: fast shutdown (SIGINT:
    /// open transactions are rolled back, every client is disconnected), then start again on
    /// the same port and data.
    pub fn restart_fast(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").arg("-INT").arg(c.id().to_string()).status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        self.spawn();
    }

    /// Starts it again on the same port and data (after `kill`: crash recovery).
    pub fn restart(&mut self) {
        terminate(&mut self.child);
        // A killed postmaster leaves its pid file; the new one checks it is stale.
        self.spawn();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown (the data is thrown away with the directory).
        if let Some(c) = &self.child {
            let _ = Command::new("kill").arg("-QUIT").arg(c.id().to_string()).status();
        }
        terminate(&mut self.child);
    }
}
