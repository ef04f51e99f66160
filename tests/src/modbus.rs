//! Simulated Modbus field devices, served by tokio-modbus itself: over TCP on a free loopback
//! port, or RTU on one end of a pseudo-terminal pair made by socat (Debian `socat`). A station
//! answers for several unit ids with its own registers, and can be told to answer with an
//! exception, to hang, or to answer late.

use crate::{free_port, kill};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// How a unit behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers from its registers.
    Answer,
    /// Answers every request with this exception.
    Exception(ExceptionCode),
    /// Never answers.
    Silent,
    /// Answers the next `n` requests after `delay` (later than the daemon waits), then normally.
    Late { n: u32, delay: Duration },
}

#[derive(Debug)]
struct Unit {
    holding: BTreeMap<u16, u16>,
    input: BTreeMap<u16, u16>,
    behaviour: Behaviour,
}

/// A station: units with registers, shared with the server task.
#[derive(Clone, Default)]
pub struct Station {
    units: Arc<Mutex<BTreeMap<u8, Unit>>>,
    /// Requests received (all units).
    pub requests: Arc<AtomicU64>,
}

impl Station {
    /// Sets holding registers from `addr` of `unit` (the unit answers from now on).
    pub fn holding(&self, unit: u8, addr: u16, words: &[u16]) {
        let mut u = self.units.lock().unwrap();
        let u = u.entry(unit).or_insert_with(Unit::new);
        for (i, w) in words.iter().enumerate() {
            u.holding.insert(addr + i as u16, *w);
        }
    }

    /// Sets input registers from `addr` of `unit`.
    pub fn input(&self, unit: u8, addr: u16, words: &[u16]) {
        let mut u = self.units.lock().unwrap();
        let u = u.entry(unit).or_insert_with(Unit::new);
        for (i, w) in words.iter().enumerate() {
            u.input.insert(addr + i as u16, *w);
        }
    }

    /// Changes how `unit` behaves.
    pub fn behave(&self, unit: u8, b: Behaviour) {
        self.units.lock().unwrap().entry(unit).or_insert_with(Unit::new).behaviour = b;
    }

    /// Serves Modbus TCP on a free loopback port; returns `127.0.0.1:PORT`.
    pub async fn serve_tcp(&self) -> String {
        let port = free_port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let station = self.clone();
        tokio::spawn(async move {
            let server = tokio_modbus::server::tcp::Server::new(listener);
            let on_connected = |stream, addr| {
                let s = station.clone();
                async move {
                    tokio_modbus::server::tcp::accept_tcp_connection(stream, addr, move |_| {
                        Ok(Some(s.clone()))
                    })
                }
            };
            let _ = server.serve(&on_connected, |_| {}).await;
        });
        format!("127.0.0.1:{port}")
    }

    /// Serves Modbus RTU on the device end of `pty`.
    pub fn serve_rtu(&self, pty: &Pty) {
        let serial =
            tokio_serial::SerialStream::open(&tokio_serial::new(pty.device.display().to_string(), 9600))
                .expect("open the pty");
        let station = self.clone();
        tokio::spawn(async move {
            let _ = tokio_modbus::server::rtu::Server::new(serial).serve_forever(station).await;
        });
    }
}

impl Unit {
    fn new() -> Unit {
        Unit { holding: BTreeMap::new(), input: BTreeMap::new(), behaviour: Behaviour::Answer }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Option<Response>, ExceptionCode>> + Send>>;

impl tokio_modbus::server::Service for Station {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Answer;

    fn call(&self, req: SlaveRequest<'static>) -> Answer {
        self.requests.fetch_add(1, Relaxed);
        let mut units = self.units.lock().unwrap();
        let Some(unit) = units.get_mut(&req.slave) else {
            return Box::pin(async { Ok(None) }); // nobody with that id on the bus
        };
        let read = |regs: &BTreeMap<u16, u16>, a: u16, n: u16| -> Result<Vec<u16>, ExceptionCode> {
            (a..a.saturating_add(n))
                .map(|r| regs.get(&r).copied().ok_or(ExceptionCode::IllegalDataAddress))
                .collect()
        };
        let answer = match req.request {
            Request::ReadHoldingRegisters(a, n) => {
                read(&unit.holding, a, n).map(Response::ReadHoldingRegisters)
            }
            Request::ReadInputRegisters(a, n) => read(&unit.input, a, n).map(Response::ReadInputRegisters),
            _ => Err(ExceptionCode::IllegalFunction),
        };
        match unit.behaviour {
            Behaviour::Answer => Box::pin(async move { answer.map(Some) }),
            Behaviour::Exception(code) => Box::pin(async move { Err(code) }),
            Behaviour::Silent => Box::pin(async { Ok(None) }),
            Behaviour::Late { n, delay } => {
                unit.behaviour = if n > 1 { Behaviour::Late { n: n - 1, delay } } else { Behaviour::Answer };
                Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    answer.map(Some)
                })
            }
        }
    }
}

/// A TCP server that answers every request with bytes that are not Modbus.
pub async fn serve_garbage() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 260];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {
                    let junk = [0x13, 0x37, 0x00, 0x00, 0x00, 0x03, 0xff, 0x83, 0x02, 0xde, 0xad];
                    if s.write_all(&junk).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr.to_string()
}

/// A pseudo-terminal pair (socat): the daemon opens `daemon`, the simulated device `device`.
pub struct Pty {
    /// The daemon's end.
    pub daemon: std::path::PathBuf,
    /// The device's end.
    pub device: std::path::PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Pty {
    /// Starts socat (fails loudly if it is not installed).
    pub fn pair() -> Pty {
        let dir = tempfile::tempdir().unwrap();
        let (daemon, device) = (dir.path().join("daemon"), dir.path().join("device"));
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", daemon.display()))
            .arg(format!("pty,raw,echo=0,link={}", device.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat must be installed (Debian package `socat`; scripts/test installs it)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !(daemon.exists() && device.exists()) {
            assert!(std::time::Instant::now() < deadline, "socat made no pty pair");
            std::thread::sleep(Duration::from_millis(10));
        }
        Pty { daemon, device, child: Some(child), _dir: dir }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
