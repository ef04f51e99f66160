//! `gridsentry backtest --summary` on two slope series: one that creeps for three years with a
//! wet autumn burst each year and never fails (11-day InSAR points), one that accelerates to a
//! failure at a known time (hourly GNSS). A rule that learns v_c robustly over a long enough
//! baseline gives no red on the first and a red with a forecast before the failure on the second.

use gridsentry_tests::binary;
use std::fmt::Write;

const DAY_MS: u64 = 86_400_000;
/// 2020-01-01T00:00:00Z.
const START: u64 = 1_577_836_800_000;

fn line(device: &str, seq: u64, at: u64, mm: f64) -> String {
    format!(
        "deform,device={device},site=slope-9 disp_mm={mm:.3},boot_id=1i,seq={seq}i,historical=false {at}\n"
    )
}

fn run(rules: &str, series: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, input) = (dir.path().join("rules.toml"), dir.path().join("series.lp"));
    std::fs::write(&cfg, rules).unwrap();
    std::fs::write(&input, series).unwrap();
    let out = std::process::Command::new(binary())
        .args(["backtest", "--summary", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{stderr}");
    (stdout, stderr)
}

/// The summary row of `subject`: blue, yellow, orange, red, red episodes, and the rest.
fn row(summary: &str, subject: &str) -> (Vec<u64>, String) {
    let l =
        summary.lines().find(|l| l.contains(subject)).unwrap_or_else(|| panic!("{subject} in:\n{summary}"));
    let cols: Vec<&str> = l.split_whitespace().collect();
    let counts = cols[2..7].iter().map(|c| c.parse().unwrap()).collect();
    (counts, cols[7..].join(" "))
}

#[test]
fn a_creeping_slope_stays_below_red_and_a_failing_one_is_red_before_it_fails() {
    // Three years of 11-day points: 0.05 mm/d, 3 mm more in each autumn's wet month.
    let mut creep = String::new();
    for k in 0..100u64 {
        let d = 11.0 * k as f64;
        let wet: f64 =
            (0..3).map(|y| 3.0 * ((d - 240.0 - 365.0 * f64::from(y)) / 30.0).clamp(0.0, 1.0)).sum();
        creep += &line("insar-1", k, START + k * 11 * DAY_MS, 100.0 + 0.05 * d + wet);
    }
    let insar = r#"
[[rule]]
id = "slope-insar"
colour = "yellow"
condition = { type = "tangent_angle", field = "disp_mm", baseline_s = 31536000, baseline_min_points = 20, min_creep_mm_per_day = 0.01, velocity_window_s = 3801600 }
"#;
    let (summary, _) = run(insar, &creep);
    let (counts, rest) = row(&summary, "slope-9/insar-1");
    assert_eq!((counts[3], counts[4]), (0, 0), "no red on a slope that creeps without failing:\n{summary}");
    let v_c: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
    assert!((v_c - 0.05).abs() < 0.01, "the long-term rate, not the bursts: {v_c}\n{summary}");

    // Hourly GNSS: 1 mm/d for 30 days, then 1/v falls linearly to zero at day 60 (Fukuzono).
    let mut fail = String::new();
    let t_f = 60.0;
    let mut mm = 100.0;
    for h in 0..(59 * 24) {
        let d = h as f64 / 24.0;
        let v = if d < 30.0 { 1.0 } else { 30.0 / (t_f - d) };
        mm += v / 24.0;
        let _ = write!(fail, "{}", line("gnss-1", h, START + h * 3_600_000, mm));
    }
    let gnss = r#"
[daemon]
timezone = "UTC"

[[rule]]
id = "slope-gnss"
colour = "yellow"
condition = { type = "tangent_angle", field = "disp_mm", min_creep_mm_per_day = 0.1 }
"#;
    let (summary, _) = run(gnss, &fail);
    let (counts, rest) = row(&summary, "slope-9/gnss-1");
    assert!(counts[3] >= 1 && counts[4] >= 1, "red before the failure:\n{summary}");
    assert!(rest.starts_with("1.0"), "v_c learnt from the steady first week: {rest}");
    let forecast =
        summary.lines().find(|l| l.contains("forecast failure")).unwrap_or_else(|| panic!("{summary}"));
    // The failure is at 2020-03-01T00:00Z (day 60); the forecast names that day.
    assert!(forecast.contains("2020-02-29") || forecast.contains("2020-03-01"), "{forecast}");
}
