//! The host board's command line: clear errors, exit code 2, nothing sent.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridsentry-board-host")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn missing_or_wrong_arguments_are_named() {
    let (code, err) = run(&["--site", "plaza-3", "--device", "nb-01", "--scenario", "square-dance"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--broker HOST:PORT is required"), "{err}");
    let (code, err) =
        run(&["--broker", "127.0.0.1:1", "--site", "p", "--device", "d", "--scenario", "disco"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown scenario `disco`"), "{err}");
    let (_, err) =
        run(&["--broker", "127.0.0.1:1", "--site", "p", "--device", "d", "--wav", "/nonexistent.wav"]);
    assert!(err.contains("/nonexistent.wav"), "{err}");
    let (_, err) = run(&["--site", "Bad Site!"]);
    assert!(err.contains("--site"), "{err}");
}
