//! Parsing and validation with `FILE:LINE:COL` positions.

use super::Config;
use crate::rules::Engine;
use std::fmt;
use std::ops::Range;
use std::path::Path;

/// A config error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// Further mistakes found in the same run (one line each when printed).
    pub also: Vec<ConfigError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        for e in &self.also {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    parse(&name, &read(path)?)
}

/// Reads and checks a config file whose rules are replayed (`backtest`): nobody is notified,
/// so receivers are not required.
pub fn load_rules(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    parse_as(&name, &read(path)?, false)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 1,
        column: 1,
        message: format!("cannot read: {e}"),
        also: Vec::new(),
    })
}

/// Parses and checks config text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    parse_as(file, text, true)
}

/// `delivers`: the config runs (orders must reach someone, see `check_tiers`).
fn parse_as(file: &str, text: &str, delivers: bool) -> Result<Config, ConfigError> {
    let at = |span: Range<usize>, message: String| {
        let (line, column) = position(text, span.start);
        ConfigError { file: file.to_string(), line, column, message, also: Vec::new() }
    };
    let config: Config =
        toml::from_str(text).map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim().to_string()))?;
    let mut errs: Vec<ConfigError> = Vec::new();
    let tz = &config.daemon.timezone;
    if jiff::tz::TimeZone::get(tz.get_ref()).is_err() {
        errs.push(at(
            tz.span(),
            format!("unknown time zone `{}` (use an IANA name such as Asia/Shanghai)", tz.get_ref()),
        ));
    }
    let http = &config.daemon.http;
    if let Err(why) = check_host_port(http.get_ref()) {
        errs.push(at(http.span(), format!("`{}`: {why}", http.get_ref())));
    }
    if config.daemon.tls.is_none() && !config.daemon.allow_plain_http && !is_loopback(http.get_ref()) {
        errs.push(at(
            http.span(),
            format!(
                "`{}` is reachable from other machines, in plain HTTP: passwords and session cookies would cross the network readable. Set [daemon] tls = {{ cert = {{ file = \"…\" }}, key = {{ file = \"…\" }} }}, or allow_plain_http = true behind a proxy that terminates TLS",
                http.get_ref()
            ),
        ));
    }
    if let Some(http) = config.relay.as_ref().map(|r| &r.get_ref().http) {
        if let Err(why) = check_host_port(http.get_ref()) {
            errs.push(at(http.span(), format!("[relay] http `{}`: {why}", http.get_ref())));
        }
    }
    let broker = &config.daemon.embedded_broker;
    if broker.get_ref().parse::<std::net::SocketAddr>().is_err() {
        errs.push(at(broker.span(), format!("`{}` is not an IP:port address", broker.get_ref())));
    }
    for rule in &config.rules {
        if let Err(e) = Engine::new(vec![rule.get_ref().clone()], jiff::tz::TimeZone::UTC) {
            errs.push(at(rule.span(), e.to_string()));
        }
    }
    for (i, rule) in config.rules.iter().enumerate() {
        if config.rules[..i].iter().any(|r| r.get_ref().id == rule.get_ref().id) {
            errs.push(at(rule.span(), format!("rule `{}`: duplicate rule id", rule.get_ref().id)));
        }
    }
    errs.extend(check_receivers(&config).map_err(|(span, m)| at(span, m)).err());
    if delivers {
        errs.extend(check_tiers(&config).map_err(|(span, m)| at(span, m)).err());
    }
    for (i, m) in config.modbus.iter().enumerate() {
        let before: Vec<_> = config.modbus[..i].iter().map(|b| b.get_ref()).collect();
        errs.extend(m.get_ref().check(&before).map_err(|e| at(m.span(), e)).err());
    }
    let modbus: Vec<_> = config.modbus.iter().map(|m| m.get_ref()).collect();
    for (i, s) in config.serial.iter().enumerate() {
        let before: Vec<_> = config.serial[..i].iter().map(|b| b.get_ref()).collect();
        errs.extend(s.get_ref().check(&before, &modbus).map_err(|e| at(s.span(), e)).err());
    }
    if let Some(d) = &config.delivery {
        let r = d.get_ref();
        if r.retry_initial_ms == 0 || r.retry_max_ms < r.retry_initial_ms || r.breaker_failures == 0 {
            let m =
                "[delivery]: retry_initial_ms >= 1, retry_max_ms >= retry_initial_ms, breaker_failures >= 1";
            errs.push(at(d.span(), m.into()));
        }
    }
    for (i, site) in config.sites.iter().enumerate() {
        let s = site.get_ref();
        if gridsentry_sensors::Id::new(&s.id).is_err() {
            errs.push(at(site.span(), format!("site `{}`: ids are 1-32 of A-Z a-z 0-9 _ . -", s.id)));
        }
        if !(-90.0..=90.0).contains(&s.lat) || !(-180.0..=180.0).contains(&s.lon) {
            errs.push(at(site.span(), format!("site `{}`: lat within -90..90, lon within -180..180", s.id)));
        }
        if config.sites[..i].iter().any(|o| o.get_ref().id == s.id) {
            errs.push(at(site.span(), format!("site `{}`: listed twice", s.id)));
        }
    }
    for r in &config.receivers {
        if let Some(who) = r.get_ref().person.as_deref().filter(|p| crate::access::check_name(p).is_err()) {
            errs.push(at(
                r.span(),
                format!(
                    "receiver `{}`: person `{}` is not a login name",
                    r.get_ref().name,
                    crate::logsafe::escape(who, 40)
                ),
            ));
        }
    }
    for duty in &config.duty {
        let d = duty.get_ref();
        if let Err(m) = d.span() {
            errs.push(at(duty.span(), format!("[[duty]] {}: {m}", d.street)));
        }
        if d.street.trim().is_empty() || d.people.is_empty() {
            errs.push(at(duty.span(), "[[duty]]: `street` and at least one of `people` are needed".into()));
        }
        if let Some(bad) = d.people.iter().find(|p| crate::access::check_name(p).is_err()) {
            errs.push(at(
                duty.span(),
                format!("[[duty]] {}: `{}` is not a login name", d.street, crate::logsafe::escape(bad, 40)),
            ));
        }
        if !config.sites.is_empty() && !config.sites.iter().any(|s| s.get_ref().street == d.street) {
            errs.push(at(duty.span(), format!("[[duty]]: no [[site]] is on street `{}`", d.street)));
        }
    }
    let rule_ids: Vec<&str> = config.rules.iter().map(|r| r.get_ref().id.as_str()).collect();
    for g in &config.groups {
        errs.extend(g.get_ref().check(&rule_ids).map_err(|m| at(g.span(), format!("[[group]]: {m}"))).err());
    }
    let site_ids: Vec<&str> = config.sites.iter().map(|s| s.get_ref().id.as_str()).collect();
    for (i, w) in config.warnings.iter().enumerate() {
        let wc = w.get_ref();
        errs.extend(
            wc.check(&site_ids).map_err(|m| at(w.span(), format!("[[warning]] {}: {m}", wc.site))).err(),
        );
        if config.warnings[..i].iter().any(|o| o.get_ref().site == wc.site) {
            errs.push(at(w.span(), format!("[[warning]] {}: a second [[warning]] for the site", wc.site)));
        }
        errs.extend(
            super::residents(&wc.residents_file)
                .map_err(|m| at(w.span(), format!("[[warning]] {}: {m}", wc.site)))
                .err(),
        );
    }
    for (i, h) in config.hj212.iter().enumerate() {
        let hc = h.get_ref();
        errs.extend(hc.check().map_err(|m| at(h.span(), format!("[[hj212]] {}: {m}", hc.device))).err());
        if config.hj212[..i].iter().any(|o| o.get_ref().mn == hc.mn || o.get_ref().device == hc.device) {
            errs.push(at(
                h.span(),
                format!("[[hj212]] {}: a second [[hj212]] with its mn or device", hc.device),
            ));
        }
        if config.cluster.is_some() {
            let m = "[[hj212]] is for edge mode: a cluster's readings are split among workers (report from the edge gateways)";
            errs.push(at(h.span(), m.into()));
        }
    }
    if let Some(d) = &config.devices {
        let devices = d.get_ref();
        if devices.allow == super::Allow::Known && devices.registry.is_none() {
            let m = "[devices]: allow = \"known\" needs `registry` (the file `gridsentry provision` writes)";
            errs.push(at(d.span(), m.into()));
        }
        if let Some(r) = &devices.registry {
            let read = crate::provision::read_registry(r);
            errs.extend(read.map_err(|e| at(d.span(), format!("[devices] registry: {e}"))).err());
        }
    }
    if let Some(o) = &config.ota {
        errs.extend(o.get_ref().check().map_err(|m| at(o.span(), format!("[ota]: {m}"))).err());
        if config.cluster.is_some() {
            let m = "[ota] is for edge mode: cluster workers hold no broker session (serve roll-outs from an edge gateway of the street)";
            errs.push(at(o.span(), m.into()));
        }
    }
    if let Some(c) = &config.cluster {
        errs.extend(c.get_ref().check().map_err(|m| at(c.span(), format!("[cluster]: {m}"))).err());
    }
    if let Some(i) = &config.influx {
        errs.extend(check_influx(i.get_ref()).map_err(|m| at(i.span(), format!("[influx]: {m}"))).err());
    }
    // Every mistake found in one run, in file order (the first is the error; the rest ride along).
    errs.sort_by_key(|e| (e.line, e.column));
    let mut errs = errs.into_iter();
    match errs.next() {
        None => Ok(config),
        Some(mut first) => {
            first.also = errs.collect();
            Err(first)
        }
    }
}

fn check_receivers(config: &Config) -> Result<(), (Range<usize>, String)> {
    let names: Vec<&str> = config.receivers.iter().map(|r| r.get_ref().name.as_str()).collect();
    for (i, r) in config.receivers.iter().enumerate() {
        let (span, rc) = (r.span(), r.get_ref());
        if names[..i].contains(&rc.name.as_str()) {
            return Err((span, format!("receiver `{}`: duplicate name", rc.name)));
        }
        if !(rc.url.starts_with("http://") || rc.url.starts_with("https://")) {
            return Err((span, format!("receiver `{}`: url must start with http:// or https://", rc.name)));
        }
        if rc.secret.is_none() && rc.format == crate::notify::Format::Generic {
            return Err((
                span,
                format!("receiver `{}`: the generic format needs a `secret` (HMAC key)", rc.name),
            ));
        }
        if rc.tier < 0 || rc.max_attempts == 0 || rc.timeout_ms == 0 {
            return Err((
                span,
                format!("receiver `{}`: tier >= 0, max_attempts >= 1, timeout_ms >= 1", rc.name),
            ));
        }
        if let Some(f) = &rc.fallback {
            if !names.contains(&f.as_str()) || f == &rc.name {
                return Err((
                    span,
                    format!("receiver `{}`: fallback `{f}` is not another receiver", rc.name),
                ));
            }
        }
    }
    Ok(())
}

/// Every order reaches someone: with rules, a receiver at tier 0 (where orders start), and each
/// higher tier right above another (a missed deadline moves an order up one tier) up to
/// [`TIER_MAX`] (one colour has three deadlines).
fn check_tiers(config: &Config) -> Result<(), (Range<usize>, String)> {
    let Some(first_rule) = config.rules.first() else { return Ok(()) };
    let tier_of =
        |t: i64| config.receivers.iter().find(|r| r.get_ref().tier == t && r.get_ref().person.is_none());
    if tier_of(0).is_none() {
        let span = config.receivers.first().map_or(first_rule.span(), |r| r.span());
        let m = "no receiver at tier 0: orders start there, so nobody would hear of a new order; add a \
                 [[receiver]] with tier = 0 (the default)";
        return Err((span, m.into()));
    }
    for r in config.receivers.iter().filter(|r| r.get_ref().person.is_none()) {
        let (span, rc) = (r.span(), r.get_ref());
        if rc.tier > TIER_MAX {
            let m = format!(
                "receiver `{}`: tier {} is never reached (a missed deadline moves an order up one tier; \
                 one colour has three deadlines, so tiers go up to {TIER_MAX})",
                rc.name, rc.tier
            );
            return Err((span, m));
        }
        if rc.tier > 0 && tier_of(rc.tier - 1).is_none() {
            let m = format!(
                "receiver `{}`: no receiver at tier {}: an order escalates one tier at a time",
                rc.name,
                rc.tier - 1
            );
            return Err((span, m));
        }
    }
    Ok(())
}

/// Highest receiver tier an order reaches through missed deadlines of one colour.
pub const TIER_MAX: i64 = 3;

fn check_influx(i: &super::Influx) -> Result<(), String> {
    crate::series::check_url(&i.url)?;
    if i.batch_lines == 0 || i.timeout_ms == 0 || i.retry_initial_ms == 0 || i.spool_max_mb == 0 {
        return Err("batch_lines, timeout_ms, retry_initial_ms and spool_max_mb must be >= 1".into());
    }
    if i.retry_max_ms < i.retry_initial_ms {
        return Err("retry_max_ms must be >= retry_initial_ms".into());
    }
    for (k, v) in &i.tags {
        if matches!(k.as_str(), "site" | "device" | "band") || k.is_empty() || v.is_empty() {
            return Err(format!("tag `{k}`: names must be non-empty and not site, device or band"));
        }
    }
    Ok(())
}

/// 1-based line and column (in characters) of byte `offset`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `host:port` with a port from 0 to 65535 and a host (a name, IPv4 or `[IPv6]`); `run` resolves
/// the name when it binds.
/// Whether an API address is reachable from this machine only.
fn is_loopback(s: &str) -> bool {
    match s.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => s.rsplit_once(':').is_some_and(|(host, _)| host == "localhost"),
    }
}

fn check_host_port(s: &str) -> Result<(), String> {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = s.rsplit_once(':') else { return Err("not a host:port address".into()) };
    if port.parse::<u16>().is_err() {
        return Err(format!("port `{port}` is not a number from 0 to 65535"));
    }
    let name_ok = !host.is_empty()
        && host.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !name_ok {
        return Err(format!("host `{host}` is not an address or a host name"));
    }
    Ok(())
}
