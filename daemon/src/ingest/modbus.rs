//! Modbus ingest: landslide instruments polled over TCP, or RTU on a serial line.
//!
//! One task per TCP device and one per RTU bus (devices naming the same serial path share it and
//! take turns, with a quiet `gap_ms` between requests). Register maps are the sensors crate's
//! data; this file only moves words. Two hard-won rules (tokio-modbus issues 324 and 180): after
//! any timeout or garbled reply the connection is dropped and re-opened, because a reused one
//! reads the late reply as the answer to the next request; and RTU requests keep a gap.
//!
//! A device that stops answering is not an error loop: it is reported once as offline (a status
//! reading, which a `no_data` rule turns into a maintenance order at once), then polled with a
//! doubling interval up to `backoff_max_ms`; the next answer reports it online again. Failures
//! are counted by reason in `gridsentry_field_errors_total`.

use crate::config::ModbusDevice;
use crate::flow::{Inbound, Inlet};
use crate::metrics::Metrics;
use gridsentry_sensors::modbus::{self, Function, RegisterMap};
use gridsentry_sensors::{Body, DeformReport, DeviceState, Id, Stream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::{Slave, SlaveContext};

/// A device being polled.
struct Polled {
    cfg: ModbusDevice,
    map: &'static RegisterMap,
    site: Id,
    device: Id,
    seq: u32,
    failures: u32,
    online: Option<bool>,
    next: Instant,
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq)]
enum Link {
    Tcp(String),
    Rtu { path: String, baud: u32, parity: String },
}

/// Starts the pollers; they stop when `shutdown` turns true or the pipeline goes away.
pub fn spawn(
    devices: &[ModbusDevice],
    tx: Inlet,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    // A fresh boot id per start (sequence numbers restart at 0): the pipeline's (boot, seq)
    // dedup must never take a restarted poller's readings for ones already applied.
    let boot: u32 = rand::random();
    let mut buses: Vec<(Link, Vec<Polled>)> = Vec::new();
    for d in devices {
        let (Some(map), Ok(site), Ok(device)) =
            (modbus::map_for(&d.kind), Id::new(&d.site), Id::new(&d.device))
        else {
            tracing::error!(site = %d.site, device = %d.device, "modbus device skipped: not checked by config");
            continue;
        };
        let link = match (&d.tcp, &d.rtu) {
            (Some(t), _) => Link::Tcp(t.clone()),
            (None, Some(p)) => Link::Rtu { path: p.clone(), baud: d.baud, parity: d.parity.clone() },
            (None, None) => continue,
        };
        let polled = Polled {
            cfg: d.clone(),
            map,
            site,
            device,
            seq: 0,
            failures: 0,
            online: None,
            next: Instant::now(),
        };
        match buses.iter_mut().find(|(l, _)| matches!(l, Link::Rtu { .. }) && *l == link) {
            Some((_, list)) => list.push(polled),
            None => buses.push((link, vec![polled])),
        }
    }
    buses
        .into_iter()
        .map(|(link, devices)| {
            let bus = Bus { link, ctx: None, tx: tx.clone(), metrics: metrics.clone(), boot };
            tokio::spawn(bus.run(devices, shutdown.clone()))
        })
        .collect()
}

struct Bus {
    link: Link,
    ctx: Option<Context>,
    tx: Inlet,
    metrics: Arc<Metrics>,
    boot: u32,
}

impl Bus {
    async fn run(mut self, mut devices: Vec<Polled>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let Some(i) = (0..devices.len()).min_by_key(|&i| devices[i].next) else { return };
            tokio::select! {
                _ = tokio::time::sleep_until(devices[i].next) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            let d = &mut devices[i];
            let result = self.poll(d).await;
            let now = Instant::now();
            let sent = match result {
                Ok(report) => {
                    if d.online != Some(true) {
                        tracing::info!(site = %d.site, device = %d.device, "modbus device answering");
                    }
                    let online = (d.online != Some(true)).then(|| self.status(d, DeviceState::Online));
                    d.online = Some(true);
                    d.failures = 0;
                    d.next = now + Duration::from_millis(d.cfg.poll_ms);
                    self.metrics.modbus_polls.fetch_add(1, Relaxed);
                    d.seq = d.seq.wrapping_add(1);
                    let body = match d.map.stream {
                        Stream::Rain => Body::Rain(report),
                        _ => Body::Deform(report),
                    };
                    let reading = self.reading(d, d.seq, body);
                    match online {
                        Some(s) => send(&self.tx, s) && send(&self.tx, reading),
                        None => send(&self.tx, reading),
                    }
                }
                Err(reason) => {
                    d.failures = d.failures.saturating_add(1);
                    let back =
                        d.cfg.poll_ms.saturating_mul(1 << d.failures.min(20)).min(d.cfg.backoff_max_ms);
                    d.next = now + Duration::from_millis(back);
                    if d.online == Some(false) {
                        true
                    } else {
                        tracing::warn!(site = %d.site, device = %d.device, reason, "modbus device not answering; reported offline, polled every {back} ms at most");
                        d.online = Some(false);
                        let s = self.status(d, DeviceState::Offline);
                        send(&self.tx, s)
                    }
                }
            };
            if !sent {
                return;
            }
        }
    }

    /// Reads every block of the device's map; the reason label on failure.
    async fn poll(&mut self, d: &Polled) -> Result<DeformReport, &'static str> {
        let timeout = Duration::from_millis(d.cfg.timeout_ms);
        let gap = Duration::from_millis(if matches!(self.link, Link::Rtu { .. }) { d.cfg.gap_ms } else { 0 });
        let mut words: Vec<Vec<u16>> = Vec::new();
        for b in d.map.blocks() {
            let mut attempt = 0;
            loop {
                let r = self.request(d.cfg.unit, b.function, b.address, b.count, timeout).await;
                if !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                let reason = match r {
                    Ok(w) => {
                        words.push(w);
                        break;
                    }
                    Err(reason) => reason,
                };
                self.metrics.field_error(reason);
                if reason.starts_with("modbus_exception") {
                    return Err(reason); // the device answered "no": asking again gives the same
                }
                self.ctx = None; // never reuse a connection after a timeout or a garbled reply
                attempt += 1;
                if attempt > d.cfg.retries {
                    return Err(reason);
                }
            }
        }
        let refs: Vec<&[u16]> = words.iter().map(Vec::as_slice).collect();
        d.map.decode(&refs).map_err(|e| {
            tracing::warn!(site = %d.site, device = %d.device, error = %e, "modbus reply not decodable");
            self.metrics.field_error("modbus_decode");
            "modbus_decode"
        })
    }

    async fn request(
        &mut self,
        unit: u8,
        f: Function,
        addr: u16,
        count: u16,
        t: Duration,
    ) -> Result<Vec<u16>, &'static str> {
        if self.ctx.is_none() {
            match tokio::time::timeout(t, open(&self.link)).await {
                Ok(Ok(c)) => self.ctx = Some(c),
                Ok(Err(_)) => return Err("modbus_connect"),
                Err(_) => return Err("modbus_connect_timeout"),
            }
        }
        let ctx = self.ctx.as_mut().ok_or("modbus_connect")?;
        ctx.set_slave(Slave(unit));
        let call = async {
            match f {
                Function::ReadHolding => ctx.read_holding_registers(addr, count).await,
                Function::ReadInput => ctx.read_input_registers(addr, count).await,
            }
        };
        match tokio::time::timeout(t, call).await {
            Ok(Ok(Ok(words))) => Ok(words),
            Ok(Ok(Err(code))) => Err(exception_reason(code)),
            Ok(Err(tokio_modbus::Error::Protocol(_))) => Err("modbus_garbled"),
            Ok(Err(tokio_modbus::Error::Transport(_))) => Err("modbus_io"),
            Err(_) => Err("modbus_timeout"),
        }
    }

    fn reading(&self, d: &Polled, seq: u32, body: Body) -> Inbound {
        super::field_reading(&d.site, &d.device, self.boot, seq, body)
    }

    fn status(&self, d: &Polled, state: DeviceState) -> Inbound {
        super::field_status(&d.site, &d.device, self.boot, state, "modbus")
    }
}

fn send(tx: &Inlet, m: Inbound) -> bool {
    tx.send(vec![m]).is_ok()
}

async fn open(link: &Link) -> std::io::Result<Context> {
    match link {
        Link::Tcp(addr) => {
            let sa = tokio::net::lookup_host(addr)
                .await?
                .next()
                .ok_or_else(|| std::io::Error::other(format!("{addr}: no address")))?;
            tokio_modbus::client::tcp::connect(sa).await
        }
        Link::Rtu { path, baud, parity } => {
            use tokio_serial::SerialPortBuilderExt;
            let parity = match parity.as_str() {
                "even" => tokio_serial::Parity::Even,
                "odd" => tokio_serial::Parity::Odd,
                _ => tokio_serial::Parity::None,
            };
            let port = tokio_serial::new(path, *baud).parity(parity).open_native_async()?;
            Ok(tokio_modbus::client::rtu::attach(port))
        }
    }
}

fn exception_reason(code: tokio_modbus::ExceptionCode) -> &'static str {
    use tokio_modbus::ExceptionCode::*;
    match code {
        IllegalFunction => "modbus_exception_illegal_function",
        IllegalDataAddress => "modbus_exception_illegal_data_address",
        IllegalDataValue => "modbus_exception_illegal_data_value",
        ServerDeviceFailure => "modbus_exception_device_failure",
        ServerDeviceBusy => "modbus_exception_busy",
        _ => "modbus_exception_other",
    }
}
