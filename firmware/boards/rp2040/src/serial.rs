//! The radio-less box's MQTT session over a serial line (UART1, GP4 TX / GP5 RX, 921600 8N1),
//! with fleet updates.
//!
//! Why: a plain Pico has no network; a gateway (or, in `scripts/firmware-sim`, the host) bridges
//! its UART to the broker byte for byte — the link crate's session, updates included, runs
//! exactly as on Wi-Fi. A connection starts with CONNECT after a quiet line; a session that stops
//! answering is dropped by its keep-alive and started again.

use crate::ota::Updates;
use embassy_time::{Duration, Timer};
use embedded_io_async::{Read, Write};
use gridsentry_firmware_core::uplink::{Stored, Uplink};
use gridsentry_firmware_link::{ota::session, Holds, Locked, Ota, SessionBuffers};

/// The session task: runs for ever (a restart into a new image leaves through the chip).
pub async fn run<T: Stored, const N: usize, const W: usize, U: Read + Write>(
    uart: &mut U,
    link: &mut Uplink<W>,
    shared: &Locked<impl Holds<T, N>>,
    ota: &mut Ota<Updates>,
    bufs: &mut SessionBuffers,
) -> ! {
    loop {
        let _ = session(uart, link, shared, ota, bufs).await;
        shared.with_outbox(|o| link.disconnected(o));
        // A quiet line ends the bridge's connection; then start again.
        Timer::after(Duration::from_secs(1)).await;
    }
}
