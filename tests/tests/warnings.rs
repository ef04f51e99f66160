//! Public warnings: a slope accelerating towards failure turns its order red with a forecast
//! within `auto_within_h`, and every resident of the hazard site gets one text message (through
//! a stand-in for Alibaba Cloud SMS that checks each signature with its own Python
//! implementation of the provider's algorithm) and the loudspeakers one signed request; an
//! operator's 一键预警 does the same once, audited.

use gridsentry_sensors::{Body, ChannelKind, DeformReport, Timestamp};
use gridsentry_tests::daemon::{count, Daemon, Device, T0};
use gridsentry_tests::{Hooks, Mosquitto, TOKEN};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const RESIDENTS: [&str; 3] = ["13800000001", "13800000002", "+8613900000003"];
const ROUTE: &str = "沿青石路向东撤离至第三小学操场";

/// The stand-in SMS provider (tests/python/aliyun_sms.py): its URL and request log.
struct Provider {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Provider {
    fn start() -> Provider {
        let dir = tempfile::tempdir().unwrap();
        let (port_file, log) = (dir.path().join("port"), dir.path().join("requests.jsonl"));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/aliyun_sms.py");
        let child = Command::new("python3")
            .arg(&script)
            .args([port_file.to_str().unwrap(), "LTAI-test-id", "test-key-secret", log.to_str().unwrap()])
            .spawn()
            .expect("python3 (scripts/test installs it)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "the SMS stand-in did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Provider { child, url: format!("http://127.0.0.1:{port}/"), log, _dir: dir }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn residents_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("residents.txt");
    std::fs::write(
        &path,
        format!(
            "# 青石村\n{}\n\n{}  # 村委会\n{}\n{}\n",
            RESIDENTS[0], RESIDENTS[1], RESIDENTS[2], RESIDENTS[0]
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The slope's rule and site, and its `[[warning]]` (`auto`: with `auto_within_h`).
fn rules(dir: &Path, sms: &Provider, broadcast: &str, auto: bool) -> String {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("sms-key");
    std::fs::write(&key, "test-key-secret\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret = dir.join("broadcast-key");
    std::fs::write(&secret, format!("{}\n", gridsentry_tests::SECRET)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let auto = if auto { "auto_within_h = 1\n" } else { "" };
    format!(
        r#"
[[rule]]
id = "slope"
colour = "yellow"
condition = {{ type = "tangent_angle", field = "disp_mm", creep_mm_per_day = 8640.0, velocity_window_s = 2 }}

[[site]]
id = "slope-7"
name = "青石村滑坡隐患点"
street = "青石村"
lat = 29.5
lon = 106.5

[[warning]]
site = "slope-7"
route = "{ROUTE}"
residents_file = "{residents}"
{auto}
[warning.sms]
url = "{url}"
access_key_id = "LTAI-test-id"
access_key_secret = {{ file = "{key}" }}
sign_name = "青石村预警"
template_code = "SMS_123456789"

[warning.broadcast]
url = "{broadcast}/broadcast"
secret = {{ file = "{secret}" }}
"#,
        residents = residents_file(dir).display(),
        url = sms.url,
        key = key.display(),
        secret = secret.display(),
    )
}

/// An extensometer whose creep accelerates as 1/v falls linearly to zero 300 s after the start
/// (event time): yellow, orange, then red with a failure forecast about 20 s ahead.
async fn accelerate(dev: &Device, from_s: u32, until_s: u32) {
    const K: f64 = 30.0;
    const T_FAIL: f64 = 300.0;
    for t in from_s..until_s {
        let mm = 100.0 + K * (T_FAIL / (T_FAIL - f64::from(t))).ln();
        let mut d = DeformReport::default();
        d.push(ChannelKind::DisplacementMm, mm).unwrap();
        dev.send_as(7, t, Timestamp::Utc(T0 + u64::from(t) * 1000), Body::Deform(d)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_slope_with_a_near_forecast_warns_every_resident_once() {
    let broker = Mosquitto::start();
    let sms = Provider::start();
    let mut hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(broker.port, &hooks, &rules(dir.path(), &sms, &hooks.url, true)).await;
    let dev = Device::connect(broker.port, "slope-7", "ext-1", false).await;
    accelerate(&dev, 0, 296).await;
    let db = std::sync::Mutex::new(d.db());
    let sent = "SELECT COUNT(*) FROM warning_sends WHERE status = 'sent'";
    d.wait(|_| count(&db.lock().unwrap(), sent) == 4).await;
    let db = db.into_inner().unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM warnings"), 1, "one warning for the order");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM warnings WHERE trigger = 'auto' AND who = 'rule:slope'"), 1);
    let red = count(&db, "SELECT id FROM orders WHERE colour = 'red'");
    assert_eq!(count(&db, "SELECT order_id FROM warnings"), red);

    let got = sms.requests();
    assert_eq!(got.len(), 3, "one message per resident (the repeated number once): {got:#?}");
    let mut phones: Vec<&str> = got.iter().map(|r| r["phone"].as_str().unwrap()).collect();
    phones.sort();
    let mut want = RESIDENTS.to_vec();
    want.sort();
    assert_eq!(phones, want);
    for r in &got {
        assert_eq!(r["valid"], true, "signature checked by the stand-in: {r}");
        assert_eq!(
            (r["sign_name"].as_str(), r["template"].as_str()),
            (Some("青石村预警"), Some("SMS_123456789"))
        );
        let param: serde_json::Value = serde_json::from_str(r["param"].as_str().unwrap()).unwrap();
        assert_eq!(param["route"], ROUTE);
        assert_eq!(param["site"], "青石村滑坡隐患点");
        assert!(
            param["time"].as_str().unwrap().starts_with("2025-11-25T"),
            "the forecast failure time: {param}"
        );
    }
    let b = hooks.wait_until(|h| h.receiver == "broadcast", Duration::from_secs(10)).await;
    assert!(b.signed, "the broadcast request is signed");
    assert_eq!(b.body["schema"], "gridsentry.warning.v1");
    assert_eq!(b.body["route"], ROUTE);
    assert!(b.body["text"].as_str().unwrap().contains(ROUTE), "{}", b.body);
    // Residents read the forecast in local time, as people write it (T0 + 300 s in Shanghai).
    assert!(b.body["text"].as_str().unwrap().contains("预测 11月25日 20:05 前后"), "{}", b.body);
    assert_eq!(b.body["order_id"].as_i64(), Some(red));

    // The API lists it with every send's result, numbers masked.
    let (status, list) = d.get("/api/v1/warnings", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let w = &list["warnings"][0];
    assert_eq!((w["sent"].as_u64(), w["failed"].as_u64()), (Some(4), Some(0)), "{w:#}");
    let to: Vec<&str> = w["sends"].as_array().unwrap().iter().map(|s| s["to"].as_str().unwrap()).collect();
    assert!(to.contains(&"138****0001") && !list.to_string().contains("13800000001"), "{to:?}");
    // An operator's 一键预警 on the same order: already done, not sent twice.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/orders/{red}/warn", d.api))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(sms.requests().len(), 3);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_one_click_warning_is_sent_once_and_audited() {
    let broker = Mosquitto::start();
    let sms = Provider::start();
    let mut hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(broker.port, &hooks, &rules(dir.path(), &sms, &hooks.url, false)).await;
    let dev = Device::connect(broker.port, "slope-7", "ext-1", false).await;
    let warn = |id: i64| {
        let url = format!("{}/api/v1/orders/{id}/warn", d.api);
        async move { reqwest::Client::new().post(url).bearer_auth(TOKEN).send().await.unwrap() }
    };
    // Yellow first: a yellow order does not warn residents.
    accelerate(&dev, 0, 200).await;
    let first = hooks.wait_until(|h| h.body["rule"] == "slope", Duration::from_secs(20)).await;
    let id = first.body["order_id"].as_i64().unwrap();
    assert_eq!(warn(id).await.status().as_u16(), 409, "only red warns");
    // Red, with a forecast: without auto_within_h nothing is sent by itself.
    accelerate(&dev, 200, 296).await;
    let red = |h: &gridsentry_tests::Hook| h.body["order_id"] == id && h.body["colour"] == "red";
    hooks.wait_until(red, Duration::from_secs(20)).await;
    assert_eq!(count(&d.db(), "SELECT COUNT(*) FROM warnings"), 0, "no warning without the operator");
    let r = warn(id).await;
    assert_eq!(r.status().as_u16(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    let db = std::sync::Mutex::new(d.db());
    d.wait(|_| count(&db.lock().unwrap(), "SELECT COUNT(*) FROM warning_sends WHERE status = 'sent'") == 4)
        .await;
    let db = db.into_inner().unwrap();
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM warnings WHERE trigger = 'manual' AND who = 'legacy-token'"),
        1
    );
    let audited = "SELECT COUNT(*) FROM audit WHERE action = 'warning.send' AND who = 'legacy-token'";
    assert_eq!(count(&db, audited), 1);
    let second = warn(id).await;
    assert_eq!(second.status().as_u16(), 409);
    let again: serde_json::Value = second.json().await.unwrap();
    assert_eq!(again["warning"], body["warning"], "the same warning, not a second");
    assert_eq!(sms.requests().len(), 3);
    assert!(sms.requests().iter().all(|r| r["valid"] == true));
    assert_eq!(warn(9999).await.status().as_u16(), 404);
    d.stop().await;
}
