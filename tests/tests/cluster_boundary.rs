//! The engine boundary is closed (real three-node nats-server clusters with the shipped
//! `deploy/cluster/nats-users.conf`): nobody connects without credentials, a relay can only
//! publish readings, a worker can only read them and announce order changes, neither can
//! delete, purge or change the stream; TLS with a CA made for the test.

use async_nats::jetstream;
use futures_util::StreamExt;
use gridsentry_tests::nats::{Nats, Role};
use std::time::Duration;

/// Messages in the reading stream, as the admin sees them.
async fn messages(admin: &jetstream::Context) -> u64 {
    admin.get_stream("GS_READINGS").await.unwrap().info().await.unwrap().state.messages
}

const READING: &str = r#"{"v":1,"site":"plaza-1","device":"nb-01","boot":1,"seq":0,"ts":1700000000000,"interval_ms":1000,"noise":{"laeq_db":80.0,"lafmax_db":82.0}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_refuses_anonymous_clients_and_each_role_beyond_its_permissions() {
    let nats = Nats::start(4);
    let admin = nats.admin().await;
    assert!(nats.client(None).await.is_err(), "a client without credentials connected");

    // The relay publishes readings (through the mapping into a partition) and nothing else.
    let relay = jetstream::new(nats.client(Some(Role::Relay)).await.unwrap());
    let ack = relay.publish("gs.in.plaza-1.nb-01.noise", READING.into()).await.unwrap().await;
    assert!(ack.is_ok(), "the relay could not publish a reading: {ack:?}");
    assert_eq!(messages(&admin).await, 1);
    // (A relay may publish into a partition straight: nats-server 2.9 checks the mapped subject.
    // A worker refuses what sits in another partition than its site's: tests/tests/cluster.rs.)
    assert!(relay.delete_stream("GS_READINGS").await.is_err(), "the relay deleted the stream");
    assert!(
        relay.get_stream("GS_READINGS").await.unwrap().purge().await.is_err(),
        "the relay purged the stream"
    );

    // gs.changes: the relay's announcement never arrives, the worker's does.
    let admin_client = nats.client(Some(Role::Admin)).await.unwrap();
    let mut changes = admin_client.subscribe("gs.changes").await.unwrap();
    admin_client.flush().await.unwrap();
    let relay_client = nats.client(Some(Role::Relay)).await.unwrap();
    relay_client.publish("gs.changes", "forged by a relay".into()).await.unwrap();
    relay_client.flush().await.unwrap();
    let worker_client = nats.client(Some(Role::Worker)).await.unwrap();
    worker_client.publish("gs.changes", "from a worker".into()).await.unwrap();
    worker_client.flush().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), changes.next()).await.unwrap().unwrap();
    assert_eq!(&first.payload[..], b"from a worker", "the relay's gs.changes publish got through");

    // The worker reads the stream through its own consumer, and cannot change it.
    let worker = jetstream::new(worker_client);
    let stream = worker.get_stream("GS_READINGS").await.unwrap();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: "gs.p.>".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut read = consumer.messages().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), read.next()).await.unwrap().unwrap().unwrap();
    assert!(m.subject.starts_with("gs.p."), "{}", m.subject);
    let head =
        gridsentry::cluster::stream::head(&stream, m.subject.split('.').nth(2).unwrap().parse().unwrap())
            .await;
    assert_eq!(head.unwrap(), 1, "the worker reads a partition's head");
    assert!(worker.delete_stream("GS_READINGS").await.is_err(), "the worker deleted the stream");
    assert!(stream.purge().await.is_err(), "the worker purged the stream");
    let mut changed = stream.cached_info().config.clone();
    changed.max_age = Duration::from_secs(60);
    assert!(worker.update_stream(changed).await.is_err(), "the worker changed the stream");
    assert!(
        worker.publish("gs.in.plaza-1.nb-02.noise", READING.into()).await.unwrap().await.is_err(),
        "the worker published a reading"
    );
    assert_eq!(messages(&admin).await, 1, "the stream lost or gained messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_over_tls_with_a_test_ca() {
    let nats = Nats::start_tls(4);
    let admin = nats.admin().await;
    // Without the CA the server's certificate is not trusted.
    let untrusted = async_nats::ConnectOptions::new()
        .user_and_password("relay".into(), Role::Relay.password())
        .require_tls(true)
        .connection_timeout(Duration::from_secs(3))
        .connect(nats.urls()[0].as_str())
        .await;
    assert!(untrusted.is_err(), "connected over TLS without trusting the test CA");
    // The daemon's own connection code, from a relay's [cluster] lines.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, format!("[cluster]\n{}", nats.toml(Role::Relay))).unwrap();
    let cfg = gridsentry::config::load(&path).unwrap();
    let js = gridsentry::cluster::connect::connect(cfg.cluster.unwrap().get_ref()).await.unwrap();
    js.publish("gs.in.plaza-1.nb-01.noise", READING.into()).await.unwrap().await.unwrap();
    assert_eq!(messages(&admin).await, 1);
}

/// Runs `f` on a thread of its own (the synchronous PostgreSQL client runs its own runtime).
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

#[test]
fn workers_run_as_a_postgres_role_that_reads_and_writes_and_cannot_change_the_schema() {
    use gridsentry::orders::{SlaTable, Store};
    let pg = gridsentry_tests::postgres::Postgres::start();
    let owner = pg.database();
    let db = owner.split("dbname=").nth(1).unwrap().split(' ').next().unwrap().to_string();
    pg.psql(&db, "CREATE ROLE gs_worker LOGIN");
    let worker = owner.replace("user=gridsentry", "user=gs_worker");
    // Before the owner made the schema, a worker cannot, and says what to run.
    let early =
        off_runtime(|| Store::connect(&worker, SlaTable::default(), Vec::new()).err().map(|e| e.to_string()));
    assert!(early.as_deref().is_some_and(|e| e.contains("gridsentry migrate")), "{early:?}");
    // `gridsentry migrate` as the owner, granting the workers' role.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("worker.toml");
    std::fs::write(
        &cfg,
        "[cluster]\npostgres = { env = \"GS_OWNER_PG\" }\nnats = [\"nats://127.0.0.1:4222\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(gridsentry_tests::binary())
        .args(["migrate", "--config"])
        .arg(&cfg)
        .args(["--grant", "gs_worker"])
        .env("GS_OWNER_PG", &owner)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("orders") && stdout.contains("gs_worker"), "{stdout}");
    // The worker's role works the tables...
    off_runtime(|| {
        let mut store = Store::connect(&worker, SlaTable::default(), Vec::new()).unwrap();
        assert_eq!(store.worker_seen("w1", 1000, 3000).unwrap(), 1);
        // ...appends to the audit chain...
        let e = gridsentry::orders::AuditEntry { who: "w1", action: "test", subject: "x", detail: "" };
        assert_eq!(store.audit(e, 1000).unwrap(), 1);
    });
    // ...and can neither change nor destroy them, nor rewrite the audit log.
    for ddl in [
        "DROP TABLE outbox",
        "TRUNCATE order_events",
        "UPDATE audit SET detail = 'changed'",
        "DELETE FROM audit",
        "TRUNCATE audit",
        "ALTER TABLE orders ADD COLUMN x TEXT",
        "CREATE TABLE evil (x TEXT)",
    ] {
        let refused = off_runtime(|| {
            let mut c = postgres::Client::connect(&worker, postgres::NoTls).unwrap();
            c.batch_execute(ddl).err().map(|e| e.to_string())
        });
        assert!(refused.is_some(), "the workers' role could: {ddl}");
    }
}

#[test]
fn workers_reach_postgres_over_tls_with_verify_full_and_refuse_a_server_another_ca_signed() {
    use gridsentry::orders::{PgConnect, SlaTable, Store};
    let pg = gridsentry_tests::postgres::Postgres::start_tls();
    let url = pg.database();
    let verified = format!("{url} sslmode=verify-full sslrootcert={}", pg.ca().display());
    let ssl: bool = off_runtime(|| {
        Store::connect(&verified, SlaTable::default(), Vec::new()).unwrap();
        let mut c = PgConnect::parse(&verified).unwrap().connect().unwrap();
        c.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).unwrap().get(0)
    });
    assert!(ssl, "the connection is not encrypted");
    // A CA that did not sign the server's certificate: no connection.
    let other = tempfile::tempdir().unwrap();
    gridsentry_tests::make_ca(other.path());
    let wrong = format!("{url} sslmode=verify-full sslrootcert={}", other.path().join("ca.pem").display());
    let refused =
        off_runtime(|| Store::connect(&wrong, SlaTable::default(), Vec::new()).err().map(|e| e.to_string()));
    assert!(refused.is_some(), "connected to a server whose certificate the given CA did not sign");
    // verify-ca (no name check) is refused, not quietly weakened.
    let ca_only = verified.replace("verify-full", "verify-ca");
    assert!(PgConnect::parse(&ca_only).is_err());
}
