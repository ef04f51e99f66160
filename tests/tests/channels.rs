//! Every channel format through a real HTTP receiver: one red order reaches the generic
//! receiver, a WeCom robot, a signed DingTalk robot, a signed Feishu bot and an Alertmanager
//! receiver, each in its own shape and, where the service signs, with a signature that checks.

use gridsentry::notify::formats::{dingtalk_sign, feishu_sign};
use gridsentry_tests::daemon::*;
use gridsentry_tests::{noise, Hooks, Mosquitto};

const ROBOT_SECRET: &str = "SECdemo0123456789abcdef";

const LOUD: &str = r#"
[[rule]]
id = "plaza-loud"
colour = "red"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_in_every_format() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let robot = dir.path().join("robot-secret");
    gridsentry_tests::write_secret(&robot, ROBOT_SECRET);
    let mut receivers = String::new();
    for (name, extra) in [
        ("wecom", String::new()),
        ("dingtalk", format!("secret = {{ file = \"{}\" }}", robot.display())),
        ("feishu", format!("secret = {{ file = \"{}\" }}", robot.display())),
        ("alertmanager", String::new()),
    ] {
        receivers += &format!(
            "\n[[receiver]]\nname = \"{name}\"\nformat = \"{name}\"\nurl = \"{}/{name}\"\n{extra}\n",
            hooks.url
        );
    }
    let d = Daemon::start(broker.port, &hooks, &format!("{LOUD}{receivers}")).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    dev.send(0, noise(75.0)).await;
    let all = hooks.wait_for(5, WAIT).await;
    let by =
        |name: &str| all.iter().find(|h| h.receiver == name).unwrap_or_else(|| panic!("{name}: {all:#?}"));

    let generic = by("grid");
    assert!(generic.signed && generic.body["schema"] == "gridsentry.order.v1");
    let key = &generic.key;

    let wecom = by("wecom");
    assert_eq!(wecom.body["msgtype"], "markdown");
    assert!(wecom.body["markdown"]["content"].as_str().unwrap().contains("plaza-3/nb-01"));

    let ding = by("dingtalk");
    let query = ding.query.as_deref().unwrap();
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let ts: u64 = params["timestamp"].parse().unwrap();
    assert_eq!(params["sign"], dingtalk_sign(ROBOT_SECRET, ts), "{query}");
    assert!(
        ts.abs_diff(gridsentry::clock::now_ms()) < 3_600_000,
        "DingTalk refuses signatures older than an hour"
    );
    assert_eq!(ding.body["msgtype"], "markdown");

    let feishu = by("feishu");
    let ts: u64 = feishu.body["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(feishu.body["sign"], feishu_sign(ROBOT_SECRET, ts));
    assert_eq!(feishu.body["msg_type"], "text");

    let am = by("alertmanager");
    assert_eq!((am.body["version"].as_str(), am.body["status"].as_str()), (Some("4"), Some("firing")));
    assert_eq!(am.body["alerts"][0]["labels"]["severity"], "red");

    assert!(all.iter().all(|h| &h.key == key), "one transition, one idempotency key everywhere");
    d.stop().await;
}
