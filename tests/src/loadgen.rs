//! A load generator that is not the bottleneck: raw MQTT 3.1.1 over TCP, QoS 1, pipelined, on
//! several connections at once.
//!
//! One rumqttc publisher tops out at 25–40k messages/s here (a request queue, a write and a
//! flush per message); mosquitto itself delivers 42–53k/s. Each connection here keeps up to
//! `window` publishes unacknowledged, encodes them back to back into one buffer and writes it in
//! one call; a reader half counts the PUBACKs and releases the window. Packet ids cycle through
//! 1..=65535, so the window must stay below that (mosquitto acks in order).

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// What message number `i` is: (topic, payload).
pub type Messages = Arc<dyn Fn(u64) -> (String, Vec<u8>) + Send + Sync>;

/// Publishes messages `from..from + n` over `conns` connections (message i on connection
/// i % conns, in order per connection), as fast as the broker takes them, or at `rate`
/// messages/s when given. Returns once every one was acknowledged by the broker.
pub async fn publish(
    port: u16,
    conns: usize,
    messages: Messages,
    from: u64,
    n: u64,
    rate: Option<f64>,
) -> Duration {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..conns as u64)
        .map(|c| {
            let messages = messages.clone();
            let ids: Vec<u64> = (from..from + n).filter(|i| i % conns as u64 == c).collect();
            let per_conn = rate.map(|r| r / conns as f64);
            tokio::spawn(async move { connection(port, c, messages, ids, per_conn).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("load generator connection");
    }
    t0.elapsed()
}

async fn connection(port: u16, c: u64, messages: Messages, ids: Vec<u64>, rate: Option<f64>) {
    const WINDOW: usize = 2000;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("broker reachable");
    stream.set_nodelay(true).unwrap();
    let client_id = format!("loadgen-{}-{c}", std::process::id());
    stream.write_all(&connect(&client_id)).await.unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK accepted");
    let (mut rd, mut wr) = stream.into_split();
    let window = Arc::new(Semaphore::new(WINDOW));
    let total = ids.len();
    let released = window.clone();
    let reader = tokio::spawn(async move {
        let (mut acked, mut buf, mut have) = (0usize, vec![0u8; 64 * 1024], 0usize);
        while acked < total {
            let got = rd.read(&mut buf[have..]).await.expect("reading PUBACKs");
            assert!(got > 0, "broker closed the load generator's connection");
            have += got;
            let mut at = 0;
            while have - at >= 4 {
                assert_eq!(buf[at], 0x40, "only PUBACKs expected");
                at += 4;
                acked += 1;
            }
            released.add_permits(at / 4);
            buf.copy_within(at..have, 0);
            have -= at;
        }
    });
    let started = Instant::now();
    let mut out = Vec::with_capacity(64 * 1024);
    for (k, i) in ids.iter().enumerate() {
        if let Some(r) = rate {
            let due = started + Duration::from_secs_f64(k as f64 / r);
            if due > Instant::now() {
                flush(&mut wr, &mut out).await;
                tokio::time::sleep_until(due.into()).await;
            }
        }
        if window.available_permits() == 0 {
            flush(&mut wr, &mut out).await;
        }
        window.acquire().await.unwrap().forget();
        let (topic, payload) = messages(*i);
        encode_publish(&mut out, &topic, (k % 65_535) as u16 + 1, &payload);
        if out.len() >= 60 * 1024 {
            flush(&mut wr, &mut out).await;
        }
    }
    flush(&mut wr, &mut out).await;
    reader.await.expect("PUBACK reader");
    let _ = wr.write_all(&[0xE0, 0]).await; // DISCONNECT
}

async fn flush(wr: &mut tokio::net::tcp::OwnedWriteHalf, out: &mut Vec<u8>) {
    if !out.is_empty() {
        wr.write_all(out).await.expect("writing to the broker");
        out.clear();
    }
}

/// CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s.
fn connect(client_id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let mut p = vec![0x10];
    remaining_length(&mut p, body.len());
    p.extend(body);
    p
}

/// PUBLISH, QoS 1, not retained.
pub fn encode_publish(out: &mut Vec<u8>, topic: &str, pkid: u16, payload: &[u8]) {
    out.push(0x32);
    remaining_length(out, 2 + topic.len() + 2 + payload.len());
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(&pkid.to_be_bytes());
    out.extend_from_slice(payload);
}

fn remaining_length(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return;
        }
    }
}

/// A bare QoS 1 subscriber on raw TCP: it only counts what it receives and acks it (the acks
/// of one read in one write). Its rate is the broker's own delivery ceiling.
pub struct BareSubscriber {
    stream: TcpStream,
}

impl BareSubscriber {
    /// Connects (clean session) and subscribes to `filter` at QoS 1; returns once subscribed.
    pub async fn start(port: u16, filter: &str) -> BareSubscriber {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("broker reachable");
        stream.set_nodelay(true).unwrap();
        stream.write_all(&connect(&format!("bare-subscriber-{}", std::process::id()))).await.unwrap();
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack).await.unwrap();
        let mut sub = vec![0x82];
        remaining_length(&mut sub, 2 + 2 + filter.len() + 1);
        sub.extend_from_slice(&1u16.to_be_bytes());
        sub.extend_from_slice(&(filter.len() as u16).to_be_bytes());
        sub.extend_from_slice(filter.as_bytes());
        sub.push(1);
        stream.write_all(&sub).await.unwrap();
        let mut suback = [0u8; 5];
        stream.read_exact(&mut suback).await.unwrap();
        assert_eq!(suback, [0x90, 3, 0, 1, 1], "SUBACK granting QoS 1");
        BareSubscriber { stream }
    }

    /// Receives and acks `n` publishes; returns the time from the first to the last.
    pub async fn count(mut self, n: u64) -> Duration {
        let (mut buf, mut have, mut got, mut first) = (vec![0u8; 256 * 1024], 0usize, 0u64, None);
        let mut acks = Vec::new();
        while got < n {
            let read = self.stream.read(&mut buf[have..]).await.expect("reading publishes");
            assert!(read > 0, "broker closed the bare subscriber's connection");
            first.get_or_insert_with(Instant::now);
            have += read;
            let mut at = 0;
            while let Some((len, header)) = packet_at(&buf[at..have]) {
                if header & 0xF0 == 0x30 && header & 0x06 == 0x02 {
                    let body = &buf[at + len.1..at + len.0];
                    let topic_len = u16::from_be_bytes([body[0], body[1]]) as usize;
                    acks.extend_from_slice(&[0x40, 2, body[2 + topic_len], body[3 + topic_len]]);
                    got += 1;
                }
                at += len.0;
            }
            if !acks.is_empty() {
                self.stream.write_all(&acks).await.expect("acking");
                acks.clear();
            }
            buf.copy_within(at..have, 0);
            have -= at;
            if have == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
        first.map_or(Duration::ZERO, |f| f.elapsed())
    }
}

/// A whole packet at the start of `b`: ((its length, its header length), first byte).
fn packet_at(b: &[u8]) -> Option<((usize, usize), u8)> {
    let (mut n, mut shift, mut i) = (0usize, 0, 1);
    loop {
        let byte = *b.get(i)?;
        n |= usize::from(byte & 0x7F) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (b.len() >= i + n).then_some(((i + n, i), b[0]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn publish_bytes_spelled_out() {
        let mut out = Vec::new();
        super::encode_publish(&mut out, "a/b", 0x0102, b"hi");
        // fixed header: PUBLISH QoS 1, remaining 9 = topic (2+3) + pkid 2 + payload 2
        assert_eq!(out, [0x32, 9, 0, 3, b'a', b'/', b'b', 1, 2, b'h', b'i']);
        let mut long = Vec::new();
        super::remaining_length(&mut long, 321);
        assert_eq!(long, [0xC1, 0x02], "321 = 65 + 2 * 128");
    }
}
