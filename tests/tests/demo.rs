//! The README's first command: `gridsentry demo` tells the whole story on stdout, one JSON
//! object per order transition, and (with `--influx-url`) stores every reading. (Shortened to
//! 40 s; the devices' timeline is wall-clock.)

use gridsentry_tests::victoria::Victoria;
use std::collections::HashMap;
use std::process::Command;

/// The number before `marker` in `text`.
fn number_before(text: &str, marker: &str) -> u64 {
    let at = text.find(marker).unwrap_or_else(|| panic!("`{marker}` not in:\n{text}"));
    text[..at].split_whitespace().last().unwrap().parse().unwrap()
}

#[tokio::test]
async fn demo_tells_the_story_in_json_lines() {
    let vm = Victoria::start();
    let out = Command::new(gridsentry_tests::binary())
        .args(["demo", "--duration-s", "40", "--influx-url", &vm.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    for l in &lines {
        for key in ["order_id", "rule", "device", "site", "colour", "state", "at", "summary"] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }
    let mut by_rule: HashMap<&str, Vec<&str>> = HashMap::new();
    for l in &lines {
        by_rule.entry(l["rule"].as_str().unwrap()).or_default().push(l["state"].as_str().unwrap());
    }
    let heart = &by_rule["heart-rate-drop"];
    assert_eq!(heart[..5], ["raised", "dispatched", "acknowledged", "on_site", "resolved"], "{stdout}");
    assert!(lines.iter().any(|l| l["rule"] == "heart-rate-drop" && l["colour"] == "red"));
    assert!(
        by_rule["plaza-noise"].contains(&"escalated"),
        "the unacknowledged noise order escalates:\n{stdout}"
    );
    assert_eq!(by_rule["band-removed"][0], "raised");
    assert_eq!(by_rule["noise-box-silent"][0], "raised");
    assert!(!by_rule.contains_key("heart-rate-low"), "a removed band is not a low heart rate");
    // The slope station, polled over Modbus TCP: orange, then red, carrying a forecast.
    let slope: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["rule"] == "slope-tangent-angle").collect();
    let colours: Vec<&str> = slope.iter().map(|l| l["colour"].as_str().unwrap()).collect();
    let first = |c: &str| colours.iter().position(|x| *x == c).unwrap_or_else(|| panic!("no {c}:\n{stdout}"));
    assert!(first("orange") < first("red"), "{stdout}");
    let red = slope[first("red")];
    assert!(red["forecast"].as_str().is_some_and(|f| f.starts_with("20")), "{red}");
    assert!(red["summary"].as_str().unwrap().contains("failure forecast"), "{red}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("with a valid signature, 0 rejected"), "{stderr}");
    // A newcomer can log in to the console the demo serves: it says where, as whom, with what
    // password.
    let password = stderr
        .split("log in as duty-officer / ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or("");
    assert!(stderr.contains("console http://127.0.0.1:") && password.len() == 16, "{stderr}");

    let applied = number_before(&stderr, "readings applied");
    let written = number_before(&stderr, "points written to");
    assert!(applied > 100, "{stderr}");
    assert_eq!(written, applied, "every reading stored:\n{stderr}");
    assert_eq!(number_before(&stderr, "waiting on disk"), 0);
    let stored: usize =
        vm.export("(noise|hr|deform|rain|status)_seq").await.iter().map(|s| s.samples.len()).sum();
    assert!(stored > 0 && stored as u64 <= written, "{stored} stored, {written} written");
}
