//! The MQTT 3.1.1 packets a device needs, encoded into and decoded from byte slices without an
//! allocator. Only what a device sends (CONNECT with a will, PUBLISH QoS 1, SUBSCRIBE, PUBACK,
//! PINGREQ, DISCONNECT) is encoded, and only what a broker sends it (CONNACK, PUBACK, SUBACK,
//! PINGRESP, and PUBLISH QoS 0/1 on the topics it subscribed to: fleet updates) is decoded;
//! anything else is an error.

/// A packet that did not fit or made no sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// The output buffer is too small.
    NoRoom,
    /// A string or payload longer than MQTT allows (65535 / 268 MB).
    TooLong,
    /// A malformed remaining length, or a length that does not match the packet type.
    Malformed,
    /// A packet type a device never expects from a broker.
    Unexpected(u8),
}

/// What the broker sent (a PUBLISH borrows its topic and payload from the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// CONNACK.
    ConnAck {
        /// The broker kept the session (and what it had queued).
        session_present: bool,
        /// Return code: 0 accepted, else refused.
        code: u8,
    },
    /// PUBACK for a packet id.
    PubAck(u16),
    /// PINGRESP.
    PingResp,
    /// SUBACK: packet id, and whether every subscription was granted.
    SubAck {
        /// Packet id of the SUBSCRIBE.
        pkid: u16,
        /// No return code was 0x80 (failure).
        granted: bool,
    },
    /// PUBLISH to this device.
    Publish {
        /// Topic.
        topic: &'a str,
        /// Payload.
        payload: &'a [u8],
        /// Packet id to acknowledge (QoS 1); none for QoS 0.
        pkid: Option<u16>,
    },
}

/// The will of a CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct Will<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Payload.
    pub payload: &'a [u8],
}

/// CONNECT's fields.
#[derive(Debug, Clone, Copy)]
pub struct Connect<'a> {
    /// Client id (stable: the broker keeps the session under it).
    pub client_id: &'a str,
    /// Keep-alive, seconds.
    pub keepalive_s: u16,
    /// Start a fresh session (the device keeps its own outbox, so false is not needed).
    pub clean_session: bool,
    /// Last will: published retained with QoS 1 when the connection dies.
    pub will: Option<Will<'a>>,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a [u8]>,
}

struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) -> Result<(), PacketError> {
        *self.buf.get_mut(self.at).ok_or(PacketError::NoRoom)? = b;
        self.at += 1;
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), PacketError> {
        let end = self.at.checked_add(b.len()).ok_or(PacketError::NoRoom)?;
        self.buf.get_mut(self.at..end).ok_or(PacketError::NoRoom)?.copy_from_slice(b);
        self.at = end;
        Ok(())
    }

    fn u16(&mut self, v: u16) -> Result<(), PacketError> {
        self.bytes(&v.to_be_bytes())
    }

    fn string(&mut self, b: &[u8]) -> Result<(), PacketError> {
        self.u16(u16::try_from(b.len()).map_err(|_| PacketError::TooLong)?)?;
        self.bytes(b)
    }

    fn header(&mut self, first: u8, remaining: usize) -> Result<(), PacketError> {
        if remaining > 268_435_455 {
            return Err(PacketError::TooLong);
        }
        self.byte(first)?;
        let mut n = remaining;
        loop {
            let mut b = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                b |= 0x80;
            }
            self.byte(b)?;
            if n == 0 {
                return Ok(());
            }
        }
    }
}

fn string_len(s: &[u8]) -> usize {
    2 + s.len()
}

/// Writes CONNECT into `buf`; returns its length.
pub fn connect(c: &Connect, buf: &mut [u8]) -> Result<usize, PacketError> {
    let mut flags = 0u8;
    let mut remaining = 10 + string_len(c.client_id.as_bytes());
    if c.clean_session {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | 0x08 | 0x20; // will, QoS 1, retained
        remaining += string_len(w.topic.as_bytes()) + string_len(w.payload);
    }
    if let Some(u) = c.username {
        flags |= 0x80;
        remaining += string_len(u.as_bytes());
    }
    if let Some(p) = c.password {
        flags |= 0x40;
        remaining += string_len(p);
    }
    let mut w = Writer { buf, at: 0 };
    w.header(0x10, remaining)?;
    w.string(b"MQTT")?;
    w.byte(4)?;
    w.byte(flags)?;
    w.u16(c.keepalive_s)?;
    w.string(c.client_id.as_bytes())?;
    if let Some(will) = &c.will {
        w.string(will.topic.as_bytes())?;
        w.string(will.payload)?;
    }
    if let Some(u) = c.username {
        w.string(u.as_bytes())?;
    }
    if let Some(p) = c.password {
        w.string(p)?;
    }
    Ok(w.at)
}

/// Writes a QoS 1 PUBLISH (packet id `pkid`) into `buf`; returns its length.
pub fn publish(
    topic: &str,
    payload: &[u8],
    pkid: u16,
    retain: bool,
    buf: &mut [u8],
) -> Result<usize, PacketError> {
    let remaining = string_len(topic.as_bytes()) + 2 + payload.len();
    let mut w = Writer { buf, at: 0 };
    w.header(0x32 | u8::from(retain), remaining)?;
    w.string(topic.as_bytes())?;
    w.u16(pkid)?;
    w.bytes(payload)?;
    Ok(w.at)
}

/// Writes a SUBSCRIBE (packet id `pkid`, QoS 1 for each topic filter) into `buf`; returns its length.
pub fn subscribe(topics: &[&str], pkid: u16, buf: &mut [u8]) -> Result<usize, PacketError> {
    let remaining = 2 + topics.iter().map(|t| string_len(t.as_bytes()) + 1).sum::<usize>();
    let mut w = Writer { buf, at: 0 };
    w.header(0x82, remaining)?;
    w.u16(pkid)?;
    for t in topics {
        w.string(t.as_bytes())?;
        w.byte(1)?;
    }
    Ok(w.at)
}

/// PUBACK for `pkid`.
pub fn puback(pkid: u16) -> [u8; 4] {
    let [hi, lo] = pkid.to_be_bytes();
    [0x40, 0x02, hi, lo]
}

/// PINGREQ.
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
/// DISCONNECT.
pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// Decodes the first packet in `buf`: `Ok(None)` while it is incomplete, else the packet and the
/// bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Incoming<'_>, usize)>, PacketError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let (mut remaining, mut shift, mut at) = (0usize, 0u32, 1usize);
    loop {
        let Some(&b) = buf.get(at) else { return Ok(None) };
        remaining |= usize::from(b & 0x7f) << shift;
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err(PacketError::Malformed);
        }
    }
    let (kind, flags) = (first >> 4, first & 0x0f);
    let fixed = match kind {
        2 | 4 => Some(2),
        13 => Some(0),
        3 | 9 => None,
        t => return Err(PacketError::Unexpected(t)),
    };
    if fixed.is_some_and(|n| n != remaining) || (kind != 3 && flags != 0) {
        return Err(PacketError::Malformed);
    }
    let Some(body) = buf.get(at..at + remaining) else { return Ok(None) };
    let packet = match kind {
        2 => Incoming::ConnAck { session_present: body[0] & 1 == 1, code: body[1] },
        4 => Incoming::PubAck(u16::from_be_bytes([body[0], body[1]])),
        9 => {
            let (Some(id), Some(codes)) = (body.get(..2), body.get(2..)) else {
                return Err(PacketError::Malformed);
            };
            if codes.is_empty() {
                return Err(PacketError::Malformed);
            }
            Incoming::SubAck { pkid: u16::from_be_bytes([id[0], id[1]]), granted: !codes.contains(&0x80) }
        }
        3 => publish_in(flags, body)?,
        _ => Incoming::PingResp,
    };
    Ok(Some((packet, at + remaining)))
}

/// A PUBLISH's body (QoS 0 or 1; a device subscribes with QoS 1, so QoS 2 is an error).
fn publish_in(flags: u8, body: &[u8]) -> Result<Incoming<'_>, PacketError> {
    let qos = (flags >> 1) & 3;
    if qos > 1 {
        return Err(PacketError::Malformed);
    }
    let len = usize::from(u16::from_be_bytes([
        *body.first().ok_or(PacketError::Malformed)?,
        *body.get(1).ok_or(PacketError::Malformed)?,
    ]));
    let topic = body.get(2..2 + len).ok_or(PacketError::Malformed)?;
    let topic = core::str::from_utf8(topic).map_err(|_| PacketError::Malformed)?;
    let mut rest = &body[2 + len..];
    let pkid = if qos == 1 {
        let id = rest.get(..2).ok_or(PacketError::Malformed)?;
        rest = &rest[2..];
        Some(u16::from_be_bytes([id[0], id[1]]))
    } else {
        None
    };
    Ok(Incoming::Publish { topic, payload: rest, pkid })
}
