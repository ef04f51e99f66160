//! Channel formats: the generic payload turned into what each receiving service expects.
//!
//! Why at delivery time: the outbox stores the generic payload (built in the transaction that
//! recorded the transition), so a redelivery, a dead-letter replay or a copy to a fallback of
//! another format all start from the same bytes; only the rendering — and the services'
//! time-stamped signatures, which expire — is done per attempt.
//!
//! - `generic`: the payload as is (docs/operating.md: webhook payload schema), Standard
//!   Webhooks signature headers.
//! - `wecom`: WeCom (企业微信) group robot, markdown message; the robot key is in the URL.
//! - `dingtalk`: DingTalk (钉钉) custom robot, markdown; with a secret, `timestamp` (ms) and
//!   `sign` = Base64(HmacSHA256(key = secret, "timestamp\nsecret")) are added to the URL.
//! - `feishu`: Feishu/Lark (飞书) custom bot, text; with a secret, `timestamp` (s) and `sign` =
//!   Base64(HmacSHA256(key = "timestamp\nsecret", empty message)) go in the body.
//! - `alertmanager`: the Alertmanager webhook body, version 4 (one alert per transition).
//!
//! The chat services answer HTTP 200 even when they refuse a message; their `errcode` / `code`
//! field decides.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// What a receiver speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// gridsentry.order.v1 JSON.
    #[default]
    Generic,
    /// WeCom group robot.
    Wecom,
    /// DingTalk custom robot.
    Dingtalk,
    /// Feishu / Lark custom bot.
    Feishu,
    /// Alertmanager-compatible webhook (version 4).
    Alertmanager,
}

impl Format {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Generic => "generic",
            Format::Wecom => "wecom",
            Format::Dingtalk => "dingtalk",
            Format::Feishu => "feishu",
            Format::Alertmanager => "alertmanager",
        }
    }
}

/// One HTTP request to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Where to POST.
    pub url: String,
    /// JSON body.
    pub body: Vec<u8>,
}

/// Renders the generic `payload` for `format`. `now_ms` stamps the services' signatures.
pub fn render(
    format: Format,
    receiver: &str,
    url: &str,
    secret: Option<&str>,
    payload: &str,
    now_ms: u64,
) -> Result<Outgoing, String> {
    let generic = || Outgoing { url: url.to_string(), body: payload.as_bytes().to_vec() };
    if format == Format::Generic {
        return Ok(generic());
    }
    let p: Value = serde_json::from_str(payload).map_err(|e| format!("stored payload is not JSON: {e}"))?;
    if s(&p, "schema") == super::pace::DIGEST_SCHEMA {
        return Ok(digest(format, receiver, url, secret, &p, now_ms));
    }
    let (url, body) = match format {
        Format::Generic => return Ok(generic()),
        Format::Wecom => {
            (url.to_string(), json!({ "msgtype": "markdown", "markdown": { "content": markdown(&p, true) } }))
        }
        Format::Dingtalk => {
            let body = json!({ "msgtype": "markdown", "markdown": { "title": title(&p), "text": markdown(&p, false) } });
            (dingtalk_url(url, secret, now_ms), body)
        }
        Format::Feishu => {
            let mut body = json!({ "msg_type": "text", "content": { "text": text(&p) } });
            if let Some(secret) = secret {
                let ts = now_ms / 1000;
                body["timestamp"] = json!(ts.to_string());
                body["sign"] = json!(feishu_sign(secret, ts));
            }
            (url.to_string(), body)
        }
        Format::Alertmanager => (url.to_string(), alertmanager(&p, receiver)),
    };
    Ok(Outgoing { url, body: body.to_string().into_bytes() })
}

/// A digest ([`super::pace`]) for a chat robot: the counts and the first orders' titles; for
/// Alertmanager, one alert per notification.
fn digest(
    format: Format,
    receiver: &str,
    url: &str,
    secret: Option<&str>,
    p: &Value,
    now_ms: u64,
) -> Outgoing {
    const LISTED: usize = 20;
    let list: &[Value] = p["notifications"].as_array().map_or(&[], Vec::as_slice);
    let counts = |k: &str, name: fn(&str) -> String| -> String {
        let m = p[k].as_object().cloned().unwrap_or_default();
        m.iter().map(|(k, v)| format!("{} {v}", name(k))).collect::<Vec<_>>().join(" · ")
    };
    let (head, why) = match p.get("incident").filter(|i| i.is_object()) {
        Some(i) => (
            format!(
                "事件 Incident #{} {}：共 {} 个工单 orders（未关闭 open {}，红色 red {}），本次 {} 条通知 notifications",
                i["id"], s(i, "label"), i["orders"], i["open"], i["red"], list.len()
            ),
            "同一事件的工单合并发送；红色工单总是逐条立即发送 (one incident's orders go out together; red orders always go at once, on their own)",
        ),
        None => (
            format!("汇总 Digest: {} 条通知 notifications", list.len()),
            "接收端限速期间合并；红色工单总是逐条发送 (merged while this receiver's rate limit was reached; red orders always go on their own)",
        ),
    };
    let mut lines = vec![
        why.to_string(),
        format!("按颜色 by colour: {}", counts("by_colour", |c| colour_name(c).to_string())),
        format!("按规则 by rule: {}", counts("by_rule", str::to_string)),
    ];
    lines.extend(
        list.iter().take(LISTED).map(|n| format!("#{} {} ({})", n["order_id"], title(n), s(n, "event"))),
    );
    if list.len() > LISTED {
        lines.push(format!(
            "其余 {} 条见控制台 (the other {} are in the console)",
            list.len() - LISTED,
            list.len() - LISTED
        ));
    }
    let md = || format!("**{head}**\n\n{}", lines.iter().map(|l| format!("- {l}\n")).collect::<String>());
    let (url, body) = match format {
        Format::Generic => (url.to_string(), p.clone()),
        Format::Wecom => (url.to_string(), json!({ "msgtype": "markdown", "markdown": { "content": md() } })),
        Format::Dingtalk => (
            dingtalk_url(url, secret, now_ms),
            json!({ "msgtype": "markdown", "markdown": { "title": head, "text": md() } }),
        ),
        Format::Feishu => {
            let mut body =
                json!({ "msg_type": "text", "content": { "text": format!("{head}\n{}", lines.join("\n")) } });
            if let Some(secret) = secret {
                let ts = now_ms / 1000;
                body["timestamp"] = json!(ts.to_string());
                body["sign"] = json!(feishu_sign(secret, ts));
            }
            (url.to_string(), body)
        }
        Format::Alertmanager => {
            let mut body = alertmanager(list.first().unwrap_or(&Value::Null), receiver);
            body["alerts"] =
                Value::Array(list.iter().map(|n| alertmanager(n, receiver)["alerts"][0].clone()).collect());
            body["groupKey"] = json!(format!("{{}}:{{digest=\"{}\"}}", s(p, "idempotency_key")));
            (url.to_string(), body)
        }
    };
    Outgoing { url, body: body.to_string().into_bytes() }
}

/// Whether the service took the message: 2xx, and for chat robots a zero error code.
pub fn accepted(format: Format, status: u16, body: &[u8]) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    let field = match format {
        Format::Wecom | Format::Dingtalk => ["errcode", "errmsg"],
        Format::Feishu => ["code", "msg"],
        Format::Generic | Format::Alertmanager => return Ok(()),
    };
    let v: Value =
        serde_json::from_slice(body).map_err(|_| format!("HTTP {status} but the answer is not JSON"))?;
    // Older Feishu bots answer `StatusCode` instead of `code`.
    let code = v.get(field[0]).or_else(|| v.get("StatusCode")).and_then(Value::as_i64);
    match code {
        Some(0) => Ok(()),
        Some(c) => {
            Err(format!("{} {c}: {}", field[0], v.get(field[1]).and_then(Value::as_str).unwrap_or("")))
        }
        None => Err(format!("HTTP {status} without {}", field[0])),
    }
}

/// A DingTalk robot's URL, with `timestamp` and `sign` when it has a signing secret.
fn dingtalk_url(url: &str, secret: Option<&str>, now_ms: u64) -> String {
    let Some(secret) = secret else { return url.to_string() };
    let sign: String =
        url::form_urlencoded::byte_serialize(dingtalk_sign(secret, now_ms).as_bytes()).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timestamp={now_ms}&sign={sign}")
}

/// DingTalk: Base64(HmacSHA256(key = secret, message = "{timestamp_ms}\n{secret}")).
pub fn dingtalk_sign(secret: &str, timestamp_ms: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Feishu: Base64(HmacSHA256(key = "{timestamp_s}\n{secret}", empty message)).
pub fn feishu_sign(secret: &str, timestamp_s: u64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn s<'a>(p: &'a Value, k: &str) -> &'a str {
    p.get(k).and_then(Value::as_str).unwrap_or("")
}

fn colour_name(c: &str) -> &'static str {
    match c {
        "red" => "红色 RED",
        "orange" => "橙色 ORANGE",
        "yellow" => "黄色 YELLOW",
        "blue" => "蓝色 BLUE",
        _ => "?",
    }
}

/// `【红色 RED】边坡加速变形 · 鹅岭边坡（上清寺街道）`: the payload's title (rule and subject in
/// payloads from before titles).
fn title(p: &Value) -> String {
    match s(p, "title") {
        "" => format!("【{}】{} {}", colour_name(s(p, "colour")), s(p, "rule"), s(p, "subject")),
        t => format!("【{}】{t}", colour_name(s(p, "colour"))),
    }
}

/// The summary people read in a chat app: Chinese where there is one.
fn summary(p: &Value) -> &str {
    match s(p, "summary_zh") {
        "" => s(p, "summary"),
        zh => zh,
    }
}

fn forecast(p: &Value) -> Option<String> {
    let f = p.get("forecast")?;
    Some(format!("{} (R² {:.2})", f.get("failure_at")?.as_str()?, f.get("r2")?.as_f64()?))
}

/// The facts every chat message carries, as (label, value) lines after the summary.
fn facts(p: &Value) -> Vec<String> {
    let mut f = vec![
        format!("工单 order: #{} ({} → {})", p["order_id"], s(p, "event"), s(p, "state")),
        format!("对象 subject: {}", s(p, "subject")),
        format!("时间 at: {}", s(p, "at")),
    ];
    f.extend(forecast(p).map(|x| format!("预测失稳 failure forecast: {x}")));
    if p.get("late").and_then(Value::as_bool) == Some(true) {
        f.push("补传数据 raised from backfilled data".into());
    }
    if let Some(i) = p.get("incident").filter(|i| i.is_object()) {
        let first = if i["first"].as_bool() == Some(true) { "，首条 first" } else { "" };
        f.push(format!(
            "事件 incident: #{} {}{first}（后续工单合并汇总 later orders follow as digests）",
            i["id"],
            s(i, "label")
        ));
    }
    f
}

fn markdown(p: &Value, wecom: bool) -> String {
    let head = match (wecom, s(p, "colour")) {
        (true, "red" | "orange") => format!("<font color=\"warning\">**{}**</font>", title(p)),
        _ => format!("**{}**", title(p)),
    };
    let list: String = facts(p).iter().map(|f| format!("- {f}\n")).collect();
    format!("{head}\n\n> {}\n\n{list}", summary(p))
}

fn text(p: &Value) -> String {
    format!("{}\n{}\n{}", title(p), summary(p), facts(p).join("\n"))
}

fn alertmanager(p: &Value, receiver: &str) -> Value {
    let resolved = matches!(s(p, "state"), "resolved" | "closed");
    let status = if resolved { "resolved" } else { "firing" };
    let labels = json!({
        "alertname": s(p, "rule"),
        "severity": s(p, "colour"),
        "site": s(p, "site"),
        "device": s(p, "device"),
        "subject": s(p, "subject"),
        "order_id": p["order_id"].to_string(),
    });
    let mut annotations =
        json!({ "summary": s(p, "summary"), "state": s(p, "state"), "event": s(p, "event") });
    if let Some(f) = forecast(p) {
        annotations["failure_forecast"] = json!(f);
    }
    for key in ["title", "summary_zh"] {
        if !s(p, key).is_empty() {
            annotations[key] = json!(s(p, key));
        }
    }
    let fingerprint = hex::encode(&Sha256::digest(labels.to_string().as_bytes())[..8]);
    let alert = json!({
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": s(p, "opened_at"),
        "endsAt": if resolved { s(p, "at") } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "",
        "fingerprint": fingerprint,
    });
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\", order_id=\"{}\"}}", s(p, "rule"), p["order_id"]),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": { "alertname": s(p, "rule"), "order_id": p["order_id"].to_string() },
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "",
        "alerts": [alert],
    })
}
