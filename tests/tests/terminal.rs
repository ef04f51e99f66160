//! The operator's terminal against a running daemon: `gridsentry login` for a personal token,
//! `orders list|show` as tables or JSON, an action recorded under the person's name, and
//! `healthcheck` as a container runs it.

use gridsentry_tests::daemon::{Daemon, Device, NOISE_RULE};
use gridsentry_tests::{binary, noise, Hooks, Mosquitto, TOKEN};
use std::process::Output;

fn gridsentry(args: &[&str]) -> Output {
    std::process::Command::new(binary()).args(args).env("GRIDSENTRY_API_TOKEN", TOKEN).output().unwrap()
}

fn as_person(args: &[&str], env: (&str, &str)) -> Output {
    std::process::Command::new(binary()).args(args).env(env.0, env.1).output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_read_as_tables_and_json_and_healthcheck_follows_readyz() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, NOISE_RULE).await;
    let dev = Device::connect(broker.port, "plaza-3", "nb-01", false).await;
    for seq in 0..15 {
        dev.send(seq, noise(75.0)).await;
    }
    let raised = d.next_change().await;
    let id = raised.order_id.to_string();
    let api = d.api.clone();

    let table = stdout(&gridsentry(&["orders", "--api", &api, "list", "--open"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID  COLOUR  STATE   RULE"), "{table}");
    assert!(
        lines[1].starts_with(&format!("{id} "))
            && lines[1].contains("yellow")
            && lines[1].contains("plaza-3/nb-01")
            && lines[1].contains("dispatch in "),
        "{table}"
    );
    assert_eq!(lines.last(), Some(&"(1 orders)"));

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&gridsentry(&["orders", "--api", &api, "-o", "json", "list"]))).unwrap();
    assert_eq!(json["orders"][0]["id"].to_string(), id);

    // Wang logs in from the terminal and acts under his own name.
    let mut store =
        gridsentry::orders::Store::open(&d.dir.path().join("data/orders.db"), Default::default(), Vec::new())
            .unwrap();
    let hash = gridsentry::access::hash_password("wangs-own-password").unwrap();
    store.person_add("wang", gridsentry::access::Role::Operator, &[], &hash, "test", 1).unwrap();
    let refused = as_person(&["login", "wang", "--api", &api], ("GRIDSENTRY_PASSWORD", "not-his-password"));
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong name or password"));
    let token =
        stdout(&as_person(&["login", "wang", "--api", &api], ("GRIDSENTRY_PASSWORD", "wangs-own-password")));
    let token = token.trim();
    assert_eq!(token.len(), 43, "{token}");
    let acted = stdout(&as_person(&["orders", "--api", &api, "ack", &id], ("GRIDSENTRY_API_TOKEN", token)));
    assert!(acted.starts_with(&format!("order {id} acknowledged: acknowledged")), "{acted}");
    let show = stdout(&gridsentry(&["orders", "--api", &api, "show", &id]));
    assert!(show.contains("#  AT") && show.contains("wang"), "{show}");
    assert!(show.contains("+08:00") && !show.contains("Z "), "times in the daemon's zone: {show}");

    assert!(gridsentry(&["healthcheck", &api]).status.success());
    let gone = format!("http://127.0.0.1:{}", gridsentry_tests::free_port());
    let down = gridsentry(&["healthcheck", &gone]);
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("not ready"));
    d.stop().await;
}
