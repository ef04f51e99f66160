//! Config files: the examples in config/ parse; every error names FILE:LINE:COL.

use gridsentry::config::parse;

#[test]
fn every_example_config_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let cfg = parse(&path.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
            // A relay has no rules: it only moves readings (cluster mode).
            let relay = cfg.cluster.as_ref().is_some_and(|c| c.get_ref().postgres.is_none());
            assert!(relay || !cfg.rules.is_empty(), "{}", path.display());
            n += 1;
        }
    }
    assert_eq!(n, 6);
    // Cluster mode's compose configs.
    for f in ["worker.toml", "relay-1.toml", "relay-2.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cluster").join(f);
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = parse(&path.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.cluster.unwrap().get_ref().partitions, 8, "{f}: K as in nats-*.conf");
    }
    // The compose deployment's config too.
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/gridsentry.toml");
    let text = std::fs::read_to_string(&deploy).unwrap();
    let cfg = parse(&deploy.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.receivers.len(), 2);
}

/// A tier-0 receiver: configs with rules need one.
const RECEIVER: &str = "[[receiver]]\nname = \"duty\"\nurl = \"http://x\"\nsecret = { env = \"S\" }\n";

/// The config's error lines, but for the missing tier-0 receiver that these short texts all
/// share (every mistake is reported in one run).
fn err(text: &str) -> String {
    let all = parse("test.toml", text).unwrap_err().to_string();
    all.lines().filter(|l| !l.contains("no receiver at tier 0")).collect::<Vec<_>>().join("\n")
}

#[test]
fn unknown_keys_are_rejected_at_their_position() {
    let e = err("[daemon]\nhttp = \"127.0.0.1:1\"\nlinger = 3\n");
    assert!(e.starts_with("test.toml:3:1: unknown field `linger`"), "{e}");
}

#[test]
fn type_errors_point_at_the_value() {
    let e = err("[daemon]\nbatch_max = \"many\"\n");
    assert!(e.starts_with("test.toml:2:13: "), "{e}");
}

#[test]
fn syntax_errors_have_a_position() {
    let e = err("[daemon\n");
    assert!(e.starts_with("test.toml:1:"), "{e}");
}

#[test]
fn bad_time_zone_points_at_its_value() {
    let e = err("[daemon]\ntimezone = \"Mars/Olympus\"\n");
    assert_eq!(
        e,
        "test.toml:2:12: unknown time zone `Mars/Olympus` (use an IANA name such as Asia/Shanghai)"
    );
}

#[test]
fn impossible_rules_point_at_their_table() {
    let text = "[[rule]]\nid = \"a\"\ncolour = \"red\"\ncondition = { type = \"hr_low\", below_bpm = 40 }\n\n\
                [[rule]]\nid = \"noise\"\ncolour = \"yellow\"\n\
                condition = { type = \"threshold\", stream = \"noise\", field = \"laeq_db\", above = 70.0, clear = 75.0 }\n";
    let e = err(text);
    assert_eq!(e, "test.toml:6:1: rule `noise`: `clear` must be on the safe side of the limit (hysteresis)");
    let dup = "[[rule]]\nid = \"a\"\ncolour = \"red\"\ncondition = { type = \"band_removed\" }\n\
               [[rule]]\nid = \"a\"\ncolour = \"red\"\ncondition = { type = \"band_removed\" }\n";
    assert_eq!(err(dup), "test.toml:5:1: rule `a`: duplicate rule id");
    let unknown = "[[rule]]\nid = \"a\"\ncolour = \"purple\"\ncondition = { type = \"band_removed\" }\n";
    assert!(err(unknown).starts_with("test.toml:3:10: unknown variant `purple`"), "{}", err(unknown));
}

#[test]
fn receivers_are_checked() {
    let r = |extra: &str| {
        format!("[[receiver]]\nname = \"a\"\nurl = \"http://x\"\nsecret = {{ env = \"S\" }}\n{extra}")
    };
    assert_eq!(
        err(&r("fallback = \"b\"\n")),
        "test.toml:1:1: receiver `a`: fallback `b` is not another receiver"
    );
    let inline = "[[receiver]]\nname = \"a\"\nurl = \"http://x\"\nsecret = \"hunter2\"\n";
    assert!(err(inline).starts_with("test.toml:4:10: "), "secrets are never inline: {}", err(inline));
    // Orders start at tier 0 and climb one tier per missed deadline: every tier must be there.
    let rule = "[[rule]]\nid = \"r\"\ncolour = \"red\"\ncondition = { type = \"band_removed\" }\n";
    let chief = |tier: i64| {
        format!(
            "[[receiver]]\nname = \"chief\"\nurl = \"http://x\"\nsecret = {{ env = \"S\" }}\ntier = {tier}\n"
        )
    };
    let e = parse("test.toml", &format!("{rule}{}", chief(1))).unwrap_err().to_string();
    assert!(e.starts_with("test.toml:5:1: no receiver at tier 0"), "{e}");
    let e = err(&format!("{rule}{RECEIVER}{}", chief(2)));
    assert_eq!(
        e,
        "test.toml:9:1: receiver `chief`: no receiver at tier 1: an order escalates one tier at a time"
    );
    assert!(err(&format!("{rule}{RECEIVER}{}", chief(4))).contains("tier 4 is never reached"));
    assert!(parse("t.toml", &format!("{rule}{RECEIVER}{}", chief(1))).is_ok());
    assert!(parse("t.toml", &chief(1)).is_ok(), "no rules: no orders");
}

#[test]
fn embedded_broker_address_is_checked() {
    assert_eq!(
        err("[daemon]\nembedded_broker = \"everywhere\"\n"),
        "test.toml:2:19: `everywhere` is not an IP:port address"
    );
}

#[test]
fn influx_settings_are_checked() {
    let base = "[daemon]\nhttp = \"127.0.0.1:1\"\n\n[influx]\n";
    let e = err(&format!("{base}url = \"influx:8086\"\n"));
    assert!(e.starts_with("test.toml:4:1: [influx]: url `influx:8086` is not an http"), "{e}");
    let e = err(&format!("{base}url = \"http://db:8086\"\ntags = {{ device = \"x\" }}\n"));
    assert!(e.contains("[influx]: tag `device`"), "{e}");
    let e = err(&format!("{base}url = \"http://db:8086\"\nbatch_lines = 0\n"));
    assert!(e.contains("batch_lines"), "{e}");
    let e = err(&format!("{base}url = \"http://db:8086\"\ntoken = \"inline\"\n"));
    assert!(e.starts_with("test.toml:6:9: "), "tokens are never inline: {e}");
    let ok =
        parse("t.toml", &format!("{base}url = \"http://db:8086\"\ntoken = {{ env = \"T\" }}\n")).unwrap();
    let i = ok.influx.unwrap().into_inner();
    assert_eq!(
        (i.org.as_str(), i.bucket.as_str(), i.batch_lines, i.linger_ms),
        ("gridsentry", "gridsentry", 5000, 20)
    );
}

#[test]
fn modbus_devices_are_checked() {
    let dev = |extra: &str| {
        format!("[[modbus]]\nsite = \"slope\"\ndevice = \"ext-01\"\nkind = \"wire_extensometer\"\n{extra}\n")
    };
    assert!(parse("t.toml", &dev("tcp = \"10.0.0.5:502\"")).is_ok());
    let e = err(&dev(""));
    assert_eq!(e, "test.toml:1:1: modbus device `slope/ext-01`: give exactly one of tcp or rtu");
    let e = err(&dev("tcp = \"10.0.0.5\""));
    assert!(e.contains("is not host:port"), "{e}");
    let e = err(&dev("tcp = \"h:502\"\nkind2 = 1"));
    assert!(e.starts_with("test.toml:6:1: unknown field `kind2`"), "{e}");
    let bus = |unit: u8, baud: u32| {
        format!("[[modbus]]\nsite = \"s\"\ndevice = \"d{unit}{baud}\"\nkind = \"inclinometer\"\nrtu = \"/dev/ttyUSB0\"\nunit = {unit}\nbaud = {baud}\n")
    };
    assert!(parse("t.toml", &format!("{}{}", bus(1, 9600), bus(2, 9600))).is_ok());
    let e = err(&format!("{}{}", bus(1, 9600), bus(2, 19200)));
    assert!(e.starts_with("test.toml:8:1: ") && e.contains("other baud"), "{e}");
    let e = err(&format!("{}{}", bus(1, 9600), bus(1, 9601)));
    assert!(e.contains("other baud"), "{e}");
    let mut t = dev("tcp = \"h:502\"");
    t = t.replace("wire_extensometer", "seismograph");
    assert!(
        err(&t).contains("unknown kind `seismograph` (one of wire_extensometer, inclinometer"),
        "{}",
        err(&t)
    );
}

#[test]
fn serial_devices_are_checked() {
    let dev = |extra: &str| {
        format!(
            "[[serial]]\nsite = \"slope\"\ndevice = \"gnss-1\"\npath = \"/dev/ttyUSB1\"\n\
             origin = {{ lat_deg = 30.5, lon_deg = 104.0, alt_m = 800.0 }}\n{extra}\n"
        )
    };
    let ok = parse("t.toml", &dev("min_quality = \"float_rtk\"")).unwrap();
    assert_eq!(ok.serial[0].get_ref().average_s, 60);
    let e = err(&dev("format = \"csv\""));
    assert_eq!(e, "test.toml:1:1: serial device `slope/gnss-1`: unknown format `csv` (one of nmea_gga)");
    let e = err(&dev("min_quality = \"great\""));
    assert!(e.starts_with("test.toml:6:15: unknown variant `great`"), "{e}");
    let e = err(&dev("").replace("lat_deg = 30.5", "lat_deg = 95.0"));
    assert!(e.contains("origin must be"), "{e}");
    let twice = format!("{}{}", dev(""), dev("").replace("gnss-1", "gnss-2"));
    assert!(
        err(&twice).starts_with("test.toml:7:1: ") && err(&twice).contains("same device or port"),
        "{}",
        err(&twice)
    );
    let clash = format!(
        "[[modbus]]\nsite = \"s\"\ndevice = \"d\"\nkind = \"inclinometer\"\nrtu = \"/dev/ttyUSB1\"\n{}",
        dev("")
    );
    assert!(err(&clash).contains("same device or port as modbus device `s/d`"), "{}", err(&clash));
}

#[test]
fn landslide_rules_are_checked() {
    let rule =
        |cond: &str| format!("[[rule]]\nid = \"slope\"\ncolour = \"yellow\"\ncondition = {{ {cond} }}\n");
    let text = rule("type = \"tangent_angle\", creep_mm_per_day = 0.5") + RECEIVER;
    let ok = parse("t.toml", &text).unwrap();
    assert_eq!(ok.rules.len(), 1);
    let e = err(&rule("type = \"tangent_angle\", levels_deg = [40.0, 80.0, 50.0, 85.0]"));
    assert_eq!(e, "test.toml:1:1: rule `slope`: levels_deg must rise strictly within (0, 90)");
    let e =
        err(&rule("type = \"tangent_angle\", field = \"temp_c\", hold = [3, 5]").replace("temp_c", "bpm"));
    assert!(e.contains("no displacement field `bpm`"), "{e}");
    let e = err(&rule("type = \"tangent_angle\", hold = [4, 3]"));
    assert!(e.contains("hold = [k, n]"), "{e}");
    let e = err(&rule("type = \"rainfall\", window_s = 86400, above_mm = 50.0, clear_mm = 60.0"));
    assert!(e.contains("0 <= clear_mm <= above_mm"), "{e}");
}

#[test]
fn delivery_timing_is_checked_and_defaults_to_the_documented_values() {
    let base = "[daemon]\nhttp = \"127.0.0.1:1\"\n\n[delivery]\n";
    let e = err(&format!("{base}retry_initial_ms = 1000\nretry_max_ms = 10\n"));
    assert!(e.starts_with("test.toml:4:1: [delivery]: retry_initial_ms >= 1"), "{e}");
    let e = err(&format!("{base}breaker_failures = 0\n"));
    assert!(e.contains("breaker_failures >= 1"), "{e}");
    let e = err(&format!("{base}retry_after = 1\n"));
    assert!(e.starts_with("test.toml:5:1: unknown field `retry_after`"), "{e}");
    let d = parse("t.toml", &format!("{base}retry_max_ms = 2000\n")).unwrap().delivery.unwrap().into_inner();
    let b = d.backoff();
    assert_eq!((b.base.as_millis(), b.cap.as_millis(), b.breaker_failures), (500, 2000, 5));
    assert_eq!(b.breaker_cooldown.as_millis(), 30_000);
}

#[test]
fn a_backtest_config_needs_no_receivers_but_a_running_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    let rule = "[[rule]]\nid = \"r\"\ncolour = \"red\"\ncondition = { type = \"band_removed\" }\n";
    std::fs::write(&path, rule).unwrap();
    assert_eq!(gridsentry::config::load_rules(&path).unwrap().rules.len(), 1);
    let e = gridsentry::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("no receiver at tier 0"), "{e}");
}

#[test]
fn cluster_settings_are_checked() {
    let base = |extra: &str| format!("[cluster]\nnats = [\"nats://127.0.0.1:4222\"]\n{extra}");
    assert!(parse("test.toml", &base("")).is_ok());
    let e = err(&base("partitions = 0\n"));
    assert!(e.starts_with("test.toml:1:1: [cluster]: partitions = 0"), "{e}");
    let e = err("[cluster]\nnats = [\"127.0.0.1:4222\"]\n");
    assert!(e.contains("[cluster]: nats: `127.0.0.1:4222`"), "{e}");
    let e = err("[cluster]\nnats = []\n");
    assert!(e.contains("list at least one server"), "{e}");
    let e = err(&base("lease_ms = 100\n"));
    assert!(e.contains("lease_ms = 100: at least 500"), "{e}");
    let e = err(&base("worker = \"w1\"\n"));
    assert!(e.contains("unknown field `worker`"), "{e}");
}

#[test]
fn duty_rotas_and_personal_receivers_are_checked() {
    let site = "[[site]]\nid = \"s1\"\nlat = 29.5\nlon = 106.5\nstreet = \"解放碑街道\"\n";
    let e = err(&format!("{site}[[duty]]\nstreet = \"解放碑街道\"\npeople = [\"wang\"]\nhours = \"8-20\"\n"));
    assert!(e.contains("t.toml:6:1") && e.contains("HH:MM-HH:MM"), "{e}");
    let e = err(&format!("{site}[[duty]]\nstreet = \"朝天门街道\"\npeople = [\"wang\"]\n"));
    assert!(e.contains("no [[site]] is on street `朝天门街道`"), "{e}");
    let e = err(&format!("{site}[[duty]]\nstreet = \"解放碑街道\"\npeople = [\"wang li\"]\n"));
    assert!(e.contains("`wang li` is not a login name"), "{e}");
    let e = err(&format!("{RECEIVER}[[receiver]]\nname = \"w\"\nurl = \"http://y\"\nperson = \"a b\"\nsecret = {{ env = \"S\" }}\n"));
    assert!(e.contains("person `a b` is not a login name"), "{e}");
    // A personal receiver takes no part in tier routing: it is no tier 1 receiver.
    let ok = parse("t.toml", &format!("{RECEIVER}[[receiver]]\nname = \"w\"\nurl = \"http://y\"\nperson = \"wang\"\ntier = 5\nsecret = {{ env = \"S\" }}\n"));
    assert!(ok.is_ok(), "{:?}", ok.err().map(|e| e.to_string()));
}
