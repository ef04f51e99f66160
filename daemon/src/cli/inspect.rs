//! Looking at things without running the daemon: `check` (what a config would run),
//! `decode` (what the daemon makes of `mosquitto_sub -v` lines, as JSON lines) and
//! `healthcheck` (the readiness probe for containers, which have no curl).

use super::EMBEDDED_BROKER_NOTE;
use gridsentry::config;
use gridsentry_sensors::{codec, Format, Topic};
use std::io::BufRead;
use std::process::ExitCode;

/// `gridsentry check FILE`: 0 and what would run, or 2 and `FILE:LINE:COL: why`.
pub fn check(file: &std::path::Path) -> ExitCode {
    // Read once: parsed, and looked at for a file that sets nothing.
    let text = std::fs::read_to_string(file).ok();
    let parsed = match &text {
        Some(t) => config::parse(&file.display().to_string(), t),
        None => config::load(file), // says why it cannot be read, with the file's name
    };
    let cfg = match parsed {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if text.is_some_and(|t| toml::from_str::<toml::Table>(&t).is_ok_and(|t| t.is_empty())) {
        eprintln!(
            "warning: {} sets nothing: every value is a default (no broker, no receivers, no rules)",
            file.display()
        );
    }
    // What the file is for: an edge daemon, a cluster worker (with PostgreSQL) or a relay
    // (`[cluster]` without PostgreSQL); each is told only what applies to it.
    let cluster = cfg.cluster.as_ref().map(|c| c.get_ref());
    let relay = cluster.is_some_and(|c| c.postgres.is_none());
    if cluster.is_none() || relay {
        broker_line(&cfg);
    }
    println!("watchdog a stage with work and no progress for {} s exits the process", cfg.daemon.stall_s);
    match cluster {
        None => edge_lines(&cfg),
        Some(c) if relay => {
            let http = cfg.relay.as_ref().map_or(&cfg.daemon.http, |r| &r.get_ref().http);
            println!("role     relay: the broker and field devices into NATS JetStream");
            nats_line(c);
            println!("field    {} Modbus and {} serial devices polled", cfg.modbus.len(), cfg.serial.len());
            println!("http     http://{}/healthz, /readyz, /metrics", http.get_ref());
            return ExitCode::SUCCESS;
        }
        Some(c) => worker_lines(&cfg, c),
    }
    match cfg.influx.as_ref().map(|i| i.get_ref()) {
        Some(i) => println!(
            "influx   {} org {} bucket {} (token: {}; spool {} up to {} MiB)",
            i.url,
            i.org,
            i.bucket,
            i.token.as_ref().map_or("none".into(), secret_state),
            cfg.daemon.data_dir.join("spool").display(),
            i.spool_max_mb
        ),
        None => println!("influx   none: readings are not stored"),
    }
    for r in &cfg.receivers {
        let r = r.get_ref();
        let fallback = r.fallback.as_ref().map_or(String::new(), |f| format!(" (fallback {f})"));
        let key = r.key.as_ref().map_or(String::new(), |k| format!(", key: {}", secret_state(k)));
        let tier = match &r.person {
            Some(p) => format!("of person {p}"),
            None => format!("tier {}", r.tier),
        };
        println!(
            "receiver {} {tier} {} -> {}{fallback} (secret: {}{key})",
            r.name,
            r.format.as_str(),
            gridsentry::notify::urls::redacted(&r.url),
            r.secret.as_ref().map_or("none".into(), secret_state)
        );
        if gridsentry::notify::urls::carries_key(&r.url) {
            eprintln!("warning: receiver `{}`: its URL carries a key or token (shown as …); move it to `key = {{ file = … }}` so the config holds none", r.name);
        }
    }
    for r in &cfg.rules {
        let r = r.get_ref();
        let condition = serde_json::to_string(&r.condition).unwrap_or_default();
        let name = if r.name.is_empty() { gridsentry::rules::default_name(&r.condition) } else { &r.name };
        println!("rule     {} ({name}) [{}] {}", r.id, r.colour.as_str(), condition);
    }
    for d in &cfg.duty {
        let d = d.get_ref();
        println!("duty     {} {} {}", d.street, d.hours.as_deref().unwrap_or("all day"), d.people.join(", "));
    }
    for g in &cfg.groups {
        let g = g.get_ref();
        let by: Vec<String> = g.by.iter().map(|b| format!("{b:?}").to_lowercase()).collect();
        let rules = if g.rules.is_empty() { "every rule".to_string() } else { g.rules.join(", ") };
        println!(
            "group    by {} ({rules}): one incident within {} s, digests every {} s; mass offline from {}",
            by.join("+"),
            g.window_s,
            g.digest_s,
            g.mass_offline
        );
    }
    for w in &cfg.warnings {
        let w = w.get_ref();
        let residents =
            config::residents(&w.residents_file).map_or_else(|e| e, |r| format!("{} residents", r.len()));
        let auto = w.auto_within_h.map_or("only by 一键预警".to_string(), |h| {
            format!("by itself when failure is forecast within {h} h")
        });
        let via: Vec<&str> = [w.sms.as_ref().map(|_| "sms"), w.broadcast.as_ref().map(|_| "broadcast")]
            .into_iter()
            .flatten()
            .collect();
        println!("warning  {}: {residents} via {}, {auto}; route {}", w.site, via.join(" + "), w.route);
    }
    for h in &cfg.hj212 {
        let h = h.get_ref();
        println!(
            "hj212    {} as MN {} (ST {}) -> {}:{} (password: {})",
            h.device,
            h.mn,
            h.st,
            h.host,
            h.port,
            secret_state(&h.password)
        );
    }
    println!("ok: {} rules, {} receivers", cfg.rules.len(), cfg.receivers.len());
    ExitCode::SUCCESS
}

fn broker_line(cfg: &config::Config) {
    match &cfg.mqtt {
        Some(m) => println!(
            "broker   {}:{} as {} (tls: {}; messages up to {} KiB)",
            m.host,
            m.port,
            m.client_id,
            m.tls_ca_file.is_some(),
            m.max_message_kb
        ),
        None if cfg.cluster.is_some() => println!("broker   none: field devices only"),
        None => {
            println!("broker   embedded, listening on {}", cfg.daemon.embedded_broker.get_ref());
            println!("note     {EMBEDDED_BROKER_NOTE}");
        }
    }
}

fn edge_lines(cfg: &config::Config) {
    println!("data     {}", cfg.daemon.data_dir.join("orders.db").display());
    api_lines(cfg);
}

fn api_lines(cfg: &config::Config) {
    let token = match &cfg.daemon.legacy_token {
        Some(t) => format!("legacy token {} (machines act as `legacy-token`, an operator)", secret_state(t)),
        None => "people log in; no legacy token".into(),
    };
    let d = &cfg.daemon;
    let scheme = if d.tls.is_some() { "https" } else { "http" };
    println!("api      {scheme}://{} ({token})", d.http.get_ref());
    println!(
        "         header timeout {} s, idle timeout {} s, at most {} connections",
        d.header_timeout_s,
        d.idle_timeout_s,
        d.max_connections.map_or_else(gridsentry::api::serve::default_max_connections, |n| n.get())
    );
    println!("timezone {}", cfg.daemon.timezone.get_ref());
}

fn nats_line(c: &gridsentry::cluster::Config) {
    let user =
        c.nats_user.as_deref().map_or("NONE (anonymous: refused by the shipped NATS configs)".into(), |u| {
            format!("{u} (password: {})", c.nats_password.as_ref().map_or("none".into(), secret_state))
        });
    let tls = c.nats_ca.as_ref().map_or("off".into(), |ca| format!("CA {}", ca.display()));
    println!("nats     {} as user {user}, TLS {tls}", c.nats.join(", "));
}

fn worker_lines(cfg: &config::Config, c: &gridsentry::cluster::Config) {
    println!("role     cluster worker: orders in PostgreSQL, readings from NATS JetStream (no broker)");
    let pg = match c.postgres.as_ref().map(config::Secret::resolve) {
        Some(Ok(url)) => match gridsentry::orders::PgConnect::parse(&url) {
            Ok(gridsentry::orders::PgConnect { config: p, tls }) => {
                format!(
                    "{} database {}",
                    p.get_hosts()
                        .iter()
                        .map(|h| match h {
                            postgres::config::Host::Tcp(name) => name.clone(),
                            postgres::config::Host::Unix(path) => path.display().to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    p.get_dbname().unwrap_or("(default)"),
                ) + if tls.is_some() { ", TLS verify-full" } else { ", no verified TLS" }
            }
            Err(e) => format!("NOT A CONNECTION STRING: {e}"),
        },
        Some(Err(e)) => format!("NOT READABLE HERE: {e}"),
        None => "none".into(),
    };
    println!("postgres {pg}");
    nats_line(c);
    println!(
        "cluster  {} partitions (stream replicas {}), worker {}, lease {} ms",
        c.partitions,
        c.replicas,
        c.worker(),
        c.lease_ms
    );
    println!(
        "note     K = {} must equal nats-server's partition(K, 1) mapping (deploy/cluster/)",
        c.partitions
    );
    if !cfg.modbus.is_empty() || !cfg.serial.is_empty() {
        println!(
            "note     cluster workers do not poll [[modbus]]/[[serial]] devices: a relay next to them does (`gridsentry relay`)"
        );
    }
    api_lines(cfg);
}

/// `readable`, or why not: `check` may run where the secrets are not, so this only warns.
fn secret_state(s: &config::Secret) -> String {
    match s.resolve() {
        Ok(_) => "readable".into(),
        Err(e) => format!("NOT READABLE HERE: {e}"),
    }
}

/// `gridsentry decode`: reads `TOPIC PAYLOAD` lines (as `mosquitto_sub -v` prints them) and
/// prints one JSON object per line: `{"topic", "reading"}` with the reading in the wire
/// contract's JSON, or `{"topic", "rejected"}` with the reason.
pub fn decode_lines() -> ExitCode {
    let mut bad = 0u64;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (topic, payload) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let looks_like_text = !payload.is_empty()
            && !payload.trim_start().starts_with('{')
            && payload.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        let result = Topic::parse(topic).map_err(|e| format!("topic: {e}")).and_then(|t| {
            if looks_like_text {
                return Err("payload: not a gridsentry payload (JSON expected, starting with `{`, or the binary format)".into());
            }
            codec::decode_on(&t, payload.as_bytes()).map_err(|e| format!("payload: {e}"))
        });
        let out = match result {
            Ok(reading) => {
                let wire = codec::encode_vec(Format::Json, &reading).unwrap_or_default();
                let reading: serde_json::Value = serde_json::from_slice(&wire).unwrap_or_default();
                serde_json::json!({ "topic": topic, "reading": reading })
            }
            Err(why) => {
                bad += 1;
                serde_json::json!({ "topic": topic, "rejected": why })
            }
        };
        // A closed pipe (`| head`) ends the output quietly.
        if writeln_stdout(&out.to_string()).is_err() {
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("{bad} rejected");
    ExitCode::SUCCESS
}

fn writeln_stdout(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}")
}

/// `gridsentry healthcheck [URL] [--wait S]`: 0 when the daemon's `/readyz` answers 200, else 1
/// with the reason on stderr; with `--wait`, asks again every 200 ms for up to S seconds (a
/// script's "wait until it is up"). A URL without a scheme is taken as `http://`.
pub async fn healthcheck(url: &str, wait_s: u64) -> ExitCode {
    let base = with_scheme(url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_s);
    let client = reqwest::Client::new();
    loop {
        let probe = client.get(format!("{base}/readyz")).timeout(std::time::Duration::from_secs(5));
        let why = match probe.send().await {
            Ok(r) if r.status().is_success() => return ExitCode::SUCCESS,
            Ok(r) => format!("HTTP {}: {}", r.status().as_u16(), r.text().await.unwrap_or_default().trim()),
            Err(e) => unreachable_why(&base, e),
        };
        if std::time::Instant::now() >= deadline {
            eprintln!("not ready ({why})");
            return ExitCode::FAILURE;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `127.0.0.1:8080` → `http://127.0.0.1:8080`; a URL with a scheme stays as it is.
pub(crate) fn with_scheme(url: &str) -> String {
    let url = url.trim_end_matches('/');
    match url.contains("://") {
        true => url.to_string(),
        false => format!("http://{url}"),
    }
}

/// Why a request to the daemon at `base` got no answer, for people.
pub(crate) fn unreachable_why(base: &str, e: reqwest::Error) -> String {
    if e.is_connect() {
        format!("nothing answers at {base}: is the daemon running there?")
    } else if e.is_timeout() {
        format!("{base} did not answer within 5 s")
    } else {
        format!("{base}: {}", e.without_url())
    }
}
