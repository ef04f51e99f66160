//! The chips' network side, shared by the RP2040 (cyw43) and ESP32-C3 (esp-radio) boards: both
//! hand embassy-net a Wi-Fi driver, and from there on everything is here, once.
//!
//! - [`uplink`]: the MQTT task over Wi-Fi, with fleet updates ([`ota`]: the session itself,
//!   shared with the radio-less Pico's serial line). The core's [`Uplink`] decides what to send; this moves bytes
//!   between it and a `TcpSocket`, reconnecting with a doubling wait (0.5 s to 30 s) whenever
//!   the broker, the network or DNS fails. The device never reboots for it: the outbox keeps the
//!   readings and they go out, oldest first and flagged historical, once the broker is back.
//! - [`time_sync`]: asks the SNTP server at start and every hour; from the first answer on,
//!   [`now`] is UTC (readings before that say "unsynced" + time since boot, as the wire contract
//!   allows).
//! - [`settings`]: Wi-Fi, broker, time server, site and device: the device's own from its
//!   settings sector over the build's defaults, all checked with the same rules (a wrong build
//!   value fails the build naming the variable; a wrong sector is not taken).
//!
//! The outbox lives in a blocking mutex shared with the audio loop ([`Locked`]); each lock is
//! short (a poll encodes at most `W` readings), and socket I/O happens outside it.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ota;

use core::cell::Cell;
use core::convert::Infallible;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::TcpSocket;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, Stack};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::signal::Signal;
use embassy_time::{with_timeout, Duration, Instant, Timer};
use gridsentry_firmware_core::identity::Identity;
use gridsentry_firmware_core::noise::{Chain, NoiseRecord};
use gridsentry_firmware_core::noise_box::NoiseBox;
use gridsentry_firmware_core::outbox::Outbox;
use gridsentry_firmware_core::sntp;
use gridsentry_firmware_core::uplink::{Stored, Uplink};
use gridsentry_sensors::Timestamp;
use ota::session;
pub use ota::{Chip, Flags, Ota, SessionBuffers, SessionEnd};

/// The device's settings: the build's (see `build.rs`) and, over them, the device's own from its
/// settings sector ([`settings::load`]).
pub mod settings {
    use embassy_sync::once_lock::OnceLock;
    pub use gridsentry_firmware_core::settings::Settings;

    include!(concat!(env!("OUT_DIR"), "/settings.rs"));

    static CURRENT: OnceLock<Settings> = OnceLock::new();

    /// Reads the settings sector's contents (once, first thing at start; later calls and
    /// [`get`] return what the first one found). A blank, damaged or refused sector leaves the
    /// build's defaults; the second value says whether the sector's settings were taken.
    pub fn load(sector: &[u8]) -> (&'static Settings, bool) {
        let mut taken = false;
        let s = CURRENT.get_or_init(|| {
            let defaults = Settings::default().with_text(DEFAULTS).unwrap_or_default();
            match gridsentry_firmware_core::settings::sector_text(sector).map(|t| defaults.with_text(t)) {
                Some(Ok(s)) => {
                    taken = true;
                    s
                }
                _ => defaults,
            }
        });
        (s, taken)
    }

    /// The settings in force (the build's alone if [`load`] was not called).
    pub fn get() -> &'static Settings {
        load(&[]).0
    }
}

/// The servers a device talks to: the build settings on the chips; given at run time where a
/// test points a device at its own broker and time server.
#[derive(Debug, Clone, Copy)]
pub struct Servers<'a> {
    /// MQTT broker: IPv4 address or name.
    pub broker_host: &'a str,
    /// MQTT broker port.
    pub broker_port: u16,
    /// SNTP server: IPv4 address or name.
    pub ntp_host: &'a str,
    /// SNTP port (123).
    pub ntp_port: u16,
}

impl Servers<'static> {
    /// `GRIDSENTRY_BROKER` and `GRIDSENTRY_NTP` of the settings.
    pub fn from_settings() -> Servers<'static> {
        let s = settings::get();
        Servers {
            broker_host: s.broker_host.as_str(),
            broker_port: s.broker_port,
            ntp_host: s.ntp_host.as_str(),
            ntp_port: sntp::PORT,
        }
    }
}

/// UTC minus the monotonic clock, in ms, once a time server answered.
static UTC_OFFSET_MS: Mutex<CriticalSectionRawMutex, Cell<Option<u64>>> = Mutex::new(Cell::new(None));

/// Now, as the device knows it: UTC once synchronised, else time since boot.
pub fn now() -> Timestamp {
    let mono = Instant::now().as_millis();
    match UTC_OFFSET_MS.lock(Cell::get) {
        Some(offset) => Timestamp::Utc(mono + offset),
        None => Timestamp::Unsynced(mono),
    }
}

/// This boot's identity: the site and device of the settings, and a random boot id.
pub fn identity(boot_id: u32) -> Identity {
    let s = settings::get();
    Identity::new(s.site.clone(), s.device.clone(), boot_id)
}

/// A noise box as the settings describe it (microphone, calibration, alarm, report interval).
pub fn noise_box<C: Chain, const N: usize>() -> NoiseBox<C, N> {
    let s = settings::get();
    NoiseBox::new(&s.mic, s.cal_db, s.alarm, s.report_s)
}

/// The device's uplink for readings of type `T`, logged in as the settings say.
pub fn uplink_for<T: Stored, const W: usize>(identity: &Identity, firmware: &'static str) -> Uplink<W> {
    let s = settings::get();
    let uplink = Uplink::new::<T>(identity, firmware);
    // Cannot fail: the settings' checks keep the lengths within the same limit.
    uplink
        .with_login(s.mqtt_user.as_str(), s.mqtt_password.as_str())
        .unwrap_or_else(|| unreachable!("the settings check the credentials' length"))
}

/// Buffers of the MQTT task (static: they are part of the measured RAM). The socket's receive
/// side holds an update chunk (1 KB and its header) at once.
pub struct Buffers {
    socket_rx: [u8; 1536],
    socket_tx: [u8; 1536],
    session: SessionBuffers,
}

impl Buffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Buffers { socket_rx: [0; 1536], socket_tx: [0; 1536], session: SessionBuffers::new() }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

async fn resolve(stack: Stack<'_>, host: &str) -> Option<IpAddress> {
    stack.dns_query(host, DnsQueryType::A).await.ok()?.first().copied()
}

/// Why a connection ended (kept for a debugger; the task just reconnects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// DNS gave no address for the broker.
    Dns,
    /// TCP connect failed.
    Connect,
    /// The session ended (socket failure, broker gone, or the session dropped it).
    Session(SessionEnd),
}

/// Raised by the board when it stored a reading: the uplink wakes and sends it at once (a
/// reading still unsent when its report interval ends goes out as backfill).
pub static READING: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// The MQTT task: runs forever. Whether a reading goes out as backfill is the outbox's
/// business (it waited past its report interval), not the connection's.
pub async fn uplink<T: Stored, const N: usize, const W: usize, C: Chip>(
    stack: Stack<'_>,
    servers: Servers<'_>,
    link: &mut Uplink<W>,
    shared: &Locked<impl Holds<T, N>>,
    bufs: &mut Buffers,
    ota: &mut Ota<C>,
) -> ! {
    let mut wait = Duration::from_millis(500);
    loop {
        stack.wait_config_up().await;
        // One connection, until it fails: why, and whether the session had come up.
        let connection: Result<Infallible, (LinkError, bool)> = async {
            let addr = resolve(stack, servers.broker_host).await.ok_or((LinkError::Dns, false))?;
            let mut socket = TcpSocket::new(stack, &mut bufs.socket_rx, &mut bufs.socket_tx);
            // A silent broker is noticed by the session's keep-alive; this bounds a stuck send.
            socket.set_timeout(Some(Duration::from_secs(60)));
            socket.connect((addr, servers.broker_port)).await.map_err(|_| (LinkError::Connect, false))?;
            let (end, up) = session(&mut socket, link, shared, ota, &mut bufs.session).await;
            Err((LinkError::Session(end), up))
        }
        .await;
        let Err((_why, was_up)) = connection;
        shared.with_outbox(|o| link.disconnected(o));
        if was_up {
            wait = Duration::from_millis(500);
        }
        Timer::after(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// The time task: synchronises at start (retrying every 10 s) and then every hour.
pub async fn time_sync(stack: Stack<'_>, servers: Servers<'_>) -> ! {
    let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 1], [PacketMetadata::EMPTY; 1]);
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    loop {
        stack.wait_config_up().await;
        let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
        let synced = match socket.bind(0) {
            Ok(()) => ask(stack, servers, &mut socket).await,
            Err(_) => None,
        };
        drop(socket);
        if let Some(utc_ms) = synced {
            let offset = utc_ms.saturating_sub(Instant::now().as_millis());
            UTC_OFFSET_MS.lock(|c| c.set(Some(offset)));
        }
        Timer::after(if synced.is_some() { Duration::from_secs(3600) } else { Duration::from_secs(10) })
            .await;
    }
}

/// One SNTP exchange: UTC now in ms, or None.
async fn ask(stack: Stack<'_>, servers: Servers<'_>, socket: &mut UdpSocket<'_>) -> Option<u64> {
    let server = resolve(stack, servers.ntp_host).await?;
    let sent = Instant::now().as_millis();
    let mut request = [0u8; sntp::PACKET];
    sntp::request(sent, &mut request);
    socket.send_to(&request, (server, servers.ntp_port)).await.ok()?;
    let mut reply = [0u8; 64];
    // Datagrams from elsewhere, or stale answers, are skipped until the deadline.
    with_timeout(Duration::from_secs(5), async {
        loop {
            let Ok((n, meta)) = socket.recv_from(&mut reply).await else { continue };
            if meta.endpoint.addr != server {
                continue;
            }
            let received = Instant::now().as_millis();
            if let Ok(utc) = sntp::utc_at_receive(&reply[..n], sent, sent, received) {
                return utc.saturating_add(Instant::now().as_millis() - received);
            }
        }
    })
    .await
    .ok()
}

/// A value both the audio loop and the network task use, behind a critical-section mutex.
pub struct Locked<T>(Mutex<CriticalSectionRawMutex, core::cell::RefCell<T>>);

impl<T> Locked<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Locked(Mutex::new(core::cell::RefCell::new(value)))
    }

    /// Runs `f` on the value with the other side locked out (keep it short).
    pub fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.0.lock(|cell| f(&mut cell.borrow_mut()))
    }
}

/// What holds a device's outbox (the noise box, a gateway's state, or the outbox itself).
pub trait Holds<T, const N: usize> {
    /// The outbox.
    fn outbox(&mut self) -> &mut Outbox<T, N>;
}

impl<H> Locked<H> {
    /// Runs `f` on the outbox that `H` holds, with the other side locked out.
    pub fn with_outbox<T, const N: usize, X>(&self, f: impl FnOnce(&mut Outbox<T, N>) -> X) -> X
    where
        H: Holds<T, N>,
    {
        self.lock(|h| f(h.outbox()))
    }
}

impl<C: Chain, const N: usize> Holds<NoiseRecord, N> for NoiseBox<C, N> {
    fn outbox(&mut self) -> &mut Outbox<NoiseRecord, N> {
        NoiseBox::outbox(self)
    }
}

impl<T: Clone, const N: usize> Holds<T, N> for Outbox<T, N> {
    fn outbox(&mut self) -> &mut Outbox<T, N> {
        self
    }
}
