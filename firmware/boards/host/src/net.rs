//! The board's network task on std: a TcpStream driven by the core's MQTT session. Reconnects
//! with a doubling wait (the device keeps measuring meanwhile; the outbox holds the readings).

use gridsentry_firmware_core::identity::Identity;
use gridsentry_firmware_core::mqtt::packet::{self, Connect, Will};
use gridsentry_firmware_core::mqtt::{self, Session};
use gridsentry_firmware_core::noise::NoiseRecord;
use gridsentry_firmware_core::outbox::Outbox;
use gridsentry_sensors::codec::{self, Format};
use gridsentry_sensors::{heapless, Body, DeviceState, StatusReport, Stream, Timestamp};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct Net {
    broker: String,
    client_id: String,
    status_topic: String,
    noise_topic: &'static str,
    will: Vec<u8>,
    /// Birth message of the current connection (carries the readings dropped before it).
    birth: Vec<u8>,
    /// Readings the outbox dropped that no status message has reported yet.
    dropped: u32,
    stream: Option<TcpStream>,
    session: Session<32>,
    /// Encoded payload and outgoing packets, reused on every step.
    scratch: Vec<u8>,
    tx: Vec<u8>,
    retry_at: Instant,
    wait: Duration,
    started: Instant,
}

fn status(identity: &Identity, state: DeviceState, dropped: u32) -> Vec<u8> {
    let body = Body::Status(StatusReport {
        state,
        firmware: heapless::String::try_from(env!("CARGO_PKG_VERSION")).unwrap_or_default(),
        dropped,
    });
    let mut id = identity.clone();
    codec::encode_vec(Format::Json, &id.reading(Timestamp::Unsynced(0), body)).unwrap_or_default()
}

impl Net {
    pub fn new(broker: &str, identity: &Identity) -> Net {
        let topic = |s| identity.topic(s).to_heapless().as_str().to_string();
        Net {
            broker: broker.to_string(),
            client_id: format!("box-{}", topic(Stream::Noise).replace('/', "-")),
            status_topic: topic(Stream::Status),
            // Lives as long as the program: the session's encoder hands out 'static topics.
            noise_topic: Box::leak(topic(Stream::Noise).into_boxed_str()),
            will: status(identity, DeviceState::Offline, 0),
            birth: status(identity, DeviceState::Online, 0),
            dropped: 0,
            stream: None,
            session: Session::new(30),
            scratch: vec![0; 1024],
            tx: vec![0; 64 * 1024],
            retry_at: Instant::now(),
            wait: Duration::from_millis(200),
            started: Instant::now(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.session.is_up()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Connects if due, sends what the session wants, reads what the broker says.
    pub fn step(&mut self, outbox: &mut Outbox<NoiseRecord, 3600>, identity: &Identity) {
        if self.stream.is_none() && Instant::now() >= self.retry_at {
            // The outbox's drop count goes into this connection's status message.
            self.dropped = self.dropped.saturating_add(outbox.take_dropped());
            self.birth = status(identity, DeviceState::Online, self.dropped);
        }
        let id = mqtt::Identity {
            connect: Connect {
                client_id: &self.client_id,
                keepalive_s: 30,
                clean_session: false,
                will: Some(Will { topic: &self.status_topic, payload: &self.will }),
                username: None,
                password: None,
            },
            status_topic: &self.status_topic,
            birth: &self.birth,
        };
        if self.stream.is_none() {
            if Instant::now() < self.retry_at {
                std::thread::sleep(Duration::from_millis(5));
                return;
            }
            let mut tx = [0u8; 512];
            let (now, session) = (self.now_ms(), &mut self.session);
            let connected = TcpStream::connect(&self.broker).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_millis(20)))?;
                s.set_nodelay(true)?;
                let n = session
                    .connected(&id, now, &mut tx)
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                s.write_all(&tx[..n])?;
                Ok(s)
            });
            match connected {
                Ok(s) => self.stream = Some(s),
                Err(e) => return self.failed(outbox, &e.to_string()),
            }
        }
        let noise_topic = self.noise_topic;
        let mut encode = |e: &gridsentry_firmware_core::outbox::Entry<NoiseRecord>, buf: &mut [u8]| {
            let header = identity.header(e.seq, Timestamp::Unsynced(0), e.historical);
            let r = e.item.reading(header, 0.0);
            codec::encode(Format::Json, &r, buf).ok().map(|n| (noise_topic, n))
        };
        let (now, tx) = (self.now_ms(), &mut self.tx);
        let result = self
            .session
            .poll(&id, now, outbox, &mut encode, &mut self.scratch, tx)
            .map_err(|e| format!("{e:?}"));
        let stream = self.stream.as_mut().expect("connected above");
        let io = result.and_then(|n| stream.write_all(&tx[..n]).map_err(|e| e.to_string())).and_then(|_| {
            let mut rx = [0u8; 512];
            match stream.read(&mut rx) {
                Ok(0) => Err("closed by the broker".to_string()),
                Ok(n) => self.session.received(&rx[..n], outbox).map_err(|e| format!("{e:?}")),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        });
        match io {
            Ok(()) if self.session.is_up() => {
                self.wait = Duration::from_millis(200);
                self.dropped = 0; // the birth carrying it went out after CONNACK
            }
            Ok(()) => {}
            Err(e) => self.failed(outbox, &e),
        }
    }

    fn failed(&mut self, outbox: &mut Outbox<NoiseRecord, 3600>, why: &str) {
        eprintln!("gridsentry-board-host: broker {}: {why}; retrying in {:?}", self.broker, self.wait);
        self.stream = None;
        self.session.disconnected(outbox);
        self.retry_at = Instant::now() + self.wait;
        self.wait = (self.wait * 2).min(Duration::from_secs(10));
    }

    /// Says goodbye properly (the broker does not publish the will).
    pub fn disconnect(&mut self) {
        if let Some(mut s) = self.stream.take() {
            let _ = s.write_all(&packet::DISCONNECT);
        }
    }
}
