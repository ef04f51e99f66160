//! The board's network task on std: a TcpStream moving bytes for the core's [`Uplink`] (the same
//! link logic the chips run over embassy-net). Reconnects with a doubling wait; the device keeps
//! measuring meanwhile and the outbox holds the readings.

use gridsentry_firmware_core::identity::Identity;
use gridsentry_firmware_core::noise::NoiseRecord;
use gridsentry_firmware_core::outbox::Outbox;
use gridsentry_firmware_core::uplink::{self, Uplink};
use gridsentry_sensors::codec::JSON_MAX;
use gridsentry_sensors::Timestamp;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub type NoiseOutbox = Outbox<NoiseRecord, 3600>;

pub struct Net {
    broker: String,
    link: Uplink<32>,
    stream: Option<TcpStream>,
    /// Encoded payload and outgoing packets, reused on every step.
    scratch: Vec<u8>,
    tx: Vec<u8>,
    retry_at: Instant,
    wait: Duration,
    started: Instant,
}

impl Net {
    pub fn new(broker: &str, identity: &Identity) -> Net {
        Net {
            broker: broker.to_string(),
            link: Uplink::new::<NoiseRecord>(identity, env!("CARGO_PKG_VERSION")),
            stream: None,
            scratch: vec![0; JSON_MAX],
            tx: vec![0; 64 * 1024],
            retry_at: Instant::now(),
            wait: Duration::from_millis(200),
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Connects if due, sends what the session wants, reads what the broker says.
    pub fn step(&mut self, outbox: &mut NoiseOutbox) {
        if self.stream.is_none() {
            if Instant::now() < self.retry_at {
                std::thread::sleep(Duration::from_millis(5));
                return;
            }
            let (now, time) = (self.now_ms(), Timestamp::Unsynced(self.now_ms()));
            let (link, tx) = (&mut self.link, &mut self.tx);
            let connected = TcpStream::connect(&self.broker).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_millis(20)))?;
                s.set_nodelay(true)?;
                let n = link
                    .connected(outbox, now, time, tx)
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                s.write_all(&tx[..n])?;
                Ok(s)
            });
            match connected {
                Ok(s) => self.stream = Some(s),
                Err(e) => return self.failed(outbox, &e.to_string()),
            }
        }
        let now = self.now_ms();
        let result =
            self.link.poll(outbox, now, &mut self.scratch, &mut self.tx).map_err(|e| format!("{e:?}"));
        let (stream, tx) = (self.stream.as_mut().expect("connected above"), &self.tx);
        let io = result.and_then(|n| stream.write_all(&tx[..n]).map_err(|e| e.to_string())).and_then(|_| {
            let mut rx = [0u8; 512];
            match stream.read(&mut rx) {
                Ok(0) => Err("closed by the broker".to_string()),
                Ok(n) => self.link.received(&rx[..n], outbox).map_err(|e| format!("{e:?}")),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        });
        match io {
            Ok(()) if self.link.is_up() => self.wait = Duration::from_millis(200),
            Ok(()) => {}
            Err(e) => self.failed(outbox, &e),
        }
    }

    fn failed(&mut self, outbox: &mut NoiseOutbox, why: &str) {
        eprintln!("gridsentry-board-host: broker {}: {why}; retrying in {:?}", self.broker, self.wait);
        self.stream = None;
        self.link.disconnected(outbox);
        self.retry_at = Instant::now() + self.wait;
        self.wait = (self.wait * 2).min(Duration::from_secs(10));
    }

    /// Says goodbye properly (the broker does not publish the will).
    pub fn disconnect(&mut self) {
        if let Some(mut s) = self.stream.take() {
            let _ = s.write_all(uplink::GOODBYE);
        }
    }
}
