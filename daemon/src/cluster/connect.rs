//! The connection to NATS, as the role's user and over TLS when a CA is given.
//!
//! NATS is inside the trust boundary only while it is closed: the shipped nats-server configs
//! (deploy/cluster/nats-*.conf) require a user per role (a relay may publish readings, a worker
//! may read them and announce order changes, neither may delete, purge or change the stream), and
//! this is where a process presents its role's credentials and checks the server's certificate.

use super::{ClusterError, Config};
use async_nats::jetstream;

/// Connects to `cfg.nats` (the client reconnects and fails over by itself) as `cfg.nats_user`,
/// verifying the servers against `cfg.nats_ca` when given.
pub async fn connect(cfg: &Config) -> Result<jetstream::Context, ClusterError> {
    let addrs = cfg
        .nats
        .iter()
        .map(|s| s.parse::<async_nats::ServerAddr>().map_err(|e| ClusterError::Nats(format!("`{s}`: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let client = options(cfg)?
        .connect(addrs)
        .await
        .map_err(|e| ClusterError::Nats(format!("connecting to {}: {e}", cfg.nats.join(", "))))?;
    Ok(jetstream::new(client))
}

/// The client's options: name, credentials, TLS.
pub fn options(cfg: &Config) -> Result<async_nats::ConnectOptions, ClusterError> {
    let mut o = async_nats::ConnectOptions::new().name("gridsentry").retry_on_initial_connect();
    if let (Some(user), Some(password)) = (&cfg.nats_user, &cfg.nats_password) {
        let password =
            password.resolve().map_err(|e| ClusterError::Secret(format!("[cluster] nats_password: {e}")))?;
        o = o.user_and_password(user.clone(), password);
    }
    if let Some(ca) = &cfg.nats_ca {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&cfg.nats_cert, &cfg.nats_key) {
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(o)
}
