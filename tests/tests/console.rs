//! The operators' console in headless Chromium, against `gridsentry demo`: a wrong password is
//! refused, the demo's duty officer logs in, the demo's red slope order appears in Chinese, is
//! dispatched to the grid worker on duty and acknowledged; the grid worker on a phone reports
//! on site and resolves it with a note, live on the operator's page; the wall view; screenshots
//! (desktop, field, wall) are saved in the test's output directory; the operator adds a silence
//! in the console and ends it. Needs node, Debian `chromium` and playwright-core (scripts/test installs them
//! into target/console-node).

use gridsentry_tests::{binary, free_port, terminate, wait_ready};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const PASSWORD: &str = "console-test-password-0123";
const NAME: &str = "duty-officer";
const FIELD: &str = "grid-worker-wang";
const FIELD_PASSWORD: &str = "console-test-field-password-4567";

fn node_modules() -> PathBuf {
    std::env::var_os("GRIDSENTRY_NODE_MODULES").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-node/node_modules")
    })
}

/// `GET path` on the demo's API with `token`, as JSON.
async fn get_json(http: u16, path: &str, token: &str) -> serde_json::Value {
    let r = reqwest::Client::new().get(format!("http://127.0.0.1:{http}{path}")).bearer_auth(token).send();
    r.await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_acknowledges_the_red_order_in_the_console() {
    let modules = node_modules();
    assert!(
        modules.join("playwright-core").exists(),
        "{} has no playwright-core (scripts/test installs it)",
        modules.display()
    );
    let http = free_port();
    let demo = Command::new(binary())
        .args(["demo", "--duration-s", "90", "--http", &format!("127.0.0.1:{http}")])
        .env("GRIDSENTRY_DEMO_PASSWORD", PASSWORD)
        .env("GRIDSENTRY_DEMO_FIELD_PASSWORD", FIELD_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Some(demo);
    wait_ready(http).await;
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let _ = std::fs::remove_file(&shot);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console/drive.cjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .args([
            &format!("http://127.0.0.1:{http}/"),
            NAME,
            PASSWORD,
            shot.to_str().unwrap(),
            FIELD,
            FIELD_PASSWORD,
        ])
        .env("NODE_PATH", &modules)
        .output()
        .await
        .expect("node (scripts/test installs nodejs)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "console drive failed:\n{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = result["order"].as_i64().unwrap();
    assert!(result["devices"].as_i64().unwrap() >= 5, "{result}");

    // The API agrees: acknowledged by the person logged in to the console.
    let token = result["token"].as_str().unwrap();
    let order = get_json(http, &format!("/api/v1/orders/{id}"), token).await;
    assert_eq!(order["order"]["colour"], "red");
    let ack =
        order["events"].as_array().unwrap().iter().find(|e| e["kind"] == "acknowledged").expect("ack event");
    assert_eq!(ack["who"], NAME);
    // Dispatched to the grid worker on duty, who reported on site and resolved it with his note.
    let by =
        |kind: &str| order["events"].as_array().unwrap().iter().find(|e| e["kind"] == kind).cloned().unwrap();
    assert_eq!(by("dispatched")["why"], format!("to {FIELD}"));
    assert_eq!(by("on_site")["who"], FIELD);
    assert_eq!(
        (by("resolved")["who"].as_str(), by("resolved")["why"].as_str()),
        (Some(FIELD), Some("清理坡脚落石，已设警戒，转交地灾专班"))
    );
    assert_eq!(order["order"]["assignee"], FIELD);
    // The incident the operator chose in the console: the slope's street, the red order in it.
    let incidents = get_json(http, "/api/v1/incidents", token).await;
    let chosen =
        incidents["incidents"].as_array().unwrap().iter().find(|i| i["id"] == result["incident"]).cloned();
    let chosen = chosen.unwrap_or_else(|| panic!("incident {} not listed: {incidents}", result["incident"]));
    assert_eq!((chosen["name"].as_str(), chosen["red"].as_i64()), (Some("上清寺街道"), Some(1)), "{chosen}");
    assert_eq!(chosen["id"], order["order"]["incident"], "the red slope order opened it");
    // The 一键预警 the operator confirmed: one warning of the red order, by them, sent to the
    // loudspeakers (the demo has no SMS).
    let warned = get_json(http, "/api/v1/warnings", token).await;
    let list = warned["warnings"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{warned}");
    let w = &list[0];
    assert_eq!((w["warning"]["order_id"].as_i64(), w["warning"]["who"].as_str()), (Some(id), Some(NAME)));
    assert_eq!(
        (w["warning"]["trigger"].as_str(), w["sends"][0]["channel"].as_str()),
        (Some("manual"), Some("broadcast"))
    );
    // The silence the operator made and ended in the console, as the API keeps it.
    let silences = get_json(http, "/api/v1/silences", token).await;
    let made = silences["silences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["silence"]["id"] == result["silence"])
        .unwrap_or_else(|| panic!("silence {} not listed: {silences}", result["silence"]));
    assert_eq!(made["active"], false, "ended in the console");
    assert_eq!(made["silence"]["who"], NAME);
    assert_eq!(made["silence"]["reason"], "更换噪声监测箱");
    assert_eq!(made["silence"]["matcher"], serde_json::json!({ "field": "site", "value": "plaza-3" }));
    for name in ["console.png", "console-field.png", "console-wall.png"] {
        let path = shot.with_file_name(name);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 20_000, "screenshot {} is {size} bytes", path.display());
    }
    println!(
        "console screenshot: {}; events pushed during the 50 presses: {}",
        shot.display(),
        result["events_during_presses"]
    );
    terminate(&mut demo);
}
