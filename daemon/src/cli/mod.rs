//! Command-line parsing and the subcommands.

mod firmware;
mod inspect;
mod orders;
mod people;
mod relay;
mod silence;

use clap::{Parser, Subcommand};
use gridsentry::config;
use gridsentry::runtime::{self, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::watch;

/// gridsentry: field devices in, colour-graded work orders out.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log level or filter (`info`, `debug`, `warn,gridsentry::series=debug`); overrides RUST_LOG.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Log lines as `text` or `json` (one object per line, for journald or a log shipper).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Cluster mode: relay the street broker's readings into NATS JetStream (`[mqtt]` and
    /// `[cluster]` of the config file).
    Relay {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Cluster mode: create or update the PostgreSQL schema as its owner (`[cluster] postgres`
    /// of the file, or `--url-env`), and with `--grant ROLE` give the workers' role read and
    /// write on the tables and nothing else.
    Migrate {
        /// Config file (its `[cluster] postgres`).
        #[arg(long)]
        config: PathBuf,
        /// Read the owner's connection string from this environment variable instead.
        #[arg(long)]
        url_env: Option<String>,
        /// The workers' role: SELECT, INSERT, UPDATE, DELETE on the tables, no DDL.
        #[arg(long)]
        grant: Option<String>,
    },
    /// Check a config file and print what would run.
    Check {
        /// Config file.
        file: PathBuf,
    },
    /// The whole story on one machine in about a minute (embedded broker, simulated devices).
    Demo {
        /// How long to run, seconds.
        #[arg(long, default_value_t = 60)]
        duration_s: u64,
        /// API address (default: a free loopback port).
        #[arg(long)]
        http: Option<String>,
        /// Data directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Write every reading to this InfluxDB v2 write API (e.g. http://127.0.0.1:8086).
        #[arg(long)]
        influx_url: Option<String>,
        /// InfluxDB organisation.
        #[arg(long, default_value = "gridsentry", requires = "influx_url")]
        influx_org: String,
        /// InfluxDB bucket.
        #[arg(long, default_value = "gridsentry", requires = "influx_url")]
        influx_bucket: String,
        /// InfluxDB token; better through GRIDSENTRY_INFLUX_TOKEN, which `ps` does not show.
        #[arg(long, env = "GRIDSENTRY_INFLUX_TOKEN", hide_env_values = true)]
        influx_token: Option<String>,
    },
    /// People and their roles, in the order database of the config (SQLite or PostgreSQL).
    People {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// What to do.
        #[command(subcommand)]
        action: people::PeopleCommand,
    },
    /// The audit log: verify its hash chain, export it.
    Audit {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// What to do.
        #[command(subcommand)]
        action: people::AuditCommand,
    },
    /// Silences (maintenance windows): page nobody about a site, street, rule or device until a
    /// time; orders are still recorded.
    Silence {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// What to do.
        #[command(subcommand)]
        action: silence::SilenceCommand,
    },
    /// Firmware images: make a signing key, sign an image offline, store a signed image.
    Firmware {
        #[command(subcommand)]
        action: firmware::FirmwareCommand,
    },
    /// Fleet updates: roll a stored image out in waves; list, show, pause, resume, cancel.
    Rollout {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        action: firmware::RolloutCommand,
    },
    /// Get a personal API token (prints it once). The password comes from
    /// GRIDSENTRY_PASSWORD or a line on stdin.
    Login {
        /// Your name.
        name: String,
        /// API base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// What the token is for (recorded in the audit log).
        #[arg(long)]
        label: Option<String>,
        /// Valid for this many days (1–366, default 90).
        #[arg(long)]
        days: Option<i64>,
    },
    /// Work orders through the API.
    Orders {
        /// API base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// Environment variable holding the API token.
        #[arg(long, default_value = "GRIDSENTRY_API_TOKEN")]
        token_env: String,
        /// `table` for people, `json` for scripts (before or after the subcommand).
        #[arg(short, long, global = true, value_enum, default_value_t = orders::Output::Table)]
        output: orders::Output,
        /// What to do.
        #[command(subcommand)]
        action: orders::OrdersCommand,
    },
    /// Replay recorded readings (line protocol, as `influx` exports) through a config's rules
    /// and print the order transitions they would have caused, as JSON lines.
    Backtest {
        /// Config file (its rules, time zone).
        #[arg(long)]
        config: PathBuf,
        /// Line-protocol file.
        #[arg(long)]
        input: PathBuf,
        /// Timestamp unit of the input.
        #[arg(long, default_value = "auto")]
        precision: gridsentry_sensors::line_protocol_read::Precision,
        /// Print per rule and subject: orders by colour, red episodes, the v_c learnt (instead
        /// of every transition).
        #[arg(long)]
        summary: bool,
    },
    /// Sample readings of every device family: topic, payloads, InfluxDB line.
    Samples,
    /// Decode `TOPIC PAYLOAD` lines from stdin, as `mosquitto_sub -v` prints them: one JSON
    /// object per line.
    Decode,
    /// Exit 0 when the daemon at URL is ready (`/readyz`), 1 otherwise: for container
    /// healthchecks.
    Healthcheck {
        /// The daemon's API base URL (`http://` when no scheme is given).
        #[arg(default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Keep asking for up to this many seconds (for scripts: wait until it is up).
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Give a device its own broker login: writes the broker's password and access-list files,
    /// the device registry and the device's firmware build settings into DIR.
    Provision {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Device id.
        #[arg(long)]
        device: String,
        /// Directory of the broker files and the registry.
        #[arg(long, default_value = "provisioned")]
        dir: PathBuf,
        /// The broker as the device reaches it.
        #[arg(long, default_value = "192.168.4.1:1883")]
        broker: String,
        /// The daemon's broker user (reads every reading topic).
        #[arg(long, default_value = "gridsentry")]
        daemon_user: String,
        /// The broker's group, given the password file and access list (0640) so a broker
        /// running as its own user reads them (default: `mosquitto` when that group exists;
        /// `--broker-group ""` keeps yours).
        #[arg(long)]
        broker_group: Option<String>,
    },
}

/// Runs the chosen command.
pub async fn dispatch(args: Args) -> ExitCode {
    if matches!(
        args.command,
        Command::Run { .. }
            | Command::Relay { .. }
            | Command::People { .. }
            | Command::Audit { .. }
            | Command::Silence { .. }
            | Command::Firmware { .. }
            | Command::Rollout { .. }
    ) {
        // Files these make (the order database, its journal, the spool) are this user's only,
        // whatever umask the shell or the unit gave.
        // SAFETY: umask only sets the process's file creation mask; it cannot fail.
        unsafe { libc::umask(0o077) };
    }
    match args.command {
        Command::Run { config } => run(config).await,
        Command::Relay { config } => relay::relay(config).await,
        Command::Check { file } => inspect::check(&file),
        Command::Migrate { config, url_env, grant } => migrate(&config, url_env.as_deref(), grant.as_deref()),
        Command::Demo { duration_s, http, data_dir, influx_url, influx_org, influx_bucket, influx_token } => {
            let influx = influx_url.map(|url| config::Influx {
                org: influx_org,
                bucket: influx_bucket,
                token: influx_token.map(config::Secret::Value),
                ..config::Influx::at(&url)
            });
            if let Some(Err(e)) = influx.as_ref().map(|i| gridsentry::series::check_url(&i.url)) {
                return fail(&format!("--influx-url: {e}"));
            }
            let opts = gridsentry::demo::Options {
                duration: Duration::from_secs(duration_s),
                http,
                data_dir,
                influx,
            };
            match gridsentry::demo::run(opts).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("demo: {e}")),
            }
        }
        Command::People { config, action } => people::people(config, action),
        Command::Audit { config, action } => people::audit(config, action),
        Command::Silence { config, action } => silence::silence(config, action),
        Command::Firmware { action } => firmware::firmware(action),
        Command::Rollout { config, action } => firmware::rollout(config, action),
        Command::Login { name, api, label, days } => people::login(&api, &name, label, days).await,
        Command::Orders { api, token_env, output, action } => {
            orders::orders(&api, &token_env, output, action).await
        }
        Command::Backtest { config, input, precision, summary } => {
            backtest(&config, &input, precision, summary)
        }
        Command::Samples => match crate::samples::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Decode => inspect::decode_lines(),
        Command::Healthcheck { url, wait } => inspect::healthcheck(&url, wait).await,
        Command::Provision { site, device, dir, broker, daemon_user, broker_group } => {
            let broker_group = match broker_group {
                Some(g) if g.is_empty() => None,
                Some(g) => Some(g),
                None => gridsentry::provision::group_id("mosquitto").map(|_| "mosquitto".to_string()),
            };
            provision(site, device, dir, broker, daemon_user, broker_group)
        }
    }
}

fn provision(
    site: String,
    device: String,
    dir: PathBuf,
    broker: String,
    daemon_user: String,
    broker_group: Option<String>,
) -> ExitCode {
    use gridsentry::provision::{provision, Request};
    use gridsentry_sensors::Id;
    let (site, device) = match (Id::new(&site), Id::new(&device)) {
        (Ok(s), Ok(d)) => (s, d),
        _ => {
            eprintln!("error: site and device ids are 1-32 of A-Z a-z 0-9 _ . -");
            return ExitCode::from(2);
        }
    };
    let group = broker_group.clone();
    match provision(&Request { dir: dir.clone(), site, device, broker, daemon_user, broker_group }) {
        Ok(p) => {
            println!("device user  {}", p.user);
            println!("firmware     {}  (scripts/firmware-image BOARD --env {0})", p.env_file.display());
            println!(
                "broker files {}/broker/passwd and acl (0640, group {}): point mosquitto at them and reload it (kill -HUP)",
                dir.display(),
                group.as_deref().unwrap_or("yours")
            );
            println!("registry     {}/registry/devices ({} devices)", dir.display(), p.devices);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn backtest(
    cfg: &std::path::Path,
    input: &std::path::Path,
    precision: gridsentry_sensors::line_protocol_read::Precision,
    per_subject: bool,
) -> ExitCode {
    let cfg = match config::load_rules(cfg) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let mut out = std::io::stdout().lock();
    match gridsentry::backtest::run(&cfg, input, precision, &mut out, per_subject) {
        Ok(s) => {
            if let Some(subjects) = &s.subjects {
                if let Err(e) = gridsentry::backtest::summary::print(&mut out, subjects) {
                    return fail(&format!("backtest: {e}"));
                }
            }
            let skipped: u64 = s.skipped.values().sum();
            eprintln!(
                "gridsentry backtest: {} readings, {} orders raised, {} transitions, {skipped} lines skipped {:?}",
                s.readings, s.raised, s.transitions, s.skipped
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("backtest: {e}")),
    }
}

pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("gridsentry: {message}");
    ExitCode::FAILURE
}

async fn run(path: PathBuf) -> ExitCode {
    let cfg = match config::load(&path) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    if cfg.mqtt.is_none() && cfg.cluster.is_none() {
        tracing::warn!("{EMBEDDED_BROKER_NOTE}");
    }
    let (stop_tx, stop) = watch::channel(false);
    let running = match runtime::start(cfg, Overrides::default(), stop).await {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let control = running.control.clone();
    let tls = running.tls.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match config::load(&path) {
                Ok(cfg) => {
                    let _ = control.send(runtime::reload_of(&cfg));
                    if let (Some(holder), Some(t)) = (&tls, &cfg.daemon.tls) {
                        match runtime::load_tls(t.get_ref()) {
                            Ok(c) => {
                                *holder.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(c);
                                tracing::info!("API certificate reloaded");
                            }
                            Err(e) => tracing::error!("{e}; the running certificate stays"),
                        }
                    }
                }
                Err(e) => tracing::error!("reload refused: {e}"),
            }
        }
    });
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let mut fatal = running.health.fatal();
    tokio::select! {
        r = running.wait() => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        },
        _ = async { drop(fatal.wait_for(Option::is_some).await) } => {
            // A stalled stage cannot be joined: leave now, the supervisor restarts us and the
            // broker redelivers everything that was not acknowledged.
            let why = fatal.borrow().clone().unwrap_or_default();
            eprintln!("gridsentry: {why}");
            std::process::exit(EXIT_STALLED)
        }
    }
}

/// `gridsentry migrate`.
fn migrate(config: &std::path::Path, url_env: Option<&str>, grant: Option<&str>) -> ExitCode {
    let url = match url_env {
        Some(name) => std::env::var(name).map_err(|_| format!("environment variable {name} is not set")),
        None => match config::load(config) {
            Ok(cfg) => match cfg.cluster.as_ref().and_then(|c| c.get_ref().postgres.clone()) {
                Some(secret) => secret.resolve(),
                None => Err(format!("{}: no [cluster] postgres", config.display())),
            },
            Err(e) => Err(e.to_string()),
        },
    };
    let url = match url {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The synchronous client runs its own runtime: not on this one's threads.
    let grant_owned = grant.map(str::to_string);
    let done = std::thread::spawn(move || gridsentry::orders::migrate_as_owner(&url, grant_owned.as_deref()))
        .join()
        .unwrap_or_else(|_| Err(gridsentry::orders::StoreError::Schema("migration panicked".into())));
    match done {
        Ok(tables) => {
            println!("schema up to date: {}", tables.join(", "));
            if let Some(role) = grant {
                println!("role {role}: SELECT, INSERT, UPDATE, DELETE on those tables; no DDL");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Exit status when the watchdog found a stage stalled or dead (EX_SOFTWARE).
pub(crate) const EXIT_STALLED: i32 = 70;

/// What the embedded broker cannot promise (said by `run` and `check`).
const EMBEDDED_BROKER_NOTE: &str = "no [mqtt]: using the embedded broker, which acknowledges a device's publish on receipt, \
before the daemon has committed it: a crash loses what was in flight. Fine for the demo and a trial on one box; \
in production configure [mqtt] with a persistent broker (deploy/mosquitto)";
