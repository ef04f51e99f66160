//! `gridsentry people`, `gridsentry audit` and `gridsentry login`.
//!
//! `people` and `audit` work on the order database named by the config (the gateway's SQLite
//! file, or the cluster's PostgreSQL), so the first admin can be made before the daemon ever
//! runs; each change is recorded in the audit chain as done by `cli:<login user>`. `login`
//! asks the running API for a personal token.

use super::fail;
use clap::Subcommand;
use gridsentry::access::{self, Role};
use gridsentry::config;
use gridsentry::orders::people::Change;
use gridsentry::orders::{SlaTable, Store, StoreError};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `gridsentry people …`.
#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Add a person. Prints their first password unless `--password-env` gives one.
    Add {
        /// Name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// viewer, field, operator, admin or auditor.
        #[arg(long)]
        role: String,
        /// Limit them to a street's sites (repeat for several; none: every street).
        #[arg(long = "street")]
        streets: Vec<String>,
        /// Read the password from this environment variable.
        #[arg(long)]
        password_env: Option<String>,
    },
    /// List people (never their passwords).
    List,
    /// Disable a person and revoke their sessions and tokens.
    Disable {
        /// Name.
        name: String,
    },
    /// Let a disabled person log in again.
    Enable {
        /// Name.
        name: String,
    },
    /// A new password (printed, unless `--password-env`); unlocks and revokes every session and token.
    Reset {
        /// Name.
        name: String,
        /// Read the password from this environment variable.
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Lift a lock after failed logins.
    Unlock {
        /// Name.
        name: String,
    },
    /// Revoke every session and token of a person.
    Revoke {
        /// Name.
        name: String,
    },
}

/// `gridsentry audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain; exit 1 naming the first row that does not fit.
    Verify,
    /// Write the rows as JSON lines to stdout (the last row's hash to stderr: keep it, it
    /// anchors the exported chain).
    Export {
        /// From this time on (RFC 3339, or a date in the config's time zone).
        #[arg(long)]
        since: Option<String>,
    },
}

/// Who the CLI acts as in the audit log.
pub(super) fn cli_actor() -> String {
    let user = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| login_name());
    format!("cli:{}", gridsentry::logsafe::escape(&user, 32))
}

/// This process's user name from the password database (`uid:N` if it has none).
fn login_name() -> String {
    // SAFETY: getuid cannot fail; getpwuid returns a pointer into static storage (or null),
    // read at once on this single CLI thread.
    let uid = unsafe { libc::getuid() };
    let pw = unsafe { libc::getpwuid(uid) };
    if pw.is_null() {
        return format!("uid:{uid}");
    }
    unsafe { std::ffi::CStr::from_ptr((*pw).pw_name) }.to_string_lossy().into_owned()
}

/// Opens the config's order store on a thread of its own (the PostgreSQL client blocks) and
/// runs `f` on it.
pub(super) fn with_store<R: Send + 'static>(
    file: &Path,
    f: impl FnOnce(&mut Store, &config::Config) -> Result<R, String> + Send + 'static,
) -> Result<R, String> {
    let cfg = config::load(file).map_err(|e| e.to_string())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::thread::spawn(move || {
        let postgres = cfg.cluster.as_ref().and_then(|c| c.get_ref().postgres.clone());
        let mut store = match postgres {
            Some(secret) => {
                Store::connect_as(&secret.resolve()?, "gridsentry/cli", SlaTable::default(), Vec::new())
            }
            None => {
                let dir = &cfg.daemon.data_dir;
                gridsentry::runtime::private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                Store::open(&dir.join("orders.db"), SlaTable::default(), Vec::new())
            }
        }
        .map_err(|e| e.to_string())?;
        let result = f(&mut store, &cfg);
        drop(store);
        if cfg.cluster.is_none() {
            give_back(&cfg.daemon.data_dir).map_err(|e| format!("{}: {e}", cfg.daemon.data_dir.display()))?;
        }
        result
    })
    .join()
    .unwrap_or_else(|_| Err("the store thread panicked".into()))
}

/// Run as root on a gateway whose daemon runs as its own user: files this made in `dir` (the
/// database, its journal) are given to the directory's owner, or the daemon could not open them.
fn give_back(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.path();
        let m = std::fs::metadata(&meta)?;
        if m.is_file() && (m.uid(), m.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::chown(&meta, Some(owner.uid()), Some(owner.gid()))?;
        }
    }
    Ok(())
}

/// The password from `env`, or a new one to show; whether to show it; its hash.
fn hashed_password(env: Option<&str>) -> Result<(String, bool, String), String> {
    let (password, shown) = match env {
        Some(name) => (std::env::var(name).map_err(|_| format!("{name} is not set"))?, false),
        None => (access::new_password(), true),
    };
    let hash = access::hash_password(&password).map_err(|e| e.to_string())?;
    Ok((password, shown, hash))
}

pub(super) fn done(r: Result<(), String>) -> ExitCode {
    r.map_or_else(|e| fail(&e), |()| ExitCode::SUCCESS)
}

fn se(e: StoreError) -> String {
    e.to_string()
}

/// `gridsentry people`.
pub fn people(file: PathBuf, cmd: PeopleCommand) -> ExitCode {
    let by = cli_actor();
    let now = gridsentry::clock::now_ms() as i64;
    let b = by.clone();
    let change = |name: String, c: Change, what: &'static str| {
        let by = b.clone();
        done(with_store(&file, move |s, _| {
            s.person_change(&name, &c, &by, now).map_err(se)?;
            println!("{name}: {what}");
            Ok(())
        }))
    };
    match cmd {
        PeopleCommand::Add { name, role, streets, password_env } => {
            let Some(role) = Role::parse(&role) else {
                return fail("--role is viewer, field, operator, admin or auditor");
            };
            if let Some(e) = std::iter::once(&name).chain(&streets).find_map(|n| access::check_name(n).err())
            {
                return fail(&e.to_string());
            }
            let (password, shown, hash) = match hashed_password(password_env.as_deref()) {
                Ok(p) => p,
                Err(e) => return fail(&e),
            };
            done(with_store(&file, move |s, _| {
                s.person_add(&name, role, &streets, &hash, &by, now).map_err(se)?;
                println!("added {name} ({})", role.as_str());
                if shown {
                    println!("password {password}   (shown once; give it to them in person)");
                }
                Ok(())
            }))
        }
        PeopleCommand::List => done(with_store(&file, move |s, _| {
            println!("{:<24} {:<9} {:<9} {:>5}  STREETS", "NAME", "ROLE", "STATE", "CREDS");
            for p in s.people(now).map_err(se)? {
                let state = match (p.disabled, p.locked_until_ms > now) {
                    (true, _) => "disabled",
                    (false, true) => "locked",
                    _ => "active",
                };
                let streets = if p.streets.is_empty() { "(all)".into() } else { p.streets.join(",") };
                println!(
                    "{:<24} {:<9} {:<9} {:>5}  {streets}",
                    p.name,
                    p.role.as_str(),
                    state,
                    p.credentials
                );
            }
            Ok(())
        })),
        PeopleCommand::Disable { name } => {
            change(name, Change::Disable, "disabled; sessions and tokens revoked")
        }
        PeopleCommand::Enable { name } => change(name, Change::Enable, "enabled"),
        PeopleCommand::Unlock { name } => change(name, Change::Unlock, "unlocked"),
        PeopleCommand::Revoke { name } => change(name, Change::Revoke, "sessions and tokens revoked"),
        PeopleCommand::Reset { name, password_env } => {
            let (password, shown, hash) = match hashed_password(password_env.as_deref()) {
                Ok(p) => p,
                Err(e) => return fail(&e),
            };
            done(with_store(&file, move |s, _| {
                s.person_change(&name, &Change::Reset(hash), &by, now).map_err(se)?;
                println!("{name}: new password; unlocked; sessions and tokens revoked");
                if shown {
                    println!("password {password}   (shown once)");
                }
                Ok(())
            }))
        }
    }
}

/// `gridsentry audit`.
pub fn audit(file: PathBuf, cmd: AuditCommand) -> ExitCode {
    match cmd {
        AuditCommand::Verify => {
            let r = with_store(&file, |s, _| s.audit_verify().map_err(se));
            match r {
                Ok(Ok((rows, last))) => {
                    println!("audit chain intact: {rows} rows, last hash {last}");
                    ExitCode::SUCCESS
                }
                Ok(Err(b)) => fail(&format!("audit chain broken at row {}: {}", b.id, b.why)),
                Err(e) => fail(&e),
            }
        }
        AuditCommand::Export { since } => done(with_store(&file, move |s, cfg| {
            let since_ms = match since {
                None => i64::MIN,
                Some(t) => parse_since(&t, cfg.daemon.timezone.get_ref())?,
            };
            let (mut after, mut n, mut last) = (0, 0u64, None);
            let out = std::io::stdout();
            let mut out = std::io::BufWriter::new(out.lock());
            loop {
                let rows = s.audit_rows(after, since_ms, 10_000).map_err(se)?;
                let Some(end) = rows.last() else { break };
                after = end.id;
                for r in &rows {
                    serde_json::to_writer(&mut out, r).map_err(|e| e.to_string())?;
                    std::io::Write::write_all(&mut out, b"\n").map_err(|e| e.to_string())?;
                    n += 1;
                }
                last = Some((end.id, end.hash.clone()));
            }
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
            match last {
                Some((id, hash)) => eprintln!("{n} rows; last row {id}, hash {hash}"),
                None => eprintln!("no rows"),
            }
            Ok(())
        })),
    }
}

fn parse_since(t: &str, tz: &str) -> Result<i64, String> {
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let date: jiff::civil::Date =
        t.parse().map_err(|_| format!("--since `{t}`: not RFC 3339 or a date (2026-12-01)"))?;
    let zoned = date.in_tz(tz).map_err(|e| format!("--since: {e}"))?;
    Ok(zoned.timestamp().as_millisecond())
}

/// `gridsentry login`: a personal API token, printed once.
pub async fn login(api: &str, name: &str, label: Option<String>, days: Option<i64>) -> ExitCode {
    let api = &super::inspect::with_scheme(api);
    let password = match std::env::var("GRIDSENTRY_PASSWORD") {
        Ok(p) => p,
        // On a terminal without echo; from a pipe, its first line.
        Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            match rpassword::prompt_password(format!("password for {name}: ")) {
                Ok(p) => p,
                Err(e) => return fail(&format!("reading the password: {e}")),
            }
        }
        Err(_) => {
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_err() {
                return fail("no password on stdin");
            }
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let body = serde_json::json!({ "name": name, "password": password, "label": label.unwrap_or_else(|| "cli".into()), "days": days });
    let r = match reqwest::Client::new().post(format!("{api}/api/v1/tokens")).json(&body).send().await {
        Ok(r) => r,
        Err(e) => return fail(&super::inspect::unreachable_why(api, e)),
    };
    let status = r.status();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    match (status.is_success(), v["token"].as_str()) {
        (true, Some(token)) => {
            println!("{token}");
            eprintln!(
                "token for {name} ({}), valid until {} — shown once: export GRIDSENTRY_API_TOKEN=… for `gridsentry orders`",
                v["role"].as_str().unwrap_or("?"),
                jiff::Timestamp::from_millisecond(v["expires_ms"].as_i64().unwrap_or(0)).map(|t| t.to_string()).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        _ => fail(&format!("{status}: {}", v["error"].as_str().unwrap_or("login refused"))),
    }
}
