//! The MQTT session against a scripted transport: the bytes it writes, birth and will, QoS 1
//! resend after a disconnect in the middle of publishing, keep-alive, garbage from the broker.

use gridsentry_firmware_core::mqtt::packet::{self, Connect, Incoming, PacketError, Will};
use gridsentry_firmware_core::mqtt::{Identity, Session, SessionError};
use gridsentry_firmware_core::outbox::{Entry, Outbox};
use proptest::prelude::*;

const TOPIC: &str = "gs/v1/plaza-3/nb-01/noise";

fn identity() -> Identity<'static> {
    Identity {
        connect: Connect {
            client_id: "nb-01",
            keepalive_s: 30,
            clean_session: false,
            will: Some(Will { topic: "gs/v1/plaza-3/nb-01/status", payload: b"offline" }),
            username: None,
            password: None,
        },
        status_topic: "gs/v1/plaza-3/nb-01/status",
        birth: b"online",
        subscribe: &[],
    }
}

/// A broker's view of the bytes a device wrote: (topic, payload, packet id, retain) of each PUBLISH.
fn publishes(mut b: &[u8]) -> Vec<(String, Vec<u8>, u16, bool)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (first, len) = (b[0], b[1] as usize); // short packets in these tests
        let body = &b[2..2 + len];
        if first >> 4 == 3 {
            let tl = u16::from_be_bytes([body[0], body[1]]) as usize;
            let topic = String::from_utf8(body[2..2 + tl].to_vec()).unwrap();
            let pkid = u16::from_be_bytes([body[2 + tl], body[3 + tl]]);
            out.push((topic, body[4 + tl..].to_vec(), pkid, first & 1 == 1));
        }
        b = &b[2 + len..];
    }
    out
}

/// Payload: [seq, historical].
fn encode(e: &Entry<'_, u8>, buf: &mut [u8]) -> Option<(&'static str, usize)> {
    buf[0] = e.seq as u8;
    buf[1] = u8::from(e.historical);
    Some((TOPIC, 2))
}

struct Device {
    s: Session<4>,
    outbox: Outbox<u8, 16>,
    now: u64,
}

impl Device {
    fn poll(&mut self) -> Vec<u8> {
        let (mut scratch, mut tx) = ([0u8; 64], [0u8; 512]);
        let n =
            self.s.poll(&identity(), self.now, &mut self.outbox, &mut encode, &mut scratch, &mut tx).unwrap();
        tx[..n].to_vec()
    }

    fn connect(&mut self) -> Vec<u8> {
        let mut tx = [0u8; 128];
        let n = self.s.connected(&identity(), self.now, &mut tx).unwrap();
        tx[..n].to_vec()
    }

    fn broker_says(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.s.received(bytes, &mut self.outbox)
    }
}

fn puback(id: u16) -> [u8; 4] {
    let [a, b] = id.to_be_bytes();
    [0x40, 0x02, a, b]
}

#[test]
fn connect_carries_a_retained_qos1_will_and_keeps_the_session() {
    let mut d = Device { s: Session::new(30), outbox: Outbox::new(), now: 0 };
    let c = d.connect();
    assert_eq!(&c[2..10], b"\x00\x04MQTT\x04\x2c", "protocol 4, flags: will + will QoS 1 + will retain");
    assert_eq!(&c[10..12], &30u16.to_be_bytes());
    assert!(c.windows(7).any(|w| w == b"offline"));
    assert!(d.poll().is_empty(), "nothing goes out before CONNACK");
}

#[test]
fn a_disconnect_mid_publish_resends_what_was_not_acknowledged_as_historical() {
    let mut d = Device { s: Session::new(30), outbox: Outbox::new(), now: 1000 };
    for seq in 0..3 {
        assert_eq!(d.outbox.push(0), seq);
    }
    d.connect();
    d.broker_says(&[0x20, 0x02, 0x00, 0x00]).unwrap();
    let sent = publishes(&d.poll());
    let birth = &sent[0];
    assert_eq!(
        (birth.0.as_str(), birth.1.as_slice(), birth.3),
        ("gs/v1/plaza-3/nb-01/status", &b"online"[..], true)
    );
    let readings: Vec<Vec<u8>> = sent[1..].iter().map(|p| p.1.clone()).collect();
    assert_eq!(readings, vec![vec![0, 0], vec![1, 0], vec![2, 0]], "live, oldest first");
    // The broker acknowledges the birth and reading 0, then the connection dies.
    d.broker_says(&puback(sent[0].2)).unwrap();
    d.broker_says(&puback(sent[1].2)).unwrap();
    assert_eq!(d.outbox.len(), 2);
    d.s.disconnected(&mut d.outbox);
    assert_eq!(d.outbox.push(0), 3); // measured while offline
    d.outbox.interval_passed(); // and a report interval passes before the broker is back
    assert!(d.poll().is_empty(), "nothing is sent while down");

    d.now += 5000;
    d.connect();
    // CONNACK split across two reads.
    d.broker_says(&[0x20, 0x02]).unwrap();
    d.broker_says(&[0x01, 0x00]).unwrap();
    let again = publishes(&d.poll());
    assert_eq!(again[0].1, b"online", "birth again on every connection");
    let readings: Vec<Vec<u8>> = again[1..].iter().map(|p| p.1.clone()).collect();
    assert_eq!(readings, vec![vec![1, 1], vec![2, 1], vec![3, 1]], "resent oldest first, historical");
    for p in &again {
        d.broker_says(&puback(p.2)).unwrap();
    }
    assert!(d.outbox.is_empty());
    assert_eq!(d.s.connects(), 2);
}

#[test]
fn at_most_w_publishes_are_in_flight() {
    let mut d = Device { s: Session::new(30), outbox: Outbox::new(), now: 0 };
    for seq in 0..10 {
        assert_eq!(d.outbox.push(0), seq);
    }
    d.connect();
    d.broker_says(&[0x20, 0x02, 0x00, 0x00]).unwrap();
    let first = publishes(&d.poll());
    assert_eq!(first.len(), 4, "birth + 3 readings fill the window of 4");
    d.broker_says(&puback(first[1].2)).unwrap();
    let next = publishes(&d.poll());
    assert_eq!(next.iter().map(|p| p.1[0]).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn keepalive_pings_when_idle_and_times_out_without_an_answer() {
    let mut d = Device { s: Session::new(30), outbox: Outbox::new(), now: 0 };
    d.connect();
    d.broker_says(&[0x20, 0x02, 0x00, 0x00]).unwrap();
    let birth = publishes(&d.poll());
    d.broker_says(&puback(birth[0].2)).unwrap();
    d.now = 29_999;
    assert!(d.poll().is_empty());
    d.now = 30_000;
    assert_eq!(d.poll(), packet::PINGREQ);
    d.broker_says(&[0xD0, 0x00]).unwrap();
    d.now = 60_000;
    assert_eq!(d.poll(), packet::PINGREQ);
    d.now = 90_001;
    let (mut scratch, mut tx) = ([0u8; 64], [0u8; 64]);
    let e = d.s.poll(&identity(), d.now, &mut d.outbox, &mut encode, &mut scratch, &mut tx);
    assert_eq!(e, Err(SessionError::Timeout));
}

#[test]
fn a_refused_or_garbled_answer_drops_the_connection() {
    let mut d = Device { s: Session::new(30), outbox: Outbox::new(), now: 0 };
    d.connect();
    assert_eq!(d.broker_says(&[0x20, 0x02, 0x00, 0x05]), Err(SessionError::Refused(5)));
    d.connect();
    assert_eq!(d.broker_says(&[0x50, 0x02, 0, 1]), Err(SessionError::Packet(PacketError::Unexpected(5))));
    d.connect();
    assert_eq!(
        d.broker_says(&[0x30, 0x00]),
        Err(SessionError::Packet(PacketError::Malformed)),
        "a PUBLISH without a topic"
    );
    d.connect();
    assert_eq!(d.broker_says(&[0x40, 0x03, 0, 1, 2]), Err(SessionError::Packet(PacketError::Malformed)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]
    /// The broker-side parser never panics, and what it accepts it consumed from the input.
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        if let Ok(Some((p, used))) = packet::decode(&bytes) {
            prop_assert!(used <= bytes.len());
            let known = matches!(p, Incoming::ConnAck { .. } | Incoming::PubAck(_) | Incoming::PingResp
                | Incoming::SubAck { .. } | Incoming::Publish { .. });
            prop_assert!(known);
        }
    }

    /// PUBLISH with any topic, payload and id reads back (remaining length of any size).
    #[test]
    fn publish_encodes_its_fields(topic in "[a-z/]{1,40}", payload in proptest::collection::vec(any::<u8>(), 0..300), pkid in 1u16..) {
        let mut buf = [0u8; 400];
        let n = packet::publish(&topic, &payload, pkid, false, &mut buf).unwrap();
        let (mut len, mut at, mut shift) = (0usize, 1usize, 0);
        loop {
            len |= ((buf[at] & 0x7f) as usize) << shift;
            at += 1;
            if buf[at - 1] & 0x80 == 0 { break; }
            shift += 7;
        }
        prop_assert_eq!(at + len, n);
        prop_assert_eq!(buf[0], 0x32);
        let tl = u16::from_be_bytes([buf[at], buf[at + 1]]) as usize;
        prop_assert_eq!(&buf[at + 2..at + 2 + tl], topic.as_bytes());
        prop_assert_eq!(u16::from_be_bytes([buf[at + 2 + tl], buf[at + 3 + tl]]), pkid);
        prop_assert_eq!(&buf[at + 4 + tl..n], payload.as_slice());
    }
}

/// A PUBLISH from the broker (QoS 1 when `pkid` is given).
fn incoming(topic: &str, payload: &[u8], pkid: Option<u16>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend((topic.len() as u16).to_be_bytes());
    body.extend(topic.as_bytes());
    if let Some(id) = pkid {
        body.extend(id.to_be_bytes());
    }
    body.extend(payload);
    let mut out = vec![if pkid.is_some() { 0x32 } else { 0x30 }];
    let mut n = body.len();
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
    out.extend(body);
    out
}

#[test]
fn subscribes_after_connack_hands_over_publishes_and_acknowledges_them() {
    let subs = ["gs/v1/plaza-3/nb-01/ota", "gs/v1/plaza-3/nb-01/ota/chunk"];
    let id = Identity { subscribe: &subs, ..identity() };
    let mut s: Session<4> = Session::new(30);
    let mut outbox: Outbox<u8, 16> = Outbox::new();
    let mut tx = [0u8; 8192];
    s.connected(&id, 0, &mut tx).unwrap();
    s.received(&[0x20, 2, 0, 0], &mut outbox).unwrap();
    let (mut scratch, mut tx) = ([0u8; 64], [0u8; 512]);
    let n = s.poll(&id, 1, &mut outbox, &mut encode, &mut scratch, &mut tx).unwrap();
    // SUBSCRIBE (packet id, two filters at QoS 1) comes before the birth.
    assert_eq!(tx[0], 0x82);
    let body_len = tx[1] as usize;
    let body = &tx[2..2 + body_len];
    assert_eq!(&body[4..4 + subs[0].len()], subs[0].as_bytes());
    assert_eq!(body[4 + subs[0].len()], 1, "QoS 1");
    let birth = publishes(&tx[2 + body_len..n])[0].clone();
    assert_eq!(birth.0, "gs/v1/plaza-3/nb-01/status", "then the birth");
    let [hi, lo] = birth.2.to_be_bytes();
    s.received(&[0x40, 2, hi, lo], &mut outbox).unwrap();

    // A 4 KB chunk arrives in pieces; it is handed over whole, then acknowledged.
    let big = vec![7u8; 4096 + 8];
    let msg = incoming(subs[1], &big, Some(77));
    let mut got = Vec::new();
    for piece in msg.chunks(1000) {
        s.received_with(piece, &mut outbox, &mut |t, p| got.push((t.to_string(), p.len()))).unwrap();
    }
    assert_eq!(got, [(subs[1].to_string(), 4104)]);
    let qos0 = incoming(subs[0], b"{}", None);
    s.received_with(&qos0, &mut outbox, &mut |t, _| got.push((t.to_string(), 0))).unwrap();
    assert_eq!(got.len(), 2);
    let n = s.poll(&id, 2, &mut outbox, &mut encode, &mut scratch, &mut tx).unwrap();
    assert_eq!(&tx[..n], &[0x40, 2, 0, 77], "one PUBACK, for the QoS 1 message only");

    // The device's own message is tracked until the broker acknowledges it.
    assert!(s.all_acked());
    let n = s.publish("gs/v1/plaza-3/nb-01/ota/state", b"{}", true, 3, &mut tx).unwrap();
    let (_, _, pkid, retain) = publishes(&tx[..n])[0].clone();
    assert!(retain);
    assert!(!s.all_acked());
    let [hi, lo] = pkid.to_be_bytes();
    s.received(&[0x40, 2, hi, lo], &mut outbox).unwrap();
    assert!(s.all_acked());
}

#[test]
fn publishes_with_qos_2_or_cut_short_are_refused() {
    let mut outbox: Outbox<u8, 16> = Outbox::new();
    let mut s: Session<4> = Session::new(30);
    let mut qos2 = incoming("t", b"x", Some(1));
    qos2[0] = 0x34;
    assert!(s.received(&qos2, &mut outbox).is_err());
    // A topic length past the end of the packet.
    let mut s: Session<4> = Session::new(30);
    assert!(s.received(&[0x30, 3, 0, 9, b'a'], &mut outbox).is_err());
    assert_eq!(
        packet::decode(&[0x90, 3, 0, 1, 0x80]).unwrap().unwrap().0,
        Incoming::SubAck { pkid: 1, granted: false }
    );
}
