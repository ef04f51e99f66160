//! The binary as a user runs it: `samples`, `check`, and `decode` reading `mosquitto_sub -v` lines.

use std::io::Write;
use std::process::{Command, Stdio};

fn gridsentry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gridsentry"))
}

#[test]
fn samples_print_every_family_and_a_rejection() {
    let out = gridsentry().arg("samples").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for topic in ["gs/v1/plaza-3/nb-01/noise", "gs/v1/home-12/gw-1/hr", "gs/v1/slope-7/incl-2/deform"] {
        assert!(text.contains(&format!("topic   {topic}")), "{topic} missing in:\n{text}");
    }
    assert!(text.contains("field `hr.bpm`: missing"), "{text}");
}

/// `gridsentry decode` fed `input` on stdin.
fn decode(input: &str) -> std::process::Output {
    let mut child = gridsentry()
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn decode_reports_each_line() {
    let good =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/payloads/valid/rain.json"))
            .unwrap();
    let input =
        format!("gs/v1/slope-7/rg-1/rain {}gs/v1/slope-7/rg-1/#  {{}}\ngs/v1/a/b/noise {{\"v\":9}}\n", good);
    let out = decode(&input);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let json: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(json[0]["topic"], "gs/v1/slope-7/rg-1/rain");
    assert_eq!(json[0]["reading"]["dev"], "rg-1", "the reading in the wire contract's JSON");
    assert!(json[0]["reading"]["rain"]["rain_cum_mm"].is_number(), "{}", lines[0]);
    assert!(
        json[1]["rejected"].as_str().unwrap().contains("topic: contains an MQTT wildcard"),
        "{}",
        lines[1]
    );
    let why = json[2]["rejected"].as_str().unwrap();
    assert!(why.contains("payload: payload format version 9 is not supported"), "{why}");
    assert_eq!(String::from_utf8(out.stderr).unwrap().trim(), "2 rejected");
}

#[test]
fn decode_rejects_a_payload_on_another_devices_topic() {
    let mut child = gridsentry()
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let good =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/payloads/valid/rain.json"))
            .unwrap();
    child.stdin.take().unwrap().write_all(format!("gs/v1/slope-7/rg-2/rain {good}").as_bytes()).unwrap();
    let text = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert!(text.contains("payload: field `dev`: conflict"), "{text}");
}

#[test]
fn check_prints_what_would_run_or_the_error_position() {
    let ok = gridsentry()
        .args(["check", concat!(env!("CARGO_MANIFEST_DIR"), "/../config/plaza.toml")])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let text = String::from_utf8(ok.stdout).unwrap();
    assert!(text.contains("rule     plaza-noise-gb3096-class1 (广场噪声超标（1 类区）) [yellow]"), "{text}");
    assert!(text.ends_with("ok: 2 rules, 2 receivers\n"), "{text}");
    let dir = std::env::temp_dir().join(format!("gridsentry-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[daemon]\nhttp = 8080\n").unwrap();
    let out = gridsentry().arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with(&format!("{}:2:8: ", bad.display())), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_refuses_a_port_out_of_range_and_warns_on_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("port.toml");
    std::fs::write(&bad, "[daemon]\nhttp = \"localhost:99999\"\n").unwrap();
    let out = gridsentry().arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with(&format!("{}:2:8: `localhost:99999`: port `99999`", bad.display())), "{err}");
    for good in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080"] {
        std::fs::write(&bad, format!("[daemon]\nhttp = \"{good}\"\n")).unwrap();
        assert!(gridsentry().arg("check").arg(&bad).output().unwrap().status.success(), "{good}");
    }
    // Reachable from other machines: TLS, or plain HTTP said out loud.
    for open in ["0.0.0.0:8080", "gw-3.street.local:80"] {
        std::fs::write(&bad, format!("[daemon]\nhttp = \"{open}\"\n")).unwrap();
        let out = gridsentry().arg("check").arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{open}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with(&format!("{}:2:8:", bad.display())) && err.contains("plain HTTP"), "{err}");
        std::fs::write(&bad, format!("[daemon]\nhttp = \"{open}\"\nallow_plain_http = true\n")).unwrap();
        assert!(gridsentry().arg("check").arg(&bad).output().unwrap().status.success(), "{open}");
    }
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    let out = gridsentry().arg("check").arg(&empty).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("sets nothing"));
}

#[test]
fn check_says_only_what_applies_to_a_worker_and_to_a_relay() {
    let run = |file: &str| {
        let out = gridsentry()
            .args(["check", &format!("{}/../config/{file}", env!("CARGO_MANIFEST_DIR"))])
            .env("GRIDSENTRY_POSTGRES", "host=db.example dbname=city user=gs password=s3cret")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let worker = run("cluster.toml");
    assert!(worker.contains("role     cluster worker"), "{worker}");
    assert!(worker.contains("postgres db.example database city"), "{worker}");
    assert!(worker.contains("as user worker"), "{worker}");
    assert!(!worker.contains("s3cret"), "the password was printed: {worker}");
    for absent in ["broker ", "orders.db", "embedded"] {
        assert!(!worker.contains(absent), "`{absent}` printed for a worker: {worker}");
    }
    let relay = run("relay.toml");
    assert!(relay.contains("role     relay") && relay.contains("as user relay"), "{relay}");
    assert!(
        relay.contains("broker   mosquitto:1883") && relay.contains("http     http://0.0.0.0:8081/healthz"),
        "{relay}"
    );
    for absent in ["orders.db", "api ", "postgres", "embedded", "rule "] {
        assert!(!relay.contains(absent), "`{absent}` printed for a relay: {relay}");
    }
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_newcomers_slips_get_plain_answers() {
    let port = closed_port();
    // No scheme, nothing running: not "builder error", and --wait keeps asking before saying so.
    for args in
        [vec![format!("127.0.0.1:{port}")], vec![format!("127.0.0.1:{port}"), "--wait".into(), "1".into()]]
    {
        let out = gridsentry().arg("healthcheck").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("is the daemon running there?"), "{err}");
    }
    // `-o` after the subcommand; a daemon not running named as such, not a bare request error.
    let out = gridsentry()
        .args(["orders", "--api", &format!("127.0.0.1:{port}"), "show", "1", "-o", "json"])
        .env("GRIDSENTRY_API_TOKEN", "x")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is the daemon running there?"), "{err}");
    // Text that is not a payload is called that, not a payload "format version 104".
    let out = decode("gs/v1/plaza-3/nb-01/noise hello\n").stdout;
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("not a gridsentry payload (JSON expected"), "{out}");
}

#[test]
fn a_busy_embedded_broker_port_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = dir.path().join("gs.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ndata_dir = \"{}\"\nhttp = \"127.0.0.1:0\"\nembedded_broker = \"127.0.0.1:{port}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = gridsentry().args(["run", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    drop(taken);
}

#[test]
fn check_reports_every_mistake_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[daemon]\ntimezone = \"Mars/Olympus\"\n\n[[receiver]]\nname = \"a\"\nurl = \"ftp://x\"\n\n[[site]]\nid = \"p\"\nlat = 100\nlon = 0\n",
    )
    .unwrap();
    let out = gridsentry().arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    let f = bad.display().to_string();
    assert!(lines.len() == 3, "three mistakes, three lines:\n{err}");
    assert!(lines[0].starts_with(&format!("{f}:2:12: unknown time zone")), "{err}");
    assert!(lines[1].starts_with(&format!("{f}:4:1: receiver `a`: url")), "{err}");
    assert!(lines[2].starts_with(&format!("{f}:8:1: site `p`: lat")), "{err}");
}
