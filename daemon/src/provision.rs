//! `gridsentry provision`: one broker identity per device, and the files that enforce it.
//!
//! Why: with one shared `devices` login any box can publish as any other, and nothing tells
//! a forged reading from a real one. Each device gets its own broker user (`site/device`) and a
//! random password, and the broker's access list lets that user write only under its own topic
//! `gs/v1/{site}/{device}/+`. mosquitto enforces it (a publish elsewhere is dropped by the
//! broker, never delivered), so the daemon's topic/payload check then also proves identity.
//!
//! The command keeps its files in one directory, split by who may read them (each service
//! mounts only its own part), re-written whole on every run:
//!
//! - `broker/passwd`: mosquitto's password file (`$7$`: PBKDF2-SHA512, 101 rounds, 12-byte salt,
//!   as `mosquitto_passwd` writes it), the daemon's user kept as it is;
//! - `broker/acl`: mosquitto's `acl_file`: the daemon reads `gs/v1/#`, each device writes its
//!   topics;
//! - `registry/devices`: one `site/device` per line: `[devices] allow = "known"` reads it;
//! - `firmware/{site}/{device}.env` (0600): the firmware build settings of that box (its
//!   password: for the installer's laptop only).
//!
//! Provisioning a device again gives it a new password (the old one stops working once the
//! broker reloads its files: `kill -HUP`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gridsentry_sensors::Id;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What to provision.
#[derive(Debug, Clone)]
pub struct Request {
    /// Directory of the files.
    pub dir: PathBuf,
    /// Site id.
    pub site: Id,
    /// Device id.
    pub device: Id,
    /// The broker as the device reaches it, `host:port`.
    pub broker: String,
    /// The daemon's broker user (reads everything).
    pub daemon_user: String,
    /// The broker's group: `broker/passwd` and `broker/acl` are given to it (0640), so a broker
    /// running as its own user (Debian's `mosquitto`) can read them. `None`: the caller's group.
    pub broker_group: Option<String>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The device's broker user.
    pub user: String,
    /// Its firmware settings file.
    pub env_file: PathBuf,
    /// Devices in the registry now.
    pub devices: usize,
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// An existing file is not in the expected form.
    #[error("{0}:{1}: {2}")]
    Format(PathBuf, usize, String),
}

/// The broker user of a device.
pub fn user(site: &Id, device: &Id) -> String {
    format!("{site}/{device}")
}

/// A mosquitto `$7$` password line for `user`.
pub fn passwd_line(user: &str, password: &str) -> String {
    let salt: [u8; 12] = rand::random();
    let mut hash = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), &salt, 101, &mut hash);
    format!("{user}:$7$101${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
}

/// Provisions one device (see the module docs).
pub fn provision(req: &Request) -> Result<Provisioned, ProvisionError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| ProvisionError::Io(p, e)
    };
    let (broker, registry_dir) = (req.dir.join("broker"), req.dir.join("registry"));
    for d in [&broker, &registry_dir] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let user = user(&req.site, &req.device);
    let password: String = {
        let bytes: [u8; 24] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    // The registry: every device provisioned so far.
    let registry = registry_dir.join("devices");
    let mut devices = read_registry(&registry)?;
    devices.insert(user.clone());
    write_private(&registry, &(devices.iter().map(|d| format!("{d}\n")).collect::<String>()), 0o644)?;
    // Password file: other users' lines kept, this device's replaced.
    let passwd = broker.join("passwd");
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    if passwd.exists() {
        let text = std::fs::read_to_string(&passwd).map_err(io(&passwd))?;
        for (n, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (u, _) = l
                .split_once(':')
                .ok_or_else(|| ProvisionError::Format(passwd.clone(), n + 1, "expected user:hash".into()))?;
            lines.insert(u.to_string(), l.to_string());
        }
    }
    lines.insert(user.clone(), passwd_line(&user, &password));
    let group = match &req.broker_group {
        Some(g) => Some(group_id(g).ok_or_else(|| {
            ProvisionError::Io(
                broker.clone(),
                std::io::Error::other(format!("no group `{g}` on this machine")),
            )
        })?),
        None => None,
    };
    write_private(&passwd, &lines.values().map(|l| format!("{l}\n")).collect::<String>(), 0o640)?;
    write_private(&broker.join("acl"), &acl(&req.daemon_user, &devices), 0o640)?;
    if let (Some(gid), Some(name)) = (group, &req.broker_group) {
        for f in [passwd.clone(), broker.join("acl")] {
            std::os::unix::fs::chown(&f, None, Some(gid)).map_err(|e| {
                let why =
                    format!("giving it to group {name}: {e} (run as root, or pass --broker-group \"\")");
                ProvisionError::Io(f.clone(), std::io::Error::new(e.kind(), why))
            })?;
        }
    }
    // Firmware build settings.
    let fw = req.dir.join("firmware").join(req.site.as_str());
    std::fs::create_dir_all(&fw).map_err(io(&fw))?;
    let env_file = fw.join(format!("{}.env", req.device));
    let env = format!(
        "# gridsentry provision: build settings of {user} (secret: keep this file private)\n\
         GRIDSENTRY_SITE={site}\nGRIDSENTRY_DEVICE={device}\nGRIDSENTRY_BROKER={broker}\n\
         GRIDSENTRY_MQTT_USER={user}\nGRIDSENTRY_MQTT_PASSWORD={password}\n",
        site = req.site,
        device = req.device,
        broker = req.broker,
    );
    write_private(&env_file, &env, 0o600)?;
    Ok(Provisioned { user, env_file, devices: devices.len() })
}

/// The access list: the daemon reads every reading topic and sends fleet updates (offers,
/// chunks); each device writes only its own readings and update reports, and reads only its own
/// offers and chunks.
pub fn acl(daemon_user: &str, devices: &std::collections::BTreeSet<String>) -> String {
    let mut s = String::from("# Written by `gridsentry provision`; edits are overwritten.\n");
    let _ = writeln!(
        s,
        "user {daemon_user}\ntopic read gs/v1/#\ntopic write gs/v1/+/+/ota\ntopic write gs/v1/+/+/ota/chunk\n"
    );
    for d in devices {
        let _ = writeln!(
            s,
            "user {d}\ntopic write gs/v1/{d}/+\ntopic write gs/v1/{d}/ota/state\ntopic read gs/v1/{d}/ota\ntopic read gs/v1/{d}/ota/chunk\n"
        );
    }
    s
}

/// The registry file: `site/device` lines (`#` comments and blank lines allowed).
pub fn read_registry(path: &Path) -> Result<std::collections::BTreeSet<String>, ProvisionError> {
    let mut set = std::collections::BTreeSet::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(set),
        Err(e) => return Err(ProvisionError::Io(path.to_path_buf(), e)),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ok = line.split_once('/').is_some_and(|(s, d)| Id::new(s).is_ok() && Id::new(d).is_ok());
        if !ok {
            let why = format!("`{line}` is not site/device");
            return Err(ProvisionError::Format(path.to_path_buf(), n + 1, why));
        }
        set.insert(line.to_string());
    }
    Ok(set)
}

/// Writes `text` to `path` with exactly `mode` through a temporary file made afresh (never half
/// a file, and never the mode or owner of a leftover temporary file).
fn write_private(path: &Path, text: &str, mode: u32) -> Result<(), ProvisionError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    let err = |e| ProvisionError::Io(path.to_path_buf(), e);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(err)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(err)?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The id of group `name`, if it exists.
pub fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam reads the group database and returns a pointer into static storage,
    // read at once (the CLI is one thread when it runs this).
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    (!g.is_null()).then(|| unsafe { (*g).gr_gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_are_what_mosquitto_writes() {
        // The hash of a line mosquitto_passwd wrote for this password verifies the same way.
        let line = passwd_line("plaza-3/nb-01", "secretpw");
        let parts: Vec<&str> = line.split('$').collect();
        assert_eq!((parts[0], parts[1], parts[2]), ("plaza-3/nb-01:", "7", "101"));
        let salt = STANDARD.decode(parts[3]).unwrap();
        let mut hash = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(b"secretpw", &salt, 101, &mut hash);
        assert_eq!(STANDARD.decode(parts[4]).unwrap(), hash);
        assert_eq!(salt.len(), 12);
    }

    #[test]
    fn provisioning_twice_keeps_others_and_rotates_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let req = |d: &str| Request {
            dir: dir.path().to_path_buf(),
            site: Id::new("plaza-3").unwrap(),
            device: Id::new(d).unwrap(),
            broker: "10.0.0.2:1883".into(),
            daemon_user: "gridsentry".into(),
            broker_group: None,
        };
        std::fs::create_dir_all(dir.path().join("broker")).unwrap();
        std::fs::write(dir.path().join("broker/passwd"), "gridsentry:$7$101$abc$def\n").unwrap();
        // A leftover temporary file open to everyone: its mode is not inherited.
        std::fs::write(dir.path().join("broker/passwd.tmp"), "junk").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("broker/passwd.tmp"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        provision(&req("nb-01")).unwrap();
        let mode = |f: &str| std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("broker/passwd"), mode("broker/acl")), (0o640, 0o640));
        let first = std::fs::read_to_string(dir.path().join("firmware/plaza-3/nb-01.env")).unwrap();
        let p = provision(&req("nb-02")).unwrap();
        assert_eq!(p.devices, 2);
        provision(&req("nb-01")).unwrap();
        let again = std::fs::read_to_string(dir.path().join("firmware/plaza-3/nb-01.env")).unwrap();
        assert_ne!(first, again, "a new password");
        assert!(again.contains("GRIDSENTRY_MQTT_USER=plaza-3/nb-01\n"));
        let passwd = std::fs::read_to_string(dir.path().join("broker/passwd")).unwrap();
        assert_eq!(passwd.lines().count(), 3);
        assert!(passwd.starts_with("gridsentry:$7$101$abc$def\n"), "the daemon's user kept");
        let acl = std::fs::read_to_string(dir.path().join("broker/acl")).unwrap();
        assert!(acl.contains("user plaza-3/nb-02\ntopic write gs/v1/plaza-3/nb-02/+\n"));
        assert!(
            acl.contains("topic write gs/v1/plaza-3/nb-02/ota/state\ntopic read gs/v1/plaza-3/nb-02/ota\n")
        );
        assert!(acl.contains("user gridsentry\ntopic read gs/v1/#\ntopic write gs/v1/+/+/ota\n"), "{acl}");
        let mode = std::fs::metadata(&p.env_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(read_registry(&dir.path().join("registry/devices")).unwrap().contains("plaza-3/nb-02"));
    }
}
