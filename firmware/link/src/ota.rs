//! Fleet updates inside the MQTT session, the same on every board and transport (Wi-Fi on the
//! Pico W and the ESP32-C3, the radio-less Pico's serial line): [`session`] moves bytes between
//! the core's [`Uplink`] and any `embedded-io-async` stream, and hands offers and chunks to the
//! core's [`Updater`] over the board's [`Chip`].
//!
//! Offers and chunks are copied out of the session's receive path and handled outside the lock
//! the audio loop shares (a flash erase stalls the chip for tens of ms). A trial image proves
//! itself — the device's own work running ([`Flags::working`]), broker connected, birth
//! acknowledged — before it is kept; until then the board feeds its watchdog only for
//! `GRIDSENTRY_OTA_TRIAL_S`, and a restart before the proof sends it back to the old image.

use crate::{Holds, Locked, READING};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use embassy_futures::select::{select3, Either3};
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read, Write};
use embedded_storage::nor_flash::NorFlash;
use gridsentry_firmware_core::mqtt::session::RX_MAX;
use gridsentry_firmware_core::mqtt::SessionError;
use gridsentry_firmware_core::ota::{Boot, Slots, Step, Updater};
use gridsentry_firmware_core::uplink::{OtaMessage, Stored, Uplink};
use gridsentry_sensors::codec::JSON_MAX;
use gridsentry_sensors::ota::{Chunk, Offer, Report, CHUNK_MAX};

/// The board's side of updates: the progress record's flash and the slots, both on the chip's
/// one flash.
pub trait Chip {
    /// The progress record's sector.
    type Record: NorFlash;
    /// The second slot and the boot state.
    type Slots<'a>: Slots
    where
        Self: 'a;
    /// Both, borrowed together.
    fn parts(&mut self) -> (&mut Self::Record, Self::Slots<'_>);
    /// Restarts the chip (into the new image, or back to the old one).
    fn restart(&mut self) -> !;
}

/// What the device's own work and the session tell each other.
pub struct Flags {
    /// The device's work has run since the start (the meter made a report, the gateway's
    /// radio scanned): part of a trial image's proof.
    pub working: AtomicBool,
    /// Running a new image on trial (the board stops feeding its watchdog when the trial is
    /// overdue); cleared once the image proved itself and was kept.
    pub on_trial: AtomicBool,
}

impl Flags {
    /// Nothing yet.
    pub const fn new() -> Self {
        Flags { working: AtomicBool::new(false), on_trial: AtomicBool::new(false) }
    }
}

impl Default for Flags {
    fn default() -> Self {
        Self::new()
    }
}

/// What arrived for the updater, copied out of the session's buffer.
#[allow(clippy::large_enum_variant)]
enum Inbox {
    Empty,
    Offer(Offer),
    Chunk { rollout: u32, offset: u32, len: usize },
}

/// The update side: the chip, the core's updater, what waits to be said.
pub struct Ota<C: Chip> {
    chip: C,
    updater: Updater,
    flags: &'static Flags,
    /// The latest report not yet sent (a newer one replaces it).
    pending: Option<Report>,
    /// Restart once the broker has the last report.
    restart_due: Option<Instant>,
    /// Check the downloaded image once `verifying` is out.
    verify_due: bool,
    inbox: Inbox,
    data: [u8; CHUNK_MAX as usize],
}

impl<C: Chip> Ota<C> {
    /// Finishes what the previous run left, after a start the boot state says is `boot`.
    pub fn start(mut chip: C, mut updater: Updater, boot: Boot, flags: &'static Flags) -> Self {
        let step = {
            let (rec, mut slots) = chip.parts();
            updater.start(boot, rec, &mut slots)
        };
        flags.on_trial.store(updater.on_trial(), Relaxed);
        let mut ota = Ota {
            chip,
            updater,
            flags,
            pending: None,
            restart_due: None,
            verify_due: false,
            inbox: Inbox::Empty,
            data: [0; CHUNK_MAX as usize],
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

    fn verify_if_due(&mut self) {
        if self.verify_due && self.pending.is_none() {
            self.verify_due = false;
            let step = {
                let (rec, mut slots) = self.chip.parts();
                self.updater.verify(rec, &mut slots)
            };
            self.follow(Some(step));
        }
    }

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

    /// Running a new image that has not proved itself yet.
    pub fn on_trial(&self) -> bool {
        self.updater.on_trial()
    }

    /// Keeps a trial image once it proved itself.
    fn prove_if_due<const W: usize>(&mut self, link: &Uplink<W>) {
        if self.updater.on_trial() && self.flags.working.load(Relaxed) && link.is_up() && link.birth_acked() {
            let step = {
                let (rec, mut slots) = self.chip.parts();
                self.updater.proved(rec, &mut slots)
            };
            self.follow(step);
            self.flags.on_trial.store(self.updater.on_trial(), Relaxed);
        }
    }
}

/// Buffers of one session (static: part of the measured RAM).
pub struct SessionBuffers {
    scratch: [u8; JSON_MAX],
    tx: [u8; 1536],
    rx: [u8; 512],
}

impl SessionBuffers {
    /// Zeroed.
    pub const fn new() -> Self {
        SessionBuffers { scratch: [0; JSON_MAX], tx: [0; 1536], rx: [0; 512] }
    }
}

impl Default for SessionBuffers {
    fn default() -> Self {
        Self::new()
    }
}

const _: () = assert!(RX_MAX >= CHUNK_MAX as usize + 128);

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The stream failed or the other end closed it.
    Io,
    /// The session asked to drop the connection (refused, timeout, garbage).
    Session(SessionError),
}

/// One MQTT session over `io`: CONNECT, then readings, acknowledgements and updates until the
/// stream or the session fails. Returns why, and whether the session had come up. A restart
/// into a new image leaves through [`Chip::restart`].
pub async fn session<T: Stored, const N: usize, const W: usize, IO: Read + Write, C: Chip>(
    io: &mut IO,
    link: &mut Uplink<W>,
    shared: &Locked<impl Holds<T, N>>,
    ota: &mut Ota<C>,
    bufs: &mut SessionBuffers,
) -> (SessionEnd, bool) {
    let ms = || Instant::now().as_millis();
    let n = match shared.with_outbox(|o| link.connected(o, ms(), crate::now(), &mut bufs.tx)) {
        Ok(n) => n,
        Err(e) => return (SessionEnd::Session(e), false),
    };
    if io.write_all(&bufs.tx[..n]).await.is_err() {
        return (SessionEnd::Io, false);
    }
    loop {
        let up = link.is_up();
        let n = match shared.with_outbox(|o| link.poll(o, ms(), &mut bufs.scratch, &mut bufs.tx)) {
            Ok(n) => n,
            Err(e) => return (SessionEnd::Session(e), up),
        };
        if n > 0 && io.write_all(&bufs.tx[..n]).await.is_err() {
            return (SessionEnd::Io, up);
        }
        ota.prove_if_due(link);
        if let Some(r) = ota.pending.take() {
            match link.report(&r, ms(), &mut bufs.tx) {
                Ok(n) => {
                    if io.write_all(&bufs.tx[..n]).await.is_err() {
                        return (SessionEnd::Io, up);
                    }
                }
                Err(_) => ota.pending = Some(r), // not up, or the window is full: next round
            }
        }
        ota.verify_if_due();
        if let Some(due) = ota.restart_due {
            if (ota.pending.is_none() && link.all_acked()) || Instant::now() >= due {
                let _ = io.flush().await;
                ota.chip.restart();
            }
        }
        // Wake for the broker's bytes, a new reading, or every 100 ms for the keep-alive.
        match select3(io.read(&mut bufs.rx), Timer::after_millis(100), READING.wait()).await {
            Either3::First(Ok(0)) | Either3::First(Err(_)) => return (SessionEnd::Io, up),
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
                if let Err(e) = shared.with_outbox(|o| link.received_with(rx, o, &mut take)) {
                    return (SessionEnd::Session(e), up);
                }
                ota.handle();
            }
            Either3::Second(()) | Either3::Third(()) => ota.handle(),
        }
    }
}
