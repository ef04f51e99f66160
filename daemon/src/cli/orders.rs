//! `gridsentry orders`: the API from a terminal. Tables by default (what an operator reads on
//! a duty-room terminal), the API's JSON with `-o json` (for scripts).

use super::fail;
use clap::Subcommand;
use serde_json::Value;
use std::process::ExitCode;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

/// `gridsentry orders ...`.
#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// List orders (a table; `-o json` for the API's JSON).
    List {
        /// Only this state.
        #[arg(long)]
        state: Option<String>,
        /// Only this colour.
        #[arg(long)]
        colour: Option<String>,
        /// Only this site.
        #[arg(long)]
        site: Option<String>,
        /// Only open orders.
        #[arg(long)]
        open: bool,
    },
    /// Show one order with its events.
    Show {
        /// Order id.
        id: i64,
    },
    /// Acknowledge.
    Ack(ActArgs),
    /// Dispatch.
    Dispatch(ActArgs),
    /// Mark on site.
    OnSite(ActArgs),
    /// Resolve.
    Resolve(ActArgs),
    /// Close.
    Close(ActArgs),
    /// Replay every dead letter (after fixing the receiver), with a progress bar.
    ReplayDeadLetters,
}

/// Arguments of an order action.
#[derive(Debug, clap::Args)]
pub struct ActArgs {
    /// Order id.
    id: i64,
    /// `dispatch`: the person it goes to.
    #[arg(long)]
    to: Option<String>,
    /// Why, for the record. (Who acts is the token's person.)
    #[arg(long, default_value = "")]
    why: String,
}

/// Runs one `orders` command against the API at `api`.
pub async fn orders(api: &str, token_env: &str, output: Output, cmd: OrdersCommand) -> ExitCode {
    let Ok(token) = std::env::var(token_env) else {
        return fail(&format!("{token_env} is not set: get a token with `gridsentry login NAME`"));
    };
    let api = &super::inspect::with_scheme(api);
    let http = reqwest::Client::new();
    let (method, path, body) = match &cmd {
        OrdersCommand::List { state, colour, site, open } => {
            let mut q = vec![format!("open={open}")];
            q.extend(state.as_ref().map(|s| format!("state={s}")));
            q.extend(colour.as_ref().map(|s| format!("colour={s}")));
            q.extend(site.as_ref().map(|s| format!("site={s}")));
            (reqwest::Method::GET, format!("/api/v1/orders?{}", q.join("&")), None)
        }
        OrdersCommand::Show { id } => (reqwest::Method::GET, format!("/api/v1/orders/{id}"), None),
        OrdersCommand::Ack(a) => act("ack", a),
        OrdersCommand::Dispatch(a) => act("dispatch", a),
        OrdersCommand::OnSite(a) => act("on-site", a),
        OrdersCommand::Resolve(a) => act("resolve", a),
        OrdersCommand::Close(a) => act("close", a),
        OrdersCommand::ReplayDeadLetters => return replay_dead_letters(&http, api, &token).await,
    };
    // Times in tables read as the daemon's `[daemon] timezone` (what `/api/v1/me` says).
    let zone = match http.get(format!("{api}/api/v1/me")).bearer_auth(&token).send().await {
        Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["timezone"].as_str().map(str::to_string)),
        Err(_) => None,
    };
    let tz = zone.and_then(|z| jiff::tz::TimeZone::get(&z).ok()).unwrap_or(jiff::tz::TimeZone::UTC);
    let mut req = http.request(method, format!("{api}{path}")).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let response = match req.send().await {
        Ok(r) => r,
        Err(e) => return fail(&super::inspect::unreachable_why(api, e)),
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let why = json["error"].as_str().map_or(text.clone(), str::to_string);
        return fail(&format!("HTTP {}: {why}", status.as_u16()));
    }
    let printed = match (output, &cmd) {
        (Output::Json, _) => serde_json::to_string_pretty(&json).unwrap_or(text),
        (Output::Table, OrdersCommand::List { .. }) => list_table(&json),
        (Output::Table, OrdersCommand::Show { .. }) => show_table(&json, &tz),
        (Output::Table, _) => format!(
            "order {} {}: {} ({})",
            json["order_id"],
            s(&json["event"]),
            s(&json["state"]),
            s(&json["summary"])
        ),
    };
    println!("{printed}");
    ExitCode::SUCCESS
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let mut out = String::new();
        for (i, (c, w)) in cells.into_iter().zip(&width).enumerate() {
            out.push_str(&c);
            if i + 1 < n {
                out.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        out
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

/// The next deadline of an order as people read it: `dispatch in 0:42`, `OVERDUE dispatch`.
fn due(order: &Value, now_ms: i64) -> String {
    let d = &order["due"];
    if let Some(over) = d["overdue"].as_array().filter(|o| !o.is_empty()) {
        let names: Vec<String> = over.iter().map(s).collect();
        return format!("OVERDUE {}", names.join(","));
    }
    match (d["next"].as_str(), d["at_ms"].as_i64()) {
        (Some(next), Some(at)) => {
            let left = (at - now_ms).max(0) / 1000;
            format!("{next} in {}:{:02}", left / 60, left % 60)
        }
        _ => String::new(),
    }
}

fn list_table(json: &Value) -> String {
    let now = json["now_ms"].as_i64().unwrap_or_default();
    let rows: Vec<Vec<String>> = json["orders"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let summary: String = s(&o["summary"]).chars().take(60).collect();
            vec![
                s(&o["id"]),
                s(&o["colour"]),
                s(&o["state"]),
                s(&o["rule"]),
                s(&o["subject"]),
                due(o, now),
                summary,
            ]
        })
        .collect();
    let n = rows.len();
    format!("{}\n({n} orders)", table(&["ID", "COLOUR", "STATE", "RULE", "SUBJECT", "DUE", "SUMMARY"], &rows))
}

fn show_table(json: &Value, tz: &jiff::tz::TimeZone) -> String {
    let o = &json["order"];
    let time = |ms: &Value| {
        let at = ms.as_i64().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
        at.map_or(String::new(), |t| {
            t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M:%S%:z").to_string()
        })
    };
    let title = match s(&o["title"]) {
        t if t.is_empty() => String::new(),
        t => format!("{t}\n"),
    };
    let zh = match s(&o["summary_zh"]) {
        z if z.is_empty() => String::new(),
        z => format!("摘要 {z}\n"),
    };
    let mut out = format!(
        "{title}order {}  {}  {}  {}\nsubject {}  rule {}  tier {}\nopened {}  summary {}\n{zh}\n",
        s(&o["id"]),
        s(&o["colour"]),
        s(&o["state"]),
        if o["late"].as_bool() == Some(true) { "(late)" } else { "" },
        s(&o["subject"]),
        s(&o["rule"]),
        s(&o["tier"]),
        time(&o["opened_ms"]),
        s(&o["summary"]),
    );
    let rows: Vec<Vec<String>> = json["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![s(&e["seq"]), time(&e["at_ms"]), s(&e["kind"]), s(&e["state"]), s(&e["who"]), s(&e["why"])]
        })
        .collect();
    out.push_str(&table(&["#", "AT", "EVENT", "STATE", "WHO", "WHY"], &rows));
    out
}

/// `orders replay-dead-letters`: lists the dead letters, replays each, shows progress.
async fn replay_dead_letters(http: &reqwest::Client, api: &str, token: &str) -> ExitCode {
    let list = match http.get(format!("{api}/api/v1/dead-letters")).bearer_auth(token).send().await {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.unwrap_or_default(),
        Ok(r) => return fail(&format!("{api}: listing dead letters: HTTP {}", r.status())),
        Err(e) => return fail(&super::inspect::unreachable_why(api, e)),
    };
    let ids: Vec<i64> =
        list["dead_letters"].as_array().into_iter().flatten().filter_map(|d| d["id"].as_i64()).collect();
    let bar = gridsentry::backtest::progress(ids.len() as u64, "replay");
    let mut failed = 0;
    for id in &ids {
        let url = format!("{api}/api/v1/dead-letters/{id}/replay");
        match http.post(&url).bearer_auth(token).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                failed += 1;
                bar.println(format!("dead letter {id}: HTTP {}", r.status()));
            }
            Err(e) => {
                failed += 1;
                bar.println(format!("dead letter {id}: {e}"));
            }
        }
        bar.inc(1);
    }
    bar.finish();
    println!("{} dead letters queued again, {failed} failed", ids.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn act(action: &str, a: &ActArgs) -> (reqwest::Method, String, Option<serde_json::Value>) {
    let mut body = serde_json::json!({ "why": a.why });
    if let Some(to) = &a.to {
        body["to"] = serde_json::json!(to);
    }
    (reqwest::Method::POST, format!("/api/v1/orders/{}/{action}", a.id), Some(body))
}
