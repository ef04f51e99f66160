//! Debian's mosquitto on a free loopback port: `max_queued_messages` raised (its default of
//! 1000 drops QoS 1 messages to a slow subscriber), persistence on (sessions survive a restart),
//! optionally with a password file and a TLS listener signed by a local CA.

use crate::{free_port, kill, terminate, wait_port};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A mosquitto process.
pub struct Mosquitto {
    /// Its port.
    pub port: u16,
    /// The TLS listener's port, and the CA file that signed its certificate (`start_tls`).
    pub tls: Option<(u16, PathBuf)>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    auth: Option<(String, String)>,
    /// An `acl_file`.
    acl: Option<String>,
    /// Another address it listens on (same port), besides 127.0.0.1.
    also_on: Option<String>,
    /// Save the persistence file after every change (survives a SIGKILL, slowly).
    save_every_change: bool,
}

impl Mosquitto {
    /// Starts mosquitto on a free port (fails loudly if it is not installed).
    pub fn start() -> Mosquitto {
        Self::start_listening(None, false)
    }

    /// Starts mosquitto on a free port of 127.0.0.1 and of `address` too (a TAP device's host
    /// end, where a device under test reaches it).
    pub fn start_also_on(address: &str) -> Mosquitto {
        Self::start_listening(Some(address.to_string()), false)
    }

    /// Starts mosquitto saving its sessions and queued messages after every change
    /// (`autosave_on_changes`, `autosave_interval 1`), so that a SIGKILL loses at most what
    /// it acknowledged in the instant before.
    pub fn start_saving_every_change() -> Mosquitto {
        Self::start_listening(None, true)
    }

    fn start_listening(also_on: Option<String>, save_every_change: bool) -> Mosquitto {
        let mut m = Mosquitto {
            port: free_port(),
            tls: None,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            auth: None,
            acl: None,
            also_on,
            save_every_change,
        };
        m.spawn();
        m
    }

    /// Starts mosquitto with the password and access-list files `gridsentry provision` wrote
    /// into `dir` (`broker/passwd`, `broker/acl`): no anonymous clients, each device only on its
    /// topics.
    pub fn start_provisioned(dir: &std::path::Path) -> Mosquitto {
        let mut m = Mosquitto {
            port: free_port(),
            tls: None,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            auth: Some((String::new(), dir.join("broker/passwd").display().to_string())),
            acl: Some(dir.join("broker/acl").display().to_string()),
            also_on: None,
            save_every_change: false,
        };
        m.spawn();
        m
    }

    /// Starts mosquitto that accepts only `user` with `password`, on a plain listener (`port`)
    /// and a TLS listener (`tls`) whose certificate for 127.0.0.1 is signed by a local CA made
    /// here with `openssl` (Debian package `openssl`).
    pub fn start_tls(user: &str, password: &str) -> Mosquitto {
        let mut m = Mosquitto::start_with_password_unstarted(user, password);
        let dir = m.dir.path().to_path_buf();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl must be installed");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=gridsentry test CA"],
        ]
        .concat());
        run(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]]
            .concat());
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        // mosquitto started as root drops to its own user before it loads the key: a test key
        // in a test directory may be readable.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        m.tls = Some((free_port(), dir.join("ca.pem")));
        m.spawn();
        m
    }

    /// Starts mosquitto that accepts only `user` with `password` (a `mosquitto_passwd` file).
    pub fn start_with_password(user: &str, password: &str) -> Mosquitto {
        let mut m = Mosquitto::start_with_password_unstarted(user, password);
        m.spawn();
        m
    }

    fn start_with_password_unstarted(user: &str, password: &str) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwd");
        let ok = Command::new("mosquitto_passwd")
            .arg("-c")
            .arg("-b")
            .arg(&file)
            .arg(user)
            .arg(password)
            .status()
            .unwrap();
        assert!(ok.success(), "mosquitto_passwd failed");
        Mosquitto {
            port: free_port(),
            tls: None,
            dir,
            child: None,
            auth: Some((user.into(), file.display().to_string())),
            acl: None,
            also_on: None,
            save_every_change: false,
        }
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let auth = match &self.auth {
            Some((_, file)) => format!("allow_anonymous false\npassword_file {file}\n"),
            None => "allow_anonymous true\n".to_string(),
        };
        let acl = self.acl.as_ref().map(|f| format!("acl_file {f}\n")).unwrap_or_default();
        let tls = match &self.tls {
            Some((port, _)) => {
                let d = self.dir.path().display();
                format!("listener {port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n")
            }
            None => String::new(),
        };
        // Started as root, mosquitto drops to user `mosquitto`, which cannot write its database
        // into our temporary directory: sessions would silently not survive a restart.
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let user = if root { "user root\n" } else { "" };
        let save =
            if self.save_every_change { "autosave_on_changes true\nautosave_interval 1\n" } else { "" };
        let text = format!(
            "{tls}listener {port} 127.0.0.1\n{also}{user}{auth}{acl}{save}persistence true\npersistence_location {dir}/\n\
             max_queued_messages 1000000\nmax_inflight_messages 1000\nset_tcp_nodelay true\nlog_dest stderr\nlog_type error\n",
            port = self.port,
            also = self.also_on.as_ref().map(|a| format!("listener {} {a}\n", self.port)).unwrap_or_default(),
            dir = self.dir.path().display()
        );
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (Debian package `mosquitto`; scripts/test installs it)");
        self.child = Some(child);
        wait_port(self.port);
        if let Some((port, _)) = &self.tls {
            wait_port(*port);
        }
    }

    /// Stops the broker (SIGTERM: it saves its sessions) and starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts a stopped broker again (its sessions come back from the persistence file).
    pub fn resume(&mut self) {
        self.spawn();
    }

    /// Its process id while running (for CPU figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the broker (SIGKILL: no chance to save its sessions) and waits for it.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Stops the broker.
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
