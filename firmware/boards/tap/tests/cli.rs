//! The tap board's command line: clear errors naming the argument, exit code 2; a TAP device
//! that cannot be opened is named, exit code 1.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridsentry-board-tap")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const GOOD: [&str; 12] = [
    "--tap",
    "gst-none",
    "--ip",
    "10.211.0.2",
    "--broker",
    "10.211.0.1:1883",
    "--ntp",
    "10.211.0.1:123",
    "--site",
    "p",
    "--device",
    "d",
];

#[test]
fn missing_or_wrong_arguments_are_named() {
    let (code, err) = run(&GOOD[2..]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--tap NAME is required"), "{err}");
    let mut bad = GOOD;
    bad[5] = "10.211.0.1";
    let (code, err) = run(&bad);
    assert_eq!(code, Some(2));
    assert!(err.contains("--broker: expected HOST:PORT"), "{err}");
    bad = GOOD;
    bad[3] = "10.211.0";
    assert!(run(&bad).1.contains("--ip"), "a bad address is named");
    bad = GOOD;
    bad[9] = "Bad Site!";
    assert!(run(&bad).1.contains("--site"));
}

#[test]
fn a_tap_device_that_cannot_be_opened_is_named() {
    let mut args = GOOD;
    args[1] = "gst-much-too-long"; // interface names have at most 15 bytes
    assert_eq!(run(&args), (Some(2), "gridsentry-board-tap: --tap: 1 to 15 bytes\n".to_string()));
    args[1] = "gst/x"; // no interface may have a slash in its name, root or not
    let (code, err) = run(&args);
    assert_eq!(code, Some(1));
    assert!(err.contains("TAP device gst/x"), "{err}");
}
