//! End to end from the firmware: the host board (the firmware core's meter, outbox and MQTT
//! session on a PC) plays an evening square dance into mosquitto; the daemon raises the plaza
//! order while the music plays and clears it when it stops.

use gridsentry_tests::daemon::{Daemon, NOISE_RULE, T0};
use gridsentry_tests::{binary, Hooks, Mosquitto};
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_board_playing_a_square_dance_raises_the_plaza_order() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let board = binary().with_file_name("gridsentry-board-host");
    assert!(board.exists(), "{} not built (cargo test --workspace builds it)", board.display());
    let port = broker.port;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(board)
            .args(["--broker", &format!("127.0.0.1:{port}"), "--site", "plaza-7", "--device", "nb-11"])
            .args(["--scenario", "square-dance", "--start-ms", &T0.to_string(), "--boot-id", "42"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the board failed:\n{log}");
    assert!(log.contains("110 readings sent and acknowledged"), "{log}");
    // The meter reads what the scenario plays: quiet plaza ~52 dB(A), music ~78 dB(A).
    assert!(log.contains("t=   5s LAeq  52."), "{log}");
    assert!(log.contains("t=  40s LAeq  78."), "{log}");
    assert!(log.contains("alarm ON"), "the box's own alarm sounds during the music:\n{log}");

    d.applied(110).await;
    let raised = d.next_change().await;
    assert_eq!((raised.event.as_str(), raised.subject.as_str()), ("raised", "plaza-7/nb-11"), "{raised:?}");
    // Music from second 20; the rule wants 10 s above 70 dB(A): raised at the reading of second 30.
    assert_eq!(raised.colour.as_str(), "yellow");
    let cleared = d.next_change().await;
    assert_eq!(cleared.state, "resolved", "{cleared:?}");
    let hooks_seen = hooks.wait_for(2, Duration::from_secs(20)).await;
    assert!(hooks_seen.iter().all(|h| h.signed));
    let body = &hooks_seen[0].body;
    assert_eq!(
        (body["subject"].as_str(), body["event"].as_str()),
        (Some("plaza-7/nb-11"), Some("raised")),
        "{body:#?}"
    );
    // Device time: the reading of second 30 raised it (10 s above the limit since second 20).
    // With the daemon's offset (Asia/Shanghai by default).
    assert_eq!(body["at"], "2025-11-25T20:00:30+08:00", "{body:#?}");
    assert_eq!(body["evidence"]["boot"], 42);
    d.stop().await;
}
