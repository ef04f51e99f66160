//! The device's MQTT session as a state machine without I/O: the board's network task feeds it
//! "connected", received bytes, "disconnected" and the time, and writes what it returns to the
//! socket. So the same logic runs on embassy-net, on a std TcpStream (the host board) and
//! against a scripted transport in the tests.
//!
//! - On connect: CONNECT with the last will (`status` offline, retained, QoS 1) and a persistent
//!   session; on CONNACK: the birth message (`status` online with firmware and boot id, retained,
//!   QoS 1), then the outbox oldest first.
//! - QoS 1 publishes: at most `W` in flight; a PUBACK removes the reading from the outbox. After
//!   a disconnect everything unacknowledged is sent again (flagged historical) on the next
//!   connection: the daemon applies each (boot id, seq) once.
//! - Keep-alive: PINGREQ after `keepalive_s` without sending; no PINGRESP (or CONNACK) within
//!   the keep-alive → the caller is told to drop the connection. No reboot, ever.
//! - Subscriptions (fleet updates): SUBSCRIBE with QoS 1 after every CONNACK; a PUBLISH from
//!   the broker goes to the caller's handler and, at QoS 1, is acknowledged in the next poll.
//!   Other messages (update reports) go out through [`Session::publish`], tracked like readings.

use super::packet::{self, Connect, Incoming, PacketError};
use crate::outbox::{Entry, Outbox};

/// Why the session wants the connection dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// The broker sent something a device does not expect, or garbage.
    Packet(PacketError),
    /// CONNACK refused the connection (return code).
    Refused(u8),
    /// No answer within the keep-alive.
    Timeout,
    /// The transmit buffer is too small for a packet.
    NoRoom,
}

impl From<PacketError> for SessionError {
    fn from(e: PacketError) -> Self {
        SessionError::Packet(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Down,
    /// CONNECT sent at this time.
    Connecting(u64),
    Up,
}

/// Largest packet the device takes from the broker (a 4 KB update chunk, its topic and header).
pub const RX_MAX: usize = 4096 + 256;

/// What a packet in flight carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Birth,
    Reading(u32),
    Other,
}

/// Session state; `W` publishes in flight at most.
#[derive(Debug)]
pub struct Session<const W: usize> {
    state: State,
    next_pkid: u16,
    in_flight: heapless::Vec<(u16, Tag), W>,
    last_tx_ms: u64,
    ping_sent_ms: Option<u64>,
    keepalive_ms: u64,
    rx: heapless::Vec<u8, RX_MAX>,
    /// QoS 1 messages received and not yet acknowledged.
    acks: heapless::Vec<u16, 16>,
    subscribe_due: bool,
    birth_due: bool,
    /// The broker acknowledged this connection's birth message.
    birth_acked: bool,
    connects: u32,
}

/// What the board must send for its identity.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// CONNECT fields (the will included).
    pub connect: Connect<'a>,
    /// Status topic.
    pub status_topic: &'a str,
    /// Encoded birth (status online) payload.
    pub birth: &'a [u8],
    /// Topic filters to subscribe to (QoS 1) on every connection; none for most devices.
    pub subscribe: &'a [&'a str],
}

impl<const W: usize> Default for Session<W> {
    fn default() -> Self {
        Self::new(60)
    }
}

impl<const W: usize> Session<W> {
    /// A session with this keep-alive (seconds).
    pub fn new(keepalive_s: u16) -> Self {
        Session {
            state: State::Down,
            next_pkid: 1,
            in_flight: heapless::Vec::new(),
            last_tx_ms: 0,
            ping_sent_ms: None,
            keepalive_ms: u64::from(keepalive_s.max(1)) * 1000,
            rx: heapless::Vec::new(),
            acks: heapless::Vec::new(),
            subscribe_due: false,
            birth_due: false,
            birth_acked: false,
            connects: 0,
        }
    }

    /// Whether CONNACK accepted the session.
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// Whether the broker acknowledged this connection's birth message (so what it reported,
    /// such as the dropped count, has arrived).
    pub fn birth_acked(&self) -> bool {
        self.birth_acked
    }

    /// Connections made so far.
    pub fn connects(&self) -> u32 {
        self.connects
    }

    fn pkid(&mut self) -> u16 {
        let id = self.next_pkid;
        self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
        id
    }

    /// The transport connected: returns the CONNECT to send (written into `tx`).
    pub fn connected(&mut self, id: &Identity, now_ms: u64, tx: &mut [u8]) -> Result<usize, SessionError> {
        self.state = State::Connecting(now_ms);
        self.rx.clear();
        self.acks.clear();
        self.in_flight.clear();
        self.ping_sent_ms = None;
        self.birth_acked = false;
        self.last_tx_ms = now_ms;
        Ok(packet::connect(&id.connect, tx)?)
    }

    /// The transport is gone: everything unacknowledged goes again on the next connection.
    pub fn disconnected<T: Clone, const N: usize>(&mut self, outbox: &mut Outbox<T, N>) {
        self.state = State::Down;
        self.in_flight.clear();
        self.rx.clear();
        outbox.disconnected();
    }

    /// Bytes from the broker. Acknowledged readings leave the outbox.
    pub fn received<T: Clone, const N: usize>(
        &mut self,
        bytes: &[u8],
        outbox: &mut Outbox<T, N>,
    ) -> Result<(), SessionError> {
        self.received_with(bytes, outbox, &mut |_, _| {})
    }

    /// [`Session::received`], handing every PUBLISH from the broker (topic, payload) to
    /// `on_publish`.
    pub fn received_with<T: Clone, const N: usize>(
        &mut self,
        mut bytes: &[u8],
        outbox: &mut Outbox<T, N>,
        on_publish: &mut dyn FnMut(&str, &[u8]),
    ) -> Result<(), SessionError> {
        while !bytes.is_empty() {
            let room = self.rx.capacity() - self.rx.len();
            let take = room.min(bytes.len());
            let _ = self.rx.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            loop {
                let (control, ack, used) = match packet::decode(&self.rx)? {
                    None => break,
                    Some((Incoming::Publish { topic, payload, pkid }, used)) => {
                        on_publish(topic, payload);
                        (None, pkid, used)
                    }
                    Some((p, used)) => (Some(Control::from(p)), None, used),
                };
                self.rx.rotate_left(used);
                self.rx.truncate(self.rx.len() - used);
                if let Some(id) = ack {
                    self.acks.push(id).map_err(|_| SessionError::NoRoom)?;
                }
                if let Some(c) = control {
                    self.on_packet(c, outbox)?;
                }
            }
            if self.rx.is_full() {
                return Err(SessionError::Packet(PacketError::Malformed));
            }
        }
        Ok(())
    }

    /// Sends a QoS 1 message of the device's own (not a reading), written into `tx`; its length.
    /// `Err(NoRoom)` while the session is down or its window is full: try again later.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        retain: bool,
        now_ms: u64,
        tx: &mut [u8],
    ) -> Result<usize, SessionError> {
        if self.state != State::Up || self.in_flight.is_full() {
            return Err(SessionError::NoRoom);
        }
        let pkid = self.pkid();
        let n = packet::publish(topic, payload, pkid, retain, tx).map_err(|_| SessionError::NoRoom)?;
        let _ = self.in_flight.push((pkid, Tag::Other));
        self.last_tx_ms = now_ms;
        Ok(n)
    }

    /// Nothing sent is waiting for the broker's acknowledgement.
    pub fn all_acked(&self) -> bool {
        self.state == State::Up && self.in_flight.is_empty()
    }

    fn on_packet<T: Clone, const N: usize>(
        &mut self,
        p: Control,
        outbox: &mut Outbox<T, N>,
    ) -> Result<(), SessionError> {
        match p {
            Control::ConnAck(0) => {
                self.state = State::Up;
                self.birth_due = true;
                self.subscribe_due = true;
                self.connects += 1;
            }
            Control::ConnAck(code) => return Err(SessionError::Refused(code)),
            Control::PubAck(id) => {
                if let Some(i) = self.in_flight.iter().position(|f| f.0 == id) {
                    match self.in_flight.swap_remove(i).1 {
                        Tag::Reading(seq) => _ = outbox.acked(seq),
                        Tag::Birth => self.birth_acked = true,
                        Tag::Other => {}
                    }
                }
            }
            Control::PingResp => self.ping_sent_ms = None,
            // A refused subscription: the device still publishes; updates will not reach it.
            Control::SubAck => {}
        }
        Ok(())
    }

    /// Work due at `now_ms`: the birth message, readings from the outbox (encoded by `encode`
    /// into the given buffer, returning the topic and payload length), a PINGREQ. Appends the
    /// packets to `tx` and returns the bytes written; the caller sends them.
    pub fn poll<'t, T: Clone, const N: usize, E>(
        &mut self,
        id: &Identity,
        now_ms: u64,
        outbox: &mut Outbox<T, N>,
        encode: &mut E,
        scratch: &mut [u8],
        tx: &mut [u8],
    ) -> Result<usize, SessionError>
    where
        E: FnMut(&Entry<'_, T>, &mut [u8]) -> Option<(&'t str, usize)>,
    {
        let mut at = 0;
        match self.state {
            State::Down => return Ok(0),
            State::Connecting(since) => {
                return if now_ms.saturating_sub(since) > self.keepalive_ms {
                    Err(SessionError::Timeout)
                } else {
                    Ok(0)
                };
            }
            State::Up => {}
        }
        if let Some(sent) = self.ping_sent_ms {
            if now_ms.saturating_sub(sent) > self.keepalive_ms {
                return Err(SessionError::Timeout);
            }
        }
        if self.subscribe_due && !id.subscribe.is_empty() {
            let pkid = self.pkid();
            at += packet::subscribe(id.subscribe, pkid, &mut tx[at..]).map_err(|_| SessionError::NoRoom)?;
        }
        self.subscribe_due = false;
        for pkid in core::mem::take(&mut self.acks) {
            tx.get_mut(at..at + 4).ok_or(SessionError::NoRoom)?.copy_from_slice(&packet::puback(pkid));
            at += 4;
        }
        if self.birth_due && !self.in_flight.is_full() {
            let pkid = self.pkid();
            at += packet::publish(id.status_topic, id.birth, pkid, true, &mut tx[at..])
                .map_err(|_| SessionError::NoRoom)?;
            let _ = self.in_flight.push((pkid, Tag::Birth));
            self.birth_due = false;
        }
        while !self.in_flight.is_full() {
            let Some(entry) = outbox.next_to_send() else { break };
            let seq = entry.seq;
            let Some((topic, len)) = encode(&entry, scratch) else {
                // Cannot be encoded (too big for the buffer): never will be; drop it.
                outbox.acked(seq);
                continue;
            };
            let pkid = self.pkid();
            match packet::publish(topic, &scratch[..len], pkid, false, &mut tx[at..]) {
                Ok(n) => at += n,
                Err(_) => {
                    // No room left in this round: send it next time.
                    outbox.disconnected_one(seq);
                    break;
                }
            }
            let _ = self.in_flight.push((pkid, Tag::Reading(seq)));
        }
        if at == 0
            && self.ping_sent_ms.is_none()
            && now_ms.saturating_sub(self.last_tx_ms) >= self.keepalive_ms
        {
            tx.get_mut(..2).ok_or(SessionError::NoRoom)?.copy_from_slice(&packet::PINGREQ);
            at = 2;
            self.ping_sent_ms = Some(now_ms);
        }
        if at > 0 {
            self.last_tx_ms = now_ms;
        }
        Ok(at)
    }
}

/// What the session itself acts on (a PUBLISH goes to the caller).
enum Control {
    ConnAck(u8),
    PubAck(u16),
    PingResp,
    SubAck,
}

impl From<Incoming<'_>> for Control {
    fn from(p: Incoming<'_>) -> Control {
        match p {
            Incoming::ConnAck { code, .. } => Control::ConnAck(code),
            Incoming::PubAck(id) => Control::PubAck(id),
            Incoming::SubAck { .. } => Control::SubAck,
            Incoming::PingResp | Incoming::Publish { .. } => Control::PingResp,
        }
    }
}
