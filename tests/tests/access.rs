//! Accountable access against a real daemon and its SQLite file: people with roles log in (a
//! session cookie or a personal token), each endpoint lets a role through or answers 403 (never
//! 500), five wrong passwords lock a name, who acts is the person logged in (never a field of
//! the request), a field worker sees and works only what was dispatched to them, and every one
//! of these steps is in the audit chain, which `gridsentry audit verify` checks — and which
//! names the row edited behind its back.

use gridsentry::access::{hash_password, Role};
use gridsentry::orders::{SlaTable, Store};
use gridsentry_tests::daemon::*;
use gridsentry_tests::{binary, noise, Hooks, Mosquitto, TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PASSWORD: &str = "a-long-enough-password";

/// Plaza 3 is on Jiefangbei street; the noise rule raises an order there.
fn rules() -> String {
    format!(
        "{NOISE_RULE}\n[[site]]\nid = \"plaza-3\"\nname = \"Plaza 3\"\nlat = 29.56\nlon = 106.57\nstreet = \"jiefangbei\"\n"
    )
}

fn store(d: &Daemon) -> Store {
    Store::open(&d.dir.path().join("data/orders.db"), SlaTable::default(), Vec::new()).unwrap()
}

fn add(s: &mut Store, name: &str, role: Role, streets: &[&str]) {
    let streets: Vec<String> = streets.iter().map(|s| s.to_string()).collect();
    s.person_add(name, role, &streets, &hash_password(PASSWORD).unwrap(), "test", 1).unwrap();
}

async fn token(d: &Daemon, name: &str, password: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/tokens", d.api))
        .json(&json!({ "name": name, "password": password, "label": "test" }))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn call(d: &Daemon, method: &str, path: &str, bearer: &str, body: Value) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", d.api);
    let req = match method {
        "GET" => http.get(url),
        _ => http.post(url).json(&body),
    };
    let r = req.bearer_auth(bearer).send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// Raises the noise order at plaza-3; its id.
async fn raise(d: &mut Daemon, broker: u16) -> i64 {
    raise_on(d, broker, "nb-01").await
}

/// Raises the noise order of box `device` at plaza-3; its id.
async fn raise_on(d: &mut Daemon, broker: u16, device: &str) -> i64 {
    let dev = Device::connect(broker, "plaza-3", device, false).await;
    for seq in 0..=11 {
        dev.send(seq, noise(80.0)).await;
    }
    loop {
        let c = d.next_change().await;
        if c.device == device {
            break c.order_id;
        }
    }
}

fn audit_actions(d: &Daemon) -> Vec<(String, String, String)> {
    let db = d.db();
    let mut q = db.prepare("SELECT who, action, subject FROM audit ORDER BY id").unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_gets_what_it_may_and_403_for_the_rest_never_500() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, &rules()).await;
    let id = raise(&mut d, broker.port).await;
    {
        let mut s = store(&d);
        for (name, role) in [
            ("vera", Role::Viewer),
            ("fang", Role::Field),
            ("olga", Role::Operator),
            ("adam", Role::Admin),
            ("aude", Role::Auditor),
        ] {
            add(&mut s, name, role, &[]);
        }
    }
    let mut tokens = std::collections::HashMap::new();
    for name in ["vera", "fang", "olga", "adam", "aude"] {
        let (status, body) = token(&d, name, PASSWORD).await;
        assert_eq!(status, 200, "{name}: {body}");
        tokens.insert(name, body["token"].as_str().unwrap().to_string());
    }
    // (method, path, body, who may) — everyone else gets 403.
    let o = format!("/api/v1/orders/{id}");
    let matrix: Vec<(&str, String, Value, &[&str])> = vec![
        ("GET", "/api/v1/orders".into(), Value::Null, &["vera", "fang", "olga", "adam", "aude"]),
        ("GET", o.clone(), Value::Null, &["vera", "olga", "adam", "aude"]),
        ("GET", "/api/v1/devices".into(), Value::Null, &["vera", "fang", "olga", "adam", "aude"]),
        ("GET", "/api/v1/sites".into(), Value::Null, &["vera", "fang", "olga", "adam", "aude"]),
        ("GET", "/api/v1/me".into(), Value::Null, &["vera", "fang", "olga", "adam", "aude"]),
        ("GET", "/api/v1/dead-letters".into(), Value::Null, &["olga", "adam"]),
        ("GET", "/api/v1/people".into(), Value::Null, &["adam"]),
        ("GET", "/api/v1/audit".into(), Value::Null, &["aude"]),
        ("POST", "/api/v1/people/vera/unlock".into(), json!({}), &["adam"]),
        ("GET", "/api/v1/duty".into(), Value::Null, &["olga"]),
        ("POST", format!("{o}/dispatch"), json!({ "to": "fang" }), &["olga"]),
    ];
    for (method, path, body, allowed) in &matrix {
        for name in ["vera", "fang", "olga", "adam", "aude"] {
            let (status, answer) = call(&d, method, path, &tokens[name], body.clone()).await;
            // A field worker does not see an order not dispatched to them: 404, as if absent.
            let want = if allowed.contains(&name) {
                StatusCode::OK
            } else if *name == *"fang" && path == &o {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, want, "{name} {method} {path}: {answer}");
        }
    }
    // Dispatched to fang now: fang sees it and works it; the viewer, admin and auditor cannot.
    for name in ["vera", "adam", "aude"] {
        let (status, _) = call(&d, "POST", &format!("{o}/ack"), &tokens[name], json!({})).await;
        assert_eq!(status, 403, "{name} may not acknowledge");
    }
    let (status, mine) = call(&d, "GET", "/api/v1/orders", &tokens["fang"], Value::Null).await;
    assert_eq!((status.as_u16(), mine["orders"].as_array().unwrap().len()), (200, 1), "{mine}");
    let (status, acked) =
        call(&d, "POST", &format!("{o}/ack"), &tokens["fang"], json!({ "why": "on my way" })).await;
    assert_eq!(status, 200, "{acked}");
    let (status, _) = call(&d, "POST", &format!("{o}/close"), &tokens["fang"], json!({})).await;
    assert_eq!(status, 403, "a field worker does not close");
    // A grid worker's resolve is the record that closes the loop: without a note it is refused.
    let (status, answer) =
        call(&d, "POST", &format!("{o}/resolve"), &tokens["fang"], json!({ "why": "  " })).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("note"), "{answer}");
    // The dispatch picker's list: the field workers an operator may send.
    let (_, duty) = call(&d, "GET", "/api/v1/duty", &tokens["olga"], Value::Null).await;
    assert_eq!(duty["field"], json!([{ "name": "fang", "streets": [] }]), "{duty}");
    // Who acted is the person logged in; the request cannot say otherwise.
    let (status, _) =
        call(&d, "POST", &format!("{o}/on-site"), &tokens["olga"], json!({ "who": "someone else" })).await;
    assert_eq!(status, 422, "`who` is not a field of an action any more");
    let (_, order) = call(&d, "GET", &o, &tokens["olga"], Value::Null).await;
    let who: Vec<&str> =
        order["events"].as_array().unwrap().iter().map(|e| e["who"].as_str().unwrap()).collect();
    assert_eq!(&who[1..], ["olga", "fang"], "{order}");
    assert_eq!(order["order"]["assignee"], "fang");
    // Dispatching to nobody known is refused.
    let id2 = raise_on(&mut d, broker.port, "nb-02").await;
    let (status, _) = call(
        &d,
        "POST",
        &format!("/api/v1/orders/{id2}/dispatch"),
        &tokens["olga"],
        json!({ "to": "nobody" }),
    )
    .await;
    assert_eq!(status, 400);
    // The legacy token still works for machines, as `legacy-token`.
    let (status, _) = call(&d, "POST", &format!("/api/v1/orders/{id2}/ack"), TOKEN, json!({})).await;
    assert_eq!(status, 200);
    // The auditor reads it all back, in order, in the chain.
    let (_, audit) = call(&d, "GET", "/api/v1/audit", &tokens["aude"], Value::Null).await;
    let rows: Vec<(String, String)> = audit["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["who"].as_str().unwrap().into(), r["action"].as_str().unwrap().into()))
        .collect();
    for want in [
        ("olga", "token.issue"),
        ("adam", "person.unlock"),
        ("olga", "order.dispatch"),
        ("fang", "order.ack"),
        ("legacy-token", "order.ack"),
    ] {
        assert!(rows.contains(&(want.0.into(), want.1.into())), "{want:?} not in {rows:?}");
    }
    assert!(!rows.iter().any(|(_, a)| a == "order.on-site"), "a refused action is not recorded as done");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_lock_a_name_and_every_attempt_is_audited() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    add(&mut store(&d), "li", Role::Operator, &[]);
    for i in 0..5 {
        let (status, body) = token(&d, "li", "wrong-password").await;
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let (status, body) = token(&d, "li", PASSWORD).await;
    assert_eq!(status, 401, "locked: even the right password is refused: {body}");
    // An unknown name gets the same answer.
    let (status, unknown) = token(&d, "nobody", PASSWORD).await;
    assert_eq!((status, &unknown["error"]), (StatusCode::UNAUTHORIZED, &body["error"]));
    let actions = audit_actions(&d);
    let count = |a: &str| actions.iter().filter(|(_, x, _)| x == a).count();
    assert_eq!((count("login.failed"), count("lockout")), (7, 1), "{actions:?}");
    assert!(actions.contains(&("-".into(), "login.failed".into(), "name nobody".into())));
    // From one address, ten attempts a minute (seven so far): the eleventh is 429.
    for _ in 0..3 {
        assert_eq!(token(&d, "li", PASSWORD).await.0, 401);
    }
    let (status, _) = token(&d, "li", PASSWORD).await;
    assert_eq!(status, 429, "the eleventh attempt within a minute");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_logs_in_and_out_and_streets_limit_the_view() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, &rules()).await;
    let id = raise(&mut d, broker.port).await;
    {
        let mut s = store(&d);
        add(&mut s, "near", Role::Viewer, &["jiefangbei"]);
        add(&mut s, "far", Role::Viewer, &["nanping"]);
    }
    let http = reqwest::Client::new();
    let mut cookies = std::collections::HashMap::new();
    for name in ["near", "far"] {
        let r = http
            .post(format!("{}/api/v1/login", d.api))
            .json(&json!({ "name": name, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        cookies.insert(name, set.split(';').next().unwrap().to_string());
    }
    let get = |path: String, cookie: String| {
        let http = http.clone();
        async move {
            let r = http.get(path).header("cookie", cookie).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, near) = get(format!("{}/api/v1/orders", d.api), cookies["near"].clone()).await;
    assert_eq!((s, near["orders"].as_array().unwrap().len()), (200, 1));
    let (s, far) = get(format!("{}/api/v1/orders", d.api), cookies["far"].clone()).await;
    assert_eq!(
        (s, far["orders"].as_array().unwrap().len()),
        (200, 0),
        "another street's order is not listed"
    );
    let (s, _) = get(format!("{}/api/v1/orders/{id}", d.api), cookies["far"].clone()).await;
    assert_eq!(s, 404);
    let (_, devices) = get(format!("{}/api/v1/devices", d.api), cookies["far"].clone()).await;
    assert_eq!(devices["devices"].as_array().unwrap().len(), 0);
    // Logging out ends the session at the server, not just in the browser.
    let r = http
        .post(format!("{}/api/v1/logout", d.api))
        .header("cookie", &cookies["near"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = get(format!("{}/api/v1/me", d.api), cookies["near"].clone()).await;
    assert_eq!(s, 401);
    let actions: Vec<String> = audit_actions(&d).into_iter().map(|(_, a, _)| a).collect();
    assert_eq!(actions.iter().filter(|a| *a == "login").count(), 2);
    assert!(actions.contains(&"logout".to_string()));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_passes_then_names_the_row_edited_behind_its_back() {
    use std::os::unix::fs::PermissionsExt;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let cfg = d.dir.path().join("test.toml");
    std::fs::write(&cfg, gridsentry_tests::config(d.dir.path(), broker.port, 0, &hooks.url, NOISE_RULE))
        .unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(binary()).args(args).env("GS_PW", PASSWORD).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let c = cfg.to_str().unwrap();
    // The first admin is made on the gateway, before or while the daemon runs.
    let (code, out) = cli(&["people", "--config", c, "add", "root-admin", "--role", "admin"]);
    assert_eq!(code, Some(0), "{out}");
    let shown =
        out.lines().find_map(|l| l.strip_prefix("password ")).unwrap().split_whitespace().next().unwrap();
    assert_eq!(token(&d, "root-admin", shown).await.0, 200, "the printed password works");
    let (code, out) = cli(&[
        "people",
        "--config",
        c,
        "add",
        "wang",
        "--role",
        "field",
        "--street",
        "jiefangbei",
        "--password-env",
        "GS_PW",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = cli(&["people", "--config", c, "add", "bad name", "--role", "field"]);
    assert_eq!(code, Some(1), "{out}");
    let (code, out) = cli(&["people", "--config", c, "add", "zhou", "--role", "superuser"]);
    assert_eq!(code, Some(1), "{out}");
    for _ in 0..3 {
        assert_eq!(token(&d, "wang", PASSWORD).await.0, 200);
    }
    let (code, out) = cli(&["people", "--config", c, "disable", "wang"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(token(&d, "wang", PASSWORD).await.0, 401, "disabled");
    let (code, list) = cli(&["people", "--config", c, "list"]);
    assert_eq!(code, Some(0));
    assert!(
        list.lines().any(|l| l.starts_with("wang") && l.contains("disabled") && l.contains("jiefangbei")),
        "{list}"
    );
    assert!(!list.contains("argon2"), "never a hash: {list}");
    // The chain holds.
    let (code, out) = cli(&["audit", "--config", c, "verify"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("audit chain intact: 8 rows"), "{out}");
    let (code, export) = cli(&["audit", "--config", c, "export", "--since", "2020-01-01"]);
    assert_eq!(code, Some(0), "{export}");
    assert_eq!(export.lines().filter(|l| l.starts_with('{')).count(), 8, "{export}");
    // Files are the daemon user's only, whatever the umask (the CLI made the database here).
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.dir.path().join("data")), 0o700);
    assert_eq!(mode(&d.dir.path().join("data/orders.db")), 0o600);
    // Someone with the file edits a row (the trigger refuses, so they drop it first).
    let db = d.db();
    assert!(db.execute("UPDATE audit SET who = 'nobody' WHERE id = 3", []).is_err(), "the trigger refuses");
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET detail = 'from elsewhere' WHERE id = 3;",
    )
    .unwrap();
    let (code, out) = cli(&["audit", "--config", c, "verify"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("broken at row 3"), "{out}");
    d.stop().await;
}

/// A grid worker's live feed (`/api/v1/events`) carries only the orders dispatched to them: the
/// first change they hear is the dispatch of theirs, not the raises of orders that are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_workers_feed_carries_only_orders_dispatched_to_them() {
    use futures_util::StreamExt;
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, &rules()).await;
    {
        let mut s = store(&d);
        add(&mut s, "fang", Role::Field, &[]);
        add(&mut s, "olga", Role::Operator, &[]);
    }
    let (fang, olga) = (token(&d, "fang", PASSWORD).await.1, token(&d, "olga", PASSWORD).await.1);
    let (fang, olga) =
        (fang["token"].as_str().unwrap().to_string(), olga["token"].as_str().unwrap().to_string());
    let feed = reqwest::Client::new()
        .get(format!("{}/api/v1/events", d.api))
        .bearer_auth(&fang)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let mut frames = feed.bytes_stream();
    let other = raise_on(&mut d, broker.port, "nb-01").await;
    let mine = raise_on(&mut d, broker.port, "nb-02").await;
    let (status, _) =
        call(&d, "POST", &format!("/api/v1/orders/{mine}/dispatch"), &olga, json!({ "to": "fang" })).await;
    assert_eq!(status, 200);
    // The first `order` frame fang hears (the two raises came before it on the operators' feed).
    let mut text = String::new();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let chunk = frames.next().await.expect("feed ended").unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(data) = text.split("\n\n").find(|f| f.contains("event: order")) {
                let json = data.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                break serde_json::from_str::<Value>(json).unwrap();
            }
        }
    })
    .await
    .expect("no order event for fang");
    assert_eq!(
        (first["order_id"].as_i64(), first["state"].as_str()),
        (Some(mine), Some("dispatched")),
        "{first}"
    );
    assert_eq!(first["assignee"], "fang");
    assert_ne!(mine, other);
    d.stop().await;
}
