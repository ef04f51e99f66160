//! The API's own accept loop, because the defaults of `axum::serve` let anyone hold the daemon:
//! with no header-read timeout and no connection cap, 5,000 idle TCP connections stayed open
//! for ever and a slowloris request after 70 s; with a lowered file limit 360 of them made a red
//! order's webhook go out 48 s late (its sockets failed with "too many open files").
//!
//! Here: a request's headers must arrive within `header_timeout` (an idle keep-alive connection
//! is closed after that too); a connection that moves no byte for `idle_timeout` (a reader that
//! stops reading its answer) is dropped; at most `max_connections` at once and
//! a quarter of them (at least 64) from one address, so file descriptors stay in reserve for the order store,
//! the broker and the webhooks. Optional TLS (rustls), its certificate re-read on SIGHUP.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Connections one client address may hold at once: a quarter of the cap, at least 64 (a
/// reverse proxy in front is one address for every console behind it).
fn address_cap(max_connections: usize) -> usize {
    (max_connections / 4).max(64)
}

/// How the server protects itself.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request's headers (and a TLS handshake) must arrive within this.
    pub header_timeout: Duration,
    /// A connection with no byte moving either way for this long is dropped.
    pub idle_timeout: Duration,
    /// Connections at once.
    pub max_connections: usize,
}

/// The TLS configuration in use, replaced on reload.
pub type Tls = Arc<RwLock<Arc<rustls::ServerConfig>>>;

/// Serves `router` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Tls>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let (closing_tx, closing) = watch::channel(false);
    let (mut refused_at_cap, mut accept_failures) = (0u64, 0u64);
    let cap = address_cap(limits.max_connections);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and the like: wait a little instead of spinning, and say so now
                    // and then (at the 1st, 2nd, 4th, 8th... failure), not ten times a second.
                    accept_failures += 1;
                    if accept_failures.is_power_of_two() {
                        tracing::warn!(error = %e, failures = accept_failures, "api: cannot accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        {
            let mut held = per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = held.entry(peer.ip()).or_insert(0);
            if *n >= cap {
                refused_at_cap += 1;
                if refused_at_cap.is_power_of_two() {
                    tracing::warn!(peer = %peer.ip(), refused = refused_at_cap, "api: too many connections from one address");
                }
                continue;
            }
            *n += 1;
        }
        let _ = stream.set_nodelay(true);
        let (router, tls, per_address, mut closing) =
            (router.clone(), tls.clone(), per_address.clone(), closing.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let io = Activity::new(stream);
            let last = io.last.clone();
            let conn = async {
                match tls {
                    None => connection(io, peer, router, limits, &mut closing).await,
                    Some(tls) => {
                        let config = tls.read().unwrap_or_else(|p| p.into_inner()).clone();
                        let accept = tokio_rustls::TlsAcceptor::from(config).accept(io);
                        match tokio::time::timeout(limits.header_timeout, accept).await {
                            Ok(Ok(s)) => connection(s, peer, router, limits, &mut closing).await,
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "api: TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "api: TLS handshake timed out"),
                        }
                    }
                }
            };
            tokio::select! {
                _ = conn => {}
                _ = idle(last, limits.idle_timeout) => tracing::debug!(%peer, "api: connection idle, dropped"),
            }
            let mut held = per_address.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = held.get_mut(&peer.ip()) {
                *n -= 1;
                if *n == 0 {
                    held.remove(&peer.ip());
                }
            }
        });
    }
    // Stopping: no new connections; open ones finish their request (5 s at most).
    let _ = closing_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One HTTP/1.1 connection (plain or TLS).
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    closing: &mut watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        tower::ServiceExt::oneshot(router.clone(), req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let closed = tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "api: connection ended");
            }
            false
        }
        _ = async { let _ = closing.wait_for(|c| *c).await; } => true,
    };
    if closed {
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

/// Resolves once nothing moved on the connection for `limit`.
async fn idle(last: Arc<AtomicU64>, limit: Duration) {
    loop {
        let quiet = Duration::from_millis(crate::clock::now_ms().saturating_sub(last.load(Relaxed)));
        if quiet >= limit {
            return;
        }
        tokio::time::sleep(limit - quiet + Duration::from_millis(50)).await;
    }
}

/// A stream that notes when a byte last moved.
struct Activity<S> {
    inner: S,
    last: Arc<AtomicU64>,
}

impl<S> Activity<S> {
    fn new(inner: S) -> Self {
        Activity { inner, last: Arc::new(AtomicU64::new(crate::clock::now_ms())) }
    }

    fn touch(&self) {
        self.last.store(crate::clock::now_ms(), Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection cap for this process: half the file descriptors it may open (the rest stay
/// for the store, the broker, the webhooks and the spool), at most 4,096, at least 32.
pub fn default_max_connections() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let soft = if ok { lim.rlim_cur as usize } else { 1024 };
    (soft / 2).clamp(32, 4096)
}

/// Loads a certificate chain and key (PEM) into a TLS server configuration (HTTP/1.1).
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if certs.is_empty() {
        return Err("certificate: no PEM certificate found".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
