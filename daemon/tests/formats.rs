//! Channel formats against the services' documented request shapes, and their signature
//! algorithms against the services' own sample code (DingTalk's and Feishu's Python examples,
//! run here with python3's hmac/base64 — an implementation independent of ours).

use gridsentry::notify::formats::{accepted, dingtalk_sign, feishu_sign, render, Format};
use serde_json::Value;
use std::process::Command;

fn python(code: &str) -> String {
    let out =
        Command::new("python3").arg("-c").arg(code).output().expect("python3 (scripts/test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const SECRET: &str = "SEC3f1c0a9b1e2d4c5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0";

#[test]
fn dingtalk_signature_matches_the_documented_python_sample() {
    // https://open.dingtalk.com/document/robots/customize-robot-security-settings (Python):
    // string_to_sign = '{}\n{}'.format(timestamp, secret)
    // hmac_code = hmac.new(secret_enc, string_to_sign_enc, digestmod=hashlib.sha256).digest()
    // sign = urllib.parse.quote_plus(base64.b64encode(hmac_code))
    for ts in [1_577_262_236_757u64, 1_764_072_000_000] {
        let want = python(&format!(
            "import hmac,hashlib,base64\nsecret='{SECRET}'\nts='{ts}'\n\
             s='{{}}\\n{{}}'.format(ts, secret)\n\
             print(base64.b64encode(hmac.new(secret.encode('utf-8'), s.encode('utf-8'), digestmod=hashlib.sha256).digest()).decode())"
        ));
        assert_eq!(dingtalk_sign(SECRET, ts), want);
        let encoded = python(&format!("import urllib.parse\nprint(urllib.parse.quote_plus('{want}'))"));
        let out = render(
            Format::Dingtalk,
            "d",
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
            Some(SECRET),
            PAYLOAD,
            ts,
        )
        .unwrap();
        assert_eq!(
            out.url,
            format!("https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp={ts}&sign={encoded}")
        );
    }
}

#[test]
fn feishu_signature_matches_the_documented_python_sample() {
    // https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot (Python):
    // string_to_sign = '{}\n{}'.format(timestamp, secret)
    // hmac_code = hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    // sign = base64.b64encode(hmac_code).decode('utf-8')
    for ts in [1_599_360_473u64, 1_764_072_000] {
        let want = python(&format!(
            "import hmac,hashlib,base64\nsecret='{SECRET}'\nts='{ts}'\n\
             s='{{}}\\n{{}}'.format(ts, secret)\n\
             print(base64.b64encode(hmac.new(s.encode('utf-8'), digestmod=hashlib.sha256).digest()).decode('utf-8'))"
        ));
        assert_eq!(feishu_sign(SECRET, ts), want);
        let out = render(
            Format::Feishu,
            "f",
            "https://open.feishu.cn/open-apis/bot/v2/hook/x",
            Some(SECRET),
            PAYLOAD,
            ts * 1000 + 999,
        )
        .unwrap();
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(body["timestamp"], ts.to_string(), "seconds, as a string");
        assert_eq!(body["sign"], want);
    }
}

const PAYLOAD: &str = r#"{"schema":"gridsentry.order.v1","idempotency_key":"7-3","order_id":7,"transition":3,
"event":"escalated","state":"raised","colour":"red","tier":0,"rule":"slope-tangent-angle","site":"slope-7",
"device":"ext-1","subject":"slope-7/ext-1","summary":"tangent angle 86.0°","late":false,
"at":"2026-11-25T18:19:17.394Z","opened_at":"2026-11-25T18:19:00.000Z",
"forecast":{"failure_at":"2026-11-25T18:19:18Z","r2":0.99,"points":47},"evidence":null}"#;

fn body(format: Format) -> Value {
    let out = render(format, "ops", "http://h/x", None, PAYLOAD, 1_764_072_000_000).unwrap();
    assert_eq!(out.url, "http://h/x", "no signature without a secret");
    serde_json::from_slice(&out.body).unwrap()
}

#[test]
fn wecom_markdown_message() {
    // https://developer.work.weixin.qq.com/document/path/91770: {"msgtype":"markdown","markdown":{"content":...}}
    let b = body(Format::Wecom);
    assert_eq!(b["msgtype"], "markdown");
    let content = b["markdown"]["content"].as_str().unwrap();
    assert!(
        content
            .starts_with("<font color=\"warning\">**【红色 RED】slope-tangent-angle slope-7/ext-1**</font>"),
        "{content}"
    );
    assert!(
        content.contains("tangent angle 86.0°") && content.contains("2026-11-25T18:19:18Z (R² 0.99)"),
        "{content}"
    );
    assert!(content.len() <= 4096, "WeCom's markdown limit");
}

#[test]
fn chat_messages_use_the_title_and_the_chinese_summary() {
    let payload = PAYLOAD.replace(
        r#""summary":"tangent angle 86.0°","#,
        r#""title":"边坡加速变形 · 鹅岭边坡（上清寺街道）","summary":"tangent angle 86.0°","summary_zh":"切线角 86.0°","#,
    );
    let out = render(Format::Wecom, "ops", "http://h/x", None, &payload, 1_764_072_000_000).unwrap();
    let b: Value = serde_json::from_slice(&out.body).unwrap();
    let content = b["markdown"]["content"].as_str().unwrap();
    assert!(
        content.starts_with(
            "<font color=\"warning\">**【红色 RED】边坡加速变形 · 鹅岭边坡（上清寺街道）**</font>"
        ),
        "{content}"
    );
    assert!(content.contains("> 切线角 86.0°") && !content.contains("tangent angle"), "{content}");
    assert!(content.contains("对象 subject: slope-7/ext-1"), "{content}");
}

#[test]
fn dingtalk_markdown_message() {
    // {"msgtype":"markdown","markdown":{"title":...,"text":...}}
    let b = body(Format::Dingtalk);
    assert_eq!(b["msgtype"], "markdown");
    assert_eq!(b["markdown"]["title"], "【红色 RED】slope-tangent-angle slope-7/ext-1");
    assert!(b["markdown"]["text"].as_str().unwrap().contains("#7 (escalated → raised)"));
}

#[test]
fn feishu_text_message() {
    // {"msg_type":"text","content":{"text":...}} (+ timestamp, sign with a secret)
    let b = body(Format::Feishu);
    assert_eq!(b["msg_type"], "text");
    assert!(b["content"]["text"].as_str().unwrap().starts_with("【红色 RED】"));
    assert!(b.get("sign").is_none());
}

#[test]
fn alertmanager_version_4() {
    // https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
    let b = body(Format::Alertmanager);
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "ops");
    for key in [
        "groupKey",
        "truncatedAlerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    ] {
        assert!(b.get(key).is_some(), "{key}");
    }
    let a = &b["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "slope-tangent-angle");
    assert_eq!(a["labels"]["severity"], "red");
    assert_eq!(a["startsAt"], "2026-11-25T18:19:00.000Z");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["annotations"]["failure_forecast"], "2026-11-25T18:19:18Z (R² 0.99)");
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    let resolved = PAYLOAD.replace(r#""state":"raised""#, r#""state":"resolved""#);
    let out = render(Format::Alertmanager, "ops", "http://h/x", None, &resolved, 0).unwrap();
    let b: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(
        (b["status"].as_str(), b["alerts"][0]["endsAt"].as_str()),
        (Some("resolved"), Some("2026-11-25T18:19:17.394Z"))
    );
    assert_eq!(b["alerts"][0]["fingerprint"], a["fingerprint"], "same alert, same fingerprint");
}

#[test]
fn generic_is_the_stored_payload() {
    let out = render(Format::Generic, "g", "http://h/x", Some("k"), PAYLOAD, 0).unwrap();
    assert_eq!(out.body, PAYLOAD.as_bytes());
}

#[test]
fn chat_robots_refuse_with_200_and_an_error_code() {
    assert!(accepted(Format::Wecom, 200, br#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
    let e = accepted(Format::Dingtalk, 200, br#"{"errcode":310000,"errmsg":"sign not match"}"#).unwrap_err();
    assert_eq!(e, "errcode 310000: sign not match");
    assert!(accepted(Format::Feishu, 200, br#"{"code":0,"msg":"success","data":{}}"#).is_ok());
    assert!(accepted(Format::Feishu, 200, br#"{"StatusCode":0,"StatusMessage":"success"}"#).is_ok());
    assert!(accepted(
        Format::Feishu,
        200,
        br#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#
    )
    .is_err());
    assert!(accepted(Format::Wecom, 200, b"<html>").is_err());
    assert!(accepted(Format::Generic, 204, b"").is_ok());
    assert_eq!(accepted(Format::Alertmanager, 500, b"").unwrap_err(), "HTTP 500");
}
