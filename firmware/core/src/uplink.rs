//! A device's link to the broker, still without I/O: what the [`Session`] needs from a board
//! (client id, topics, will and birth payloads, how stored readings become wire payloads) is
//! built here once, so a board's network task only moves bytes between a socket and this.
//! The host board (std `TcpStream`), the ESP32-C3 and the RP2040 (embassy-net `TcpSocket`) and
//! the wristband gateway all run the same code.
//!
//! The outbox's drop count travels in the birth message (the retained `status`): it is taken
//! from the outbox when a connection starts and forgotten only once the broker acknowledged the
//! birth that carried it, so a connection lost before that reports it again.

use crate::identity::Identity;
use crate::mqtt::packet::{self, Connect, Will};
use crate::mqtt::{self, Session, SessionError};
use crate::outbox::{Entry, Outbox};
use gridsentry_sensors::codec::{self, Format};
use gridsentry_sensors::topic::TOPIC_MAX;
use gridsentry_sensors::{Body, DeviceState, Header, Reading, StatusReport, Stream, Timestamp};

/// A reading as an outbox keeps it, and the wire reading it becomes.
pub trait Stored: Clone {
    /// The stream it is published on.
    const STREAM: Stream;
    /// The reading under `header` (identity, sequence number, historical flag).
    fn reading(&self, header: Header) -> Reading;
}

/// Longest broker user name and password.
pub const CREDENTIAL_MAX: usize = 64;
/// Status payloads are small (state, firmware version, dropped count): this bounds them.
const STATUS_MAX: usize = 256;
/// The DISCONNECT to send when leaving on purpose (the broker then does not publish the will).
pub const GOODBYE: &[u8] = &packet::DISCONNECT;
/// Seconds between PINGREQs when idle; the broker drops us after 1.5 times that.
pub const KEEPALIVE_S: u16 = 30;

/// The link; `W` QoS 1 publishes in flight at most.
pub struct Uplink<const W: usize> {
    identity: Identity,
    firmware: &'static str,
    /// The flash slot it runs from (in the birth message).
    slot: &'static str,
    format: Format,
    names: Names,
    data_topic: heapless::String<TOPIC_MAX>,
    /// Fleet updates: this device's OTA topics (none: it takes no updates).
    ota: Option<OtaTopics>,
    /// Readings the outbox dropped that no acknowledged birth has reported yet.
    dropped: u32,
    /// What the current connection's birth reports.
    reported: u32,
    session: Session<W>,
}

/// What CONNECT and the birth message carry.
struct Names {
    client_id: heapless::String<TOPIC_MAX>,
    status_topic: heapless::String<TOPIC_MAX>,
    will: heapless::Vec<u8, STATUS_MAX>,
    birth: heapless::Vec<u8, STATUS_MAX>,
    /// Broker credentials (none: anonymous).
    user: heapless::String<CREDENTIAL_MAX>,
    password: heapless::String<CREDENTIAL_MAX>,
}

/// Longest OTA topic (`gs/v1/{site}/{device}/ota/chunk`).
pub const OTA_TOPIC_MAX: usize = 96;

/// A device's three fleet-update topics (`gridsentry_sensors::ota`).
#[derive(Debug, Clone)]
pub struct OtaTopics {
    /// Offers arrive here.
    pub offer: heapless::String<OTA_TOPIC_MAX>,
    /// Chunks arrive here.
    pub chunk: heapless::String<OTA_TOPIC_MAX>,
    /// Reports go here (retained).
    pub state: heapless::String<OTA_TOPIC_MAX>,
}

/// A fleet-update message from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtaMessage<'a> {
    /// An offer (checked by the updater).
    Offer(&'a gridsentry_sensors::ota::Offer),
    /// A chunk.
    Chunk(gridsentry_sensors::ota::Chunk<'a>),
}

impl Names {
    fn ids<'a>(&'a self, subscribe: &'a [&'a str]) -> mqtt::Identity<'a> {
        mqtt::Identity {
            connect: Connect {
                client_id: &self.client_id,
                keepalive_s: KEEPALIVE_S,
                clean_session: false,
                will: Some(Will { topic: &self.status_topic, payload: &self.will }),
                username: (!self.user.is_empty()).then_some(self.user.as_str()),
                password: (!self.user.is_empty()).then_some(self.password.as_bytes()),
            },
            status_topic: &self.status_topic,
            birth: &self.birth,
            subscribe,
        }
    }
}

/// The topic filters a connection subscribes to.
fn subscriptions(ota: &Option<OtaTopics>) -> ([&str; 2], usize) {
    match ota {
        Some(t) => ([t.offer.as_str(), t.chunk.as_str()], 2),
        None => (["", ""], 0),
    }
}

fn status(
    identity: &Identity,
    firmware: &str,
    slot: &str,
    state: DeviceState,
    dropped: u32,
    time: Timestamp,
) -> heapless::Vec<u8, STATUS_MAX> {
    let body = Body::Status(StatusReport {
        state,
        firmware: heapless::String::try_from(firmware).unwrap_or_default(),
        dropped,
        slot: heapless::String::try_from(slot).unwrap_or_default(),
    });
    // Status messages are not readings of the outbox: sequence number 0 of no stream.
    let reading = Reading { header: identity.header(0, time, false), body };
    let mut buf = [0u8; STATUS_MAX];
    let n = codec::encode(Format::Json, &reading, &mut buf).unwrap_or(0);
    heapless::Vec::from_slice(&buf[..n]).unwrap_or_default()
}

impl<const W: usize> Uplink<W> {
    /// The link of `identity` publishing readings of type `T` (their stream picks the topic),
    /// reporting `firmware` as its version in the status messages.
    pub fn new<T: Stored>(identity: &Identity, firmware: &'static str) -> Self {
        let topic = |s| identity.topic(s).to_heapless();
        let status_topic = topic(Stream::Status);
        let mut client_id = heapless::String::new();
        // Unique per device: its status topic without the slashes, e.g. "gs-v1-plaza-3-nb-01".
        for c in status_topic.trim_end_matches("/status").chars() {
            let _ = client_id.push(if c == '/' { '-' } else { c });
        }
        Uplink {
            names: Names {
                will: status(identity, firmware, "", DeviceState::Offline, 0, Timestamp::Unsynced(0)),
                birth: heapless::Vec::new(),
                client_id,
                status_topic,
                user: heapless::String::new(),
                password: heapless::String::new(),
            },
            identity: identity.clone(),
            firmware,
            slot: "",
            format: Format::Json,
            data_topic: topic(T::STREAM),
            ota: None,
            dropped: 0,
            reported: 0,
            session: Session::new(KEEPALIVE_S),
        }
    }

    /// Logs in to the broker as `user` with `password` (the deployed broker allows no anonymous
    /// clients). Longer than [`CREDENTIAL_MAX`] bytes: `None`.
    pub fn with_login(mut self, user: &str, password: &str) -> Option<Self> {
        self.names.user = heapless::String::try_from(user).ok()?;
        self.names.password = heapless::String::try_from(password).ok()?;
        Some(self)
    }

    /// Names the flash slot the firmware runs from in every birth message (and the will).
    pub fn with_slot(mut self, slot: &'static str) -> Self {
        self.slot = slot;
        self.names.will =
            status(&self.identity, self.firmware, slot, DeviceState::Offline, 0, Timestamp::Unsynced(0));
        self
    }

    /// Takes fleet updates: subscribes to this device's offer and chunk topics on every
    /// connection ([`Uplink::received_with`], [`Uplink::report`]).
    pub fn with_ota(mut self) -> Self {
        let base = self.names.status_topic.trim_end_matches("status");
        let t = |suffix: &str| {
            let mut s = heapless::String::new();
            let _ = s.push_str(base);
            let _ = s.push_str(suffix);
            s
        };
        self.ota = Some(OtaTopics { offer: t("ota"), chunk: t("ota/chunk"), state: t("ota/state") });
        self
    }

    /// Publishes readings in `format` (JSON unless told otherwise).
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Whether the broker accepted the session.
    pub fn is_up(&self) -> bool {
        self.session.is_up()
    }

    /// Whether the broker acknowledged this connection's birth message.
    pub fn birth_acked(&self) -> bool {
        self.session.birth_acked()
    }

    /// Readings dropped that the broker has not been told about yet.
    pub fn unreported_drops(&self) -> u32 {
        self.dropped
    }

    /// The transport connected at `now_ms` (device clock `time`): writes the CONNECT into `tx`
    /// and returns its length.
    pub fn connected<T: Clone, const N: usize>(
        &mut self,
        outbox: &mut Outbox<T, N>,
        now_ms: u64,
        time: Timestamp,
        tx: &mut [u8],
    ) -> Result<usize, SessionError> {
        self.dropped = self.dropped.saturating_add(outbox.take_dropped());
        self.reported = self.dropped;
        self.names.birth =
            status(&self.identity, self.firmware, self.slot, DeviceState::Online, self.reported, time);
        let (subs, n) = subscriptions(&self.ota);
        self.session.connected(&self.names.ids(&subs[..n]), now_ms, tx)
    }

    /// Bytes from the broker; acknowledged readings leave the outbox.
    pub fn received<T: Clone, const N: usize>(
        &mut self,
        bytes: &[u8],
        outbox: &mut Outbox<T, N>,
    ) -> Result<(), SessionError> {
        self.received_with(bytes, outbox, &mut |_| {})
    }

    /// [`Uplink::received`], handing fleet-update messages to `on_ota` (malformed ones are
    /// dropped here: the daemon offers again, the device asks again).
    pub fn received_with<T: Clone, const N: usize>(
        &mut self,
        bytes: &[u8],
        outbox: &mut Outbox<T, N>,
        on_ota: &mut dyn FnMut(OtaMessage<'_>),
    ) -> Result<(), SessionError> {
        let ota = &self.ota;
        let mut handle = |topic: &str, payload: &[u8]| {
            let Some(t) = ota else { return };
            if topic == t.offer.as_str() {
                let mut unescape = [0u8; 64];
                if let Ok((o, _)) = serde_json_core::from_slice_escaped(payload, &mut unescape) {
                    on_ota(OtaMessage::Offer(&o));
                }
            } else if topic == t.chunk.as_str() {
                if let Ok(c) = gridsentry_sensors::ota::Chunk::parse(payload) {
                    on_ota(OtaMessage::Chunk(c));
                }
            }
        };
        self.session.received_with(bytes, outbox, &mut handle)?;
        if self.session.birth_acked() && self.reported > 0 {
            self.dropped -= self.reported;
            self.reported = 0;
        }
        Ok(())
    }

    /// Publishes an update report (retained) on `ota/state`, written into `tx`; its length.
    /// `Err(NoRoom)` while down or busy: the caller keeps it and tries again.
    pub fn report(
        &mut self,
        r: &gridsentry_sensors::ota::Report,
        now_ms: u64,
        tx: &mut [u8],
    ) -> Result<usize, SessionError> {
        let Some(t) = &self.ota else { return Ok(0) };
        let mut payload = [0u8; 384];
        let n = serde_json_core::to_slice(r, &mut payload).map_err(|_| SessionError::NoRoom)?;
        self.session.publish(&t.state, &payload[..n], true, now_ms, tx)
    }

    /// Everything sent was acknowledged (a device restarts into a new image only then).
    pub fn all_acked(&self) -> bool {
        self.session.all_acked()
    }

    /// What is due at `now_ms` (birth, readings oldest first, PINGREQ), written into `tx`;
    /// `scratch` holds one encoded payload (`codec::JSON_MAX` bytes is always enough).
    pub fn poll<T: Stored, const N: usize>(
        &mut self,
        outbox: &mut Outbox<T, N>,
        now_ms: u64,
        scratch: &mut [u8],
        tx: &mut [u8],
    ) -> Result<usize, SessionError> {
        let (identity, topic, format) = (&self.identity, self.data_topic.as_str(), self.format);
        let mut encode = |e: &Entry<'_, T>, buf: &mut [u8]| {
            // The stored reading brings its own measurement time.
            let header = identity.header(e.seq, Timestamp::Unsynced(0), e.historical);
            codec::encode(format, &e.item.reading(header), buf).ok().map(|n| (topic, n))
        };
        let (subs, n) = subscriptions(&self.ota);
        self.session.poll(&self.names.ids(&subs[..n]), now_ms, outbox, &mut encode, scratch, tx)
    }

    /// The transport is gone: what was not acknowledged goes again on the next connection.
    pub fn disconnected<T: Clone, const N: usize>(&mut self, outbox: &mut Outbox<T, N>) {
        self.session.disconnected(outbox);
    }
}
