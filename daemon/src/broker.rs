//! The embedded MQTT broker (rumqttd), for gateways without a broker and for `gridsentry demo`.
//!
//! rumqttd cannot bind port 0 and report it, its `start()` blocks, and it cannot be stopped
//! (rumqtt issue 771): it runs on its own thread for the life of the process, on a port chosen
//! by the caller (see [`free_port`]).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

/// A free loopback TCP port (bound and released; fine for tests and the demo).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts the broker on `listen` on its own thread and waits until it accepts connections on
/// loopback (where the daemon's own client connects).
#[cfg(feature = "embedded-broker")]
pub fn start(listen: SocketAddr) -> std::io::Result<()> {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    // rumqttd only logs (at debug) when its port is taken, and the daemon would then talk to
    // whatever owns the port: find out first.
    if let Err(e) = TcpListener::bind(listen) {
        return Err(std::io::Error::new(
            e.kind(),
            format!(
                "embedded broker: cannot listen on {listen} ({e}): another broker or program has it; stop it, choose another [daemon] embedded_broker, or configure [mqtt] to use that broker"
            ),
        ));
    }
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 64 * 1024,
        max_inflight_count: 1000,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server =
        ServerSettings { name: "v4".into(), listen, tls: None, next_connection_delay_ms: 1, connections };
    let router = RouterConfig {
        max_connections: 10_010,
        max_outgoing_packet_count: 1000,
        max_segment_size: 100 * 1024 * 1024,
        max_segment_count: 10,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    let config = Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    let mut broker = Broker::new(config);
    std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
        if let Err(e) = broker.start() {
            tracing::error!(error = %e, "embedded broker stopped");
        }
    })?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", listen.port())).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(std::io::Error::other("embedded broker did not start listening"))
}

/// Without the `embedded-broker` feature a broker must be configured.
#[cfg(not(feature = "embedded-broker"))]
pub fn start(_listen: SocketAddr) -> std::io::Result<()> {
    Err(std::io::Error::other("built without the embedded broker: configure [mqtt]"))
}
