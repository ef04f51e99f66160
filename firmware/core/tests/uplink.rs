//! The uplink (what boards' network tasks share): client id and topics from the identity, the
//! will and birth as wire-contract status readings, readings encoded from their stored form, and
//! the outbox's drop count reported in the birth until the broker has acknowledged it.

use gridsentry_firmware_core::identity::Identity;
use gridsentry_firmware_core::noise::NoiseRecord;
use gridsentry_firmware_core::outbox::Outbox;
use gridsentry_firmware_core::uplink::Uplink;
use gridsentry_firmware_core::wristband::HrRecord;
use gridsentry_sensors::codec::{decode, JSON_MAX};
use gridsentry_sensors::{Body, Contact, DeviceState, HeartRateReport, Id, NoiseReport, Reading, Timestamp};

fn identity() -> Identity {
    Identity::new(Id::new("plaza-3").unwrap(), Id::new("nb-01").unwrap(), 7)
}

/// Splits the device's bytes into packets: (first byte, body).
fn packets(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (mut len, mut shift, mut at) = (0usize, 0, 1);
        loop {
            len |= usize::from(b[at] & 0x7f) << shift;
            shift += 7;
            at += 1;
            if b[at - 1] & 0x80 == 0 {
                break;
            }
        }
        out.push((b[0], b[at..at + len].to_vec()));
        b = &b[at + len..];
    }
    out
}

/// PUBLISH packets as (topic, packet id, decoded reading).
fn publishes(b: &[u8]) -> Vec<(String, u16, Reading)> {
    packets(b)
        .into_iter()
        .filter(|(first, _)| first >> 4 == 3)
        .map(|(_, body)| {
            let tl = u16::from_be_bytes([body[0], body[1]]) as usize;
            let topic = String::from_utf8(body[2..2 + tl].to_vec()).unwrap();
            let pkid = u16::from_be_bytes([body[2 + tl], body[3 + tl]]);
            (topic, pkid, decode(&body[4 + tl..]).unwrap())
        })
        .collect()
}

fn report(laeq_db: f32) -> NoiseReport {
    NoiseReport {
        interval_ms: 1000,
        laeq_db,
        lafmax_db: laeq_db + 3.0,
        lcpeak_db: None,
        l10_db: None,
        l90_db: None,
        overload: false,
        under_range: false,
        cal_offset_db: 0.5,
    }
}

struct Box {
    link: Uplink<4>,
    outbox: Outbox<NoiseRecord, 2>,
}

impl Box {
    fn connect(&mut self) -> Vec<u8> {
        let mut tx = [0u8; 1024];
        let n = self.link.connected(&mut self.outbox, 0, Timestamp::Unsynced(5), &mut tx).unwrap();
        self.link.received(&[0x20, 0x02, 0x00, 0x00], &mut self.outbox).unwrap(); // CONNACK
        tx[..n].to_vec()
    }

    fn poll(&mut self) -> Vec<(String, u16, Reading)> {
        let (mut scratch, mut tx) = ([0u8; JSON_MAX], [0u8; 8192]);
        let n = self.link.poll(&mut self.outbox, 1, &mut scratch, &mut tx).unwrap();
        publishes(&tx[..n])
    }

    fn push(&mut self, seq: u32) {
        let record =
            NoiseRecord::new(Timestamp::Utc(1_764_072_000_000 + 1000 * u64::from(seq)), &report(60.0));
        assert_eq!(self.outbox.push(record), seq);
    }
}

fn status(r: &Reading) -> (DeviceState, u32) {
    let Body::Status(s) = &r.body else { panic!("status expected: {r:?}") };
    assert_eq!(s.firmware.as_str(), "1.2.3");
    (s.state, s.dropped)
}

#[test]
fn connect_names_the_device_and_carries_its_will() {
    let mut b = Box { link: Uplink::new::<NoiseRecord>(&identity(), "1.2.3"), outbox: Outbox::new() };
    let connect = b.connect();
    let (first, body) = &packets(&connect)[0];
    assert_eq!(first >> 4, 1, "CONNECT");
    let text = String::from_utf8_lossy(body);
    assert!(text.contains("gs-v1-plaza-3-nb-01"), "client id from the topic scheme: {text}");
    assert!(text.contains("gs/v1/plaza-3/nb-01/status"), "will topic");
    let will_at = body.windows(1).position(|w| w == b"{").unwrap();
    let will_end = body.iter().rposition(|&c| c == b'}').unwrap();
    let will: Reading = decode(&body[will_at..=will_end]).unwrap();
    assert_eq!(status(&will), (DeviceState::Offline, 0));
    assert_eq!(will.header.boot_id, 7);
}

#[test]
fn readings_go_out_on_their_stream_with_their_own_time_and_flags() {
    let mut b = Box { link: Uplink::new::<NoiseRecord>(&identity(), "1.2.3"), outbox: Outbox::new() };
    b.push(0);
    b.outbox.interval_passed(); // reading 0 waited a whole interval for the connection
    b.connect();
    b.push(1);
    let sent = b.poll();
    assert_eq!(sent.len(), 3, "birth and two readings");
    assert_eq!(sent[0].0, "gs/v1/plaza-3/nb-01/status");
    assert_eq!(status(&sent[0].2), (DeviceState::Online, 0));
    for (i, (topic, _, r)) in sent[1..].iter().enumerate() {
        assert_eq!(topic, "gs/v1/plaza-3/nb-01/noise");
        assert_eq!((r.header.seq, r.header.historical, r.header.boot_id), (i as u32, i == 0, 7));
        assert_eq!(r.header.time, Timestamp::Utc(1_764_072_000_000 + 1000 * i as u64));
        let Body::Noise(n) = &r.body else { panic!("noise") };
        assert_eq!((n.laeq_db, n.lafmax_db, n.cal_offset_db), (60.0, 63.0, 0.5));
    }
}

#[test]
fn the_drop_count_is_reported_until_a_birth_carrying_it_is_acknowledged() {
    let mut b = Box { link: Uplink::new::<NoiseRecord>(&identity(), "1.2.3"), outbox: Outbox::new() };
    for seq in 0..5 {
        b.push(seq); // capacity 2: 3 dropped
    }
    b.connect();
    let birth = &b.poll()[0];
    assert_eq!(status(&birth.2), (DeviceState::Online, 3));
    // The connection dies before the birth's PUBACK, one more reading is dropped meanwhile.
    b.link.disconnected(&mut b.outbox);
    b.push(5);
    b.connect();
    let sent = b.poll();
    assert_eq!(status(&sent[0].2), (DeviceState::Online, 4), "not lost with the connection");
    assert_eq!(b.link.unreported_drops(), 4);
    let [hi, lo] = sent[0].1.to_be_bytes();
    b.link.received(&[0x40, 0x02, hi, lo], &mut b.outbox).unwrap();
    assert_eq!(b.link.unreported_drops(), 0);
    b.link.disconnected(&mut b.outbox);
    b.connect();
    assert_eq!(status(&b.poll()[0].2), (DeviceState::Online, 0), "reported once");
}

#[test]
fn a_wristband_gateway_publishes_heart_rate_on_its_hr_stream() {
    let mut link: Uplink<4> = Uplink::new::<HrRecord>(&identity(), "1.2.3");
    let mut outbox: Outbox<HrRecord, 8> = Outbox::new();
    let report = HeartRateReport {
        band: Id::new("c0ffee000001").unwrap(),
        bpm: 52,
        contact: Contact::Detected,
        rr_1024: heapless::Vec::from_slice(&[1100, 1180]).unwrap(),
        energy_kj: None,
        battery_pct: Some(80),
    };
    outbox.push(HrRecord { time: Timestamp::Utc(1_764_072_000_000), report: report.clone() });
    let mut tx = [0u8; 1024];
    link.connected(&mut outbox, 0, Timestamp::Unsynced(0), &mut tx).unwrap();
    link.received(&[0x20, 0x02, 0x00, 0x00], &mut outbox).unwrap();
    let (mut scratch, mut tx) = ([0u8; JSON_MAX], [0u8; 4096]);
    let n = link.poll(&mut outbox, 1, &mut scratch, &mut tx).unwrap();
    let sent = publishes(&tx[..n]);
    assert_eq!(sent[1].0, "gs/v1/plaza-3/nb-01/hr");
    assert_eq!(sent[1].2.body, Body::HeartRate(report));
    assert_eq!(sent[1].2.header.time, Timestamp::Utc(1_764_072_000_000));
}

#[test]
fn a_login_goes_into_connect() {
    let link: Uplink<4> =
        Uplink::new::<NoiseRecord>(&identity(), "1.2.3").with_login("devices", "s3cret").unwrap();
    let mut b = Box { link, outbox: Outbox::new() };
    let connect = b.connect();
    let (_, body) = &packets(&connect)[0];
    assert_eq!(body[7] & 0xc0, 0xc0, "user name and password flags");
    assert!(body.ends_with(b"\x00\x07devices\x00\x06s3cret"), "{body:?}");
    assert!(Uplink::<4>::new::<NoiseRecord>(&identity(), "1.2.3").with_login(&"x".repeat(65), "").is_none());
}

#[test]
fn with_ota_it_subscribes_reads_offers_and_chunks_and_reports_retained() {
    use gridsentry_firmware_core::uplink::OtaMessage;
    use gridsentry_sensors::ota::{Report, UpdateState};
    let mut b =
        Box { link: Uplink::new::<NoiseRecord>(&identity(), "1.2.3").with_ota(), outbox: Outbox::new() };
    b.connect();
    let (mut scratch, mut tx) = ([0u8; JSON_MAX], [0u8; 8192]);
    let n = b.link.poll(&mut b.outbox, 1, &mut scratch, &mut tx).unwrap();
    let sent = packets(&tx[..n]);
    assert_eq!(sent[0].0, 0x82, "SUBSCRIBE first");
    let text = String::from_utf8_lossy(&sent[0].1);
    assert!(
        text.contains("gs/v1/plaza-3/nb-01/ota") && text.contains("gs/v1/plaza-3/nb-01/ota/chunk"),
        "{text}"
    );

    let publish = |topic: &str, payload: &[u8]| {
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend(topic.as_bytes());
        body.extend(payload);
        let mut p = vec![0x30];
        let mut n = body.len();
        loop {
            let b = (n % 128) as u8;
            n /= 128;
            p.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 {
                break;
            }
        }
        p.extend(body);
        p
    };
    let offer = format!(
        r#"{{"v":1,"rollout":3,"board":"rp2040","version":"2.0.0","size":9000,"sha256":"{}","sig":"{}","chunk":1024}}"#,
        "ab".repeat(32),
        "cd".repeat(64)
    );
    let mut got = Vec::new();
    let mut on = |m: OtaMessage<'_>| {
        got.push(match m {
            OtaMessage::Offer(o) => format!("offer {} {}", o.rollout, o.version),
            OtaMessage::Chunk(c) => format!("chunk {} {} {}", c.rollout, c.offset, c.data.len()),
        })
    };
    b.link
        .received_with(&publish("gs/v1/plaza-3/nb-01/ota", offer.as_bytes()), &mut b.outbox, &mut on)
        .unwrap();
    let mut chunk = 3u32.to_le_bytes().to_vec();
    chunk.extend(2048u32.to_le_bytes());
    chunk.extend([1, 2, 3]);
    b.link.received_with(&publish("gs/v1/plaza-3/nb-01/ota/chunk", &chunk), &mut b.outbox, &mut on).unwrap();
    b.link.received_with(&publish("gs/v1/plaza-3/nb-01/ota", b"{not json"), &mut b.outbox, &mut on).unwrap();
    b.link
        .received_with(&publish("gs/v1/plaza-3/other/ota", offer.as_bytes()), &mut b.outbox, &mut on)
        .unwrap();
    assert_eq!(got, ["offer 3 2.0.0", "chunk 3 2048 3"], "malformed and foreign ones dropped");

    let r = Report {
        v: 1,
        board: "rp2040".try_into().unwrap(),
        version: "1.2.3".try_into().unwrap(),
        slot: "a".try_into().unwrap(),
        state: UpdateState::Downloading,
        rollout: Some(3),
        offset: Some(2048),
        error: None,
    };
    let n = b.link.report(&r, 2, &mut tx).unwrap();
    let (first, body) = &packets(&tx[..n])[0];
    assert_eq!(*first, 0x33, "QoS 1, retained");
    let tl = u16::from_be_bytes([body[0], body[1]]) as usize;
    assert_eq!(&body[2..2 + tl], b"gs/v1/plaza-3/nb-01/ota/state");
    let back: Report = serde_json_core::from_slice_escaped(&body[4 + tl..], &mut [0u8; 64]).unwrap().0;
    assert_eq!(back, r);
}
