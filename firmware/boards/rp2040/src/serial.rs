//! The radio-less box's MQTT session over a serial line (UART1, GP4 TX / GP5 RX, 921600 8N1),
//! with fleet updates.
//!
//! Why: a plain Pico has no network; a gateway (or, in `scripts/firmware-sim`, the host) bridges
//! its UART to the broker byte for byte — the firmware core's session and the update logic run
//! exactly as on Wi-Fi. A connection starts with CONNECT after a quiet line; a session that stops
//! answering is dropped by its keep-alive and started again.
//!
//! Updates: offers and chunks are copied out of the session's receive path and handled here,
//! outside the lock the audio loop shares (a flash erase stalls the chip for tens of ms). The app
//! proves itself — meter running, broker connected, birth acknowledged — before a trial image is
//! kept; until then the watchdog is fed only for `OTA_TRIAL_S`, after which the board restarts
//! and the boot loader goes back to the previous image.

use crate::ota::Updates;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use embassy_futures::select::{select3, Either3};
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read, Write};
use gridsentry_firmware_core::mqtt::session::RX_MAX;
use gridsentry_firmware_core::ota::{Step, Updater};
use gridsentry_firmware_core::uplink::{OtaMessage, Stored, Uplink};
use gridsentry_firmware_link::{Holds, Locked, READING};
use gridsentry_sensors::codec::JSON_MAX;
use gridsentry_sensors::ota::{Chunk, Offer, Report, CHUNK_MAX};

/// What arrived for the updater, copied out of the session's buffer (one, in a static).
#[allow(clippy::large_enum_variant)]
enum Inbox {
    Empty,
    Offer(Offer),
    Chunk { rollout: u32, offset: u32, len: usize },
}

/// The update side: the chip's slots, the core's updater, what waits to be said.
pub struct Ota {
    /// The boot loader's partitions.
    pub chip: Updates,
    /// The core's update state.
    pub updater: Updater,
    /// The latest report not yet sent (a newer one replaces it).
    pending: Option<Report>,
    /// Restart once the broker has the last report.
    restart_due: Option<Instant>,
    /// Check the downloaded image once `verifying` is out.
    verify_due: bool,
    inbox: Inbox,
    data: [u8; CHUNK_MAX as usize],
}

impl Ota {
    /// Reads the boot state and finishes what the previous run left.
    pub fn start(mut chip: Updates, mut updater: Updater) -> Ota {
        let boot = chip.boot();
        let (rec, mut slots) = chip.parts();
        let step = updater.start(boot, rec, &mut slots);
        let mut ota = Ota {
            chip,
            updater,
            pending: None,
            restart_due: None,
            verify_due: false,
            inbox: Inbox::Empty,
            data: [0; 4096],
        };
        ota.follow(Some(step));
        ota
    }

    fn follow(&mut self, mut step: Option<Step>) {
        while let Some(s) = step.take() {
            match s {
                Step::Report(r) => self.pending = Some(r),
                Step::Verify(r) => {
                    // Said first; the (long) check runs once the report is out.
                    self.pending = Some(r);
                    self.verify_due = true;
                }
                Step::Restart(r) => {
                    self.pending = Some(r);
                    self.restart_due = Some(Instant::now() + Duration::from_secs(3));
                }
            }
        }
    }

    /// Checks the image if that is due and its report went out.
    fn verify_if_due(&mut self) {
        if self.verify_due && self.pending.is_none() {
            self.verify_due = false;
            let (rec, mut slots) = self.chip.parts();
            let step = self.updater.verify(rec, &mut slots);
            self.follow(Some(step));
        }
    }

    /// Handles what arrived (outside the session's lock).
    fn handle(&mut self) {
        let now = Instant::now().as_millis();
        let step = match core::mem::replace(&mut self.inbox, Inbox::Empty) {
            Inbox::Empty => None,
            Inbox::Offer(o) => {
                let (rec, mut slots) = self.chip.parts();
                self.updater.offer(&o, now, rec, &mut slots)
            }
            Inbox::Chunk { rollout, offset, len } => {
                let (rec, mut slots) = self.chip.parts();
                let c = Chunk { rollout, offset, data: &self.data[..len] };
                self.updater.chunk(&c, now, rec, &mut slots)
            }
        };
        self.follow(step);
        let again = self.updater.tick(now);
        self.follow(again);
    }

    /// The app proved itself (a trial image is kept).
    pub fn proved(&mut self) {
        let (rec, mut slots) = self.chip.parts();
        let step = self.updater.proved(rec, &mut slots);
        self.follow(step);
    }
}

/// What the audio loop and the session tell each other.
pub struct Flags {
    /// The meter has produced a report since the start (part of a trial image's proof).
    pub meter_running: AtomicBool,
    /// Running a new image on trial (the audio loop stops feeding the watchdog when it is
    /// overdue); cleared once the image proved itself and was kept.
    pub on_trial: AtomicBool,
}

impl Flags {
    /// Nothing yet.
    pub const fn new() -> Self {
        Flags { meter_running: AtomicBool::new(false), on_trial: AtomicBool::new(false) }
    }
}

impl Default for Flags {
    fn default() -> Self {
        Self::new()
    }
}

/// Buffers of the serial session (static: part of the measured RAM).
pub struct SerialBuffers {
    scratch: [u8; JSON_MAX],
    tx: [u8; 1536],
    rx: [u8; 512],
}

impl SerialBuffers {
    /// Zeroed.
    pub const fn new() -> Self {
        SerialBuffers { scratch: [0; JSON_MAX], tx: [0; 1536], rx: [0; 512] }
    }
}

impl Default for SerialBuffers {
    fn default() -> Self {
        Self::new()
    }
}

const _: () = assert!(RX_MAX >= CHUNK_MAX as usize + 128);

/// The session task: runs for ever (a restart into a new image leaves through `restart`).
#[allow(clippy::too_many_arguments)]
pub async fn run<T: Stored, const N: usize, const W: usize, U: Read + Write>(
    uart: &mut U,
    link: &mut Uplink<W>,
    shared: &Locked<impl Holds<T, N>>,
    ota: &mut Ota,
    bufs: &mut SerialBuffers,
    flags: &Flags,
    restart: fn() -> !,
) -> ! {
    flags.on_trial.store(ota.updater.on_trial(), Relaxed);
    loop {
        let ms = || Instant::now().as_millis();
        let now = gridsentry_firmware_link::now();
        if let Ok(n) = shared.with_outbox(|o| link.connected(o, ms(), now, &mut bufs.tx)) {
            if uart.write_all(&bufs.tx[..n]).await.is_ok() {
                let _ = session(uart, link, shared, ota, bufs, flags, restart).await;
            }
        }
        shared.with_outbox(|o| link.disconnected(o));
        // A quiet line ends the bridge's connection; then start again.
        Timer::after(Duration::from_secs(1)).await;
    }
}

async fn session<T: Stored, const N: usize, const W: usize, U: Read + Write>(
    uart: &mut U,
    link: &mut Uplink<W>,
    shared: &Locked<impl Holds<T, N>>,
    ota: &mut Ota,
    bufs: &mut SerialBuffers,
    flags: &Flags,
    restart: fn() -> !,
) -> Result<(), ()> {
    let ms = || Instant::now().as_millis();
    loop {
        let n =
            shared.with_outbox(|o| link.poll(o, ms(), &mut bufs.scratch, &mut bufs.tx)).map_err(|_| ())?;
        if n > 0 {
            uart.write_all(&bufs.tx[..n]).await.map_err(|_| ())?;
        }
        // A trial image proves itself: meter running, broker connected, birth acknowledged.
        if ota.updater.on_trial() && flags.meter_running.load(Relaxed) && link.is_up() && link.birth_acked() {
            ota.proved();
            flags.on_trial.store(ota.updater.on_trial(), Relaxed);
        }
        if let Some(r) = ota.pending.take() {
            match link.report(&r, ms(), &mut bufs.tx) {
                Ok(n) => uart.write_all(&bufs.tx[..n]).await.map_err(|_| ())?,
                Err(_) => ota.pending = Some(r), // not up, or the window is full: next round
            }
        }
        ota.verify_if_due();
        if let Some(due) = ota.restart_due {
            if (ota.pending.is_none() && link.all_acked()) || Instant::now() >= due {
                let _ = uart.flush().await;
                restart();
            }
        }
        match select3(uart.read(&mut bufs.rx), Timer::after_millis(100), READING.wait()).await {
            Either3::First(Ok(0)) | Either3::First(Err(_)) => return Err(()),
            Either3::First(Ok(n)) => {
                let rx = &bufs.rx[..n];
                let (inbox, data) = (&mut ota.inbox, &mut ota.data);
                let mut take = |m: OtaMessage<'_>| match m {
                    OtaMessage::Offer(o) => *inbox = Inbox::Offer(o.clone()),
                    OtaMessage::Chunk(c) => {
                        let len = c.data.len().min(data.len());
                        data[..len].copy_from_slice(&c.data[..len]);
                        *inbox = Inbox::Chunk { rollout: c.rollout, offset: c.offset, len };
                    }
                };
                shared.with_outbox(|o| link.received_with(rx, o, &mut take)).map_err(|_| ())?;
                ota.handle();
            }
            Either3::Second(()) | Either3::Third(()) => ota.handle(),
        }
    }
}
