//! The demo's landslide station: a wire extensometer served over Modbus TCP by tokio-modbus in
//! this process, polled by the daemon like any field device (`[[modbus]]` in config/demo.toml).
//!
//! Its displacement follows a compressed creep curve: steady creep at 0.1 mm/s for the first
//! 5 s, then tertiary creep with the inverse velocity falling linearly to zero at second 30
//! (Fukuzono), so the tangent-angle rule goes yellow, orange, then red with a failure forecast
//! close to second 30. After that the mass keeps sliding at its last speed.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// Steady-creep velocity, mm/s (8640 mm/day: the rule's `creep_mm_per_day`).
const V_C: f64 = 0.1;
/// End of steady creep, s.
const T1: f64 = 5.0;
/// Failure, s.
const T_F: f64 = 30.0;

/// Displacement in mm at second `t`.
pub fn displacement_mm(t: f64) -> f64 {
    let tertiary = |t: f64| V_C * T1 + V_C * (T_F - T1) * ((T_F - T1) / (T_F - t)).ln();
    let last = T_F - 0.5;
    match t {
        t if t <= T1 => V_C * t,
        t if t < last => tertiary(t),
        t => tertiary(last) + V_C * (T_F - T1) / (T_F - last) * (t - last),
    }
}

#[derive(Clone)]
struct Extensometer {
    start: Instant,
}

type Answer = Pin<Box<dyn Future<Output = Result<Option<Response>, ExceptionCode>> + Send>>;

impl tokio_modbus::server::Service for Extensometer {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Answer;

    fn call(&self, req: SlaveRequest<'static>) -> Answer {
        let mm = displacement_mm(self.start.elapsed().as_secs_f64());
        let answer = match req.request {
            // Holding register 0: displacement in 0.01 mm (the wire_extensometer map).
            Request::ReadHoldingRegisters(0, 1) => {
                Ok(Some(Response::ReadHoldingRegisters(vec![(mm * 100.0).round().min(65535.0) as u16])))
            }
            Request::ReadHoldingRegisters(..) => Err(ExceptionCode::IllegalDataAddress),
            _ => Err(ExceptionCode::IllegalFunction),
        };
        Box::pin(async move { answer })
    }
}

/// Serves the station on a free loopback port; returns `127.0.0.1:PORT`. Time starts now.
pub async fn serve() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let station = Extensometer { start: Instant::now() };
    tokio::spawn(async move {
        let server = tokio_modbus::server::tcp::Server::new(listener);
        let on_connected = |stream, addr| {
            let s = station.clone();
            async move {
                tokio_modbus::server::tcp::accept_tcp_connection(stream, addr, move |_| Ok(Some(s.clone())))
            }
        };
        if let Err(e) = server.serve(&on_connected, |e| tracing::warn!(error = %e, "demo station")).await {
            tracing::warn!(error = %e, "demo station stopped");
        }
    });
    Ok(addr.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_curve_is_continuous_and_rising() {
        let mut last = -1.0;
        for i in 0..800 {
            let mm = super::displacement_mm(f64::from(i) * 0.05);
            assert!(mm > last && mm - last < 2.0, "jump at {i}: {last} -> {mm}");
            last = mm;
        }
        assert!(last < 655.0, "fits the register");
    }
}
