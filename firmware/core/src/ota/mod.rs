//! The device's side of fleet updates (`gridsentry_sensors::ota`), without I/O: the board's
//! network task hands it offers and chunks and publishes the reports it returns; the board's
//! [`Slots`] write the second slot, check the signature and mark the image for a trial boot.
//!
//! The order of events is what keeps a device alive through power cuts:
//! 1. an offer for this board and another version starts a [`record`] (or resumes the one for
//!    the same image) and asks for the chunk where the flash stands;
//! 2. chunks are written in order; each completed sector is marked in the record;
//! 3. with every byte in flash the signature is checked over the slot's contents (never over
//!    what came over the air) and only then is the image marked for the next boot;
//! 4. after the restart the bootloader runs it on trial: the app calls [`Updater::proved`] once
//!    it has proved itself (meter running, broker connected, birth acknowledged) and the image
//!    is kept; a restart before that makes the bootloader go back to the old one, which then
//!    reports `rolled_back`.
//!
//! A cut anywhere in 1–3 resumes at the first incomplete sector on the next boot; a cut during
//! the swap is the bootloader's to finish (embassy-boot's swap is restartable; on the ESP32-C3
//! the switch is one otadata write).

pub mod espidf;
pub mod record;
pub mod sign;

use embedded_storage::nor_flash::NorFlash;
use gridsentry_sensors::ota::{Chunk, Offer, Report, UpdateState, VERSION};
pub use record::{Record, SECTOR};

/// What the bootloader did at this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// Runs the image it ran before.
    Normal,
    /// Runs a new image on trial: it must prove itself before the next restart.
    Trial,
    /// Went back to the previous image (the new one did not prove itself).
    Reverted,
}

/// Why an image was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The signature does not match the slot's contents and the built-in public key.
    Signature,
    /// Reading the slot or writing the boot state failed.
    Flash,
}

/// The second slot and the boot state, as the board's bootloader library provides them.
pub trait Slots {
    /// Largest image the second slot takes.
    fn capacity(&self) -> u32;
    /// Writes image bytes at `offset` (erasing a sector on its first write after a start).
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), VerifyError>;
    /// Checks the signature of the slot's first `size` bytes and marks the image for a trial boot.
    fn verify_and_mark(&mut self, size: u32, sig: &[u8; 64]) -> Result<(), VerifyError>;
    /// Keeps the running image (ends the trial, or acknowledges a revert).
    fn mark_booted(&mut self) -> Result<(), VerifyError>;
}

/// What the board does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Publish this report (retained, QoS 1).
    Report(Report),
    /// Publish this report (`verifying`), then call [`Updater::verify`]: checking a large image
    /// takes a while on a small chip, and the daemon should know why the device is quiet.
    Verify(Report),
    /// Publish this report, wait for its acknowledgement, then restart into the new image.
    Restart(Report),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Downloading,
    Verifying,
    /// Running a new image that has not proved itself yet.
    Trial,
    Restarting,
}

/// The update state of one device.
pub struct Updater {
    board: &'static str,
    version: &'static str,
    slot: &'static str,
    phase: Phase,
    record: Option<Record>,
    /// Bytes written in this download (a sector boundary marks the record).
    at: u32,
    chunk: u32,
    last_heard_ms: u64,
}

/// Ask again for a chunk that did not come within this time.
pub const ASK_AGAIN_MS: u64 = 5_000;

impl Updater {
    /// The updater of a device running `version` of `board` from `slot`.
    pub const fn new(board: &'static str, version: &'static str, slot: &'static str) -> Self {
        Updater { board, version, slot, phase: Phase::Idle, record: None, at: 0, chunk: 0, last_heard_ms: 0 }
    }

    fn report(
        &self,
        state: UpdateState,
        rollout: Option<u32>,
        offset: Option<u32>,
        error: Option<&str>,
    ) -> Report {
        fn s<const N: usize>(v: &str) -> heapless::String<N> {
            heapless::String::try_from(v).unwrap_or_default()
        }
        Report {
            v: VERSION,
            board: s(self.board),
            version: s(self.version),
            slot: s(self.slot),
            state,
            rollout,
            offset,
            error: error.map(|e| heapless::String::try_from(e).unwrap_or_default()),
        }
    }

    /// What to say after a boot (the first report of every connection comes from
    /// [`Updater::current`]); finishes what the previous run left in `rec`.
    pub fn start<F: NorFlash, S: Slots>(&mut self, boot: Boot, rec: &mut F, slots: &mut S) -> Step {
        let record = record::read(rec);
        match (boot, record) {
            (Boot::Trial, Some(r)) => {
                self.phase = Phase::Trial;
                self.record = Some(r);
                Step::Report(self.current())
            }
            (Boot::Trial, None) => {
                // A trial image with nothing to confirm for (record lost): keep it once proved.
                self.phase = Phase::Trial;
                Step::Report(self.current())
            }
            (Boot::Reverted, r) => {
                let _ = slots.mark_booted();
                let _ = record::clear(rec);
                let rollout = r.map(|r| r.rollout);
                Step::Report(self.report(
                    UpdateState::RolledBack,
                    rollout,
                    None,
                    Some("the new image did not prove itself"),
                ))
            }
            (Boot::Normal, Some(r)) if r.version.as_str() == self.version => {
                // Confirmed, then cut before the record was cleared.
                let _ = record::clear(rec);
                Step::Report(self.report(UpdateState::Confirmed, Some(r.rollout), None, None))
            }
            (Boot::Normal, Some(r)) if r.complete() => {
                // Every byte in flash, not yet marked (or cut while marking): check and mark.
                self.record = Some(r);
                self.verifying()
            }
            (Boot::Normal, Some(r)) => {
                self.phase = Phase::Downloading;
                self.at = r.resume_at();
                self.record = Some(r);
                Step::Report(self.current())
            }
            (Boot::Normal, None) => Step::Report(self.current()),
        }
    }

    /// The report that describes the device now (sent on every new connection; while
    /// downloading it asks for the next chunk).
    pub fn current(&self) -> Report {
        let rollout = self.record.as_ref().map(|r| r.rollout);
        match self.phase {
            Phase::Downloading => self.report(UpdateState::Downloading, rollout, Some(self.at), None),
            Phase::Verifying => self.report(UpdateState::Verifying, rollout, None, None),
            Phase::Restarting => self.report(UpdateState::Rebooting, rollout, None, None),
            Phase::Trial => self.report(UpdateState::Trial, rollout, None, None),
            Phase::Idle => self.report(UpdateState::Idle, None, None, None),
        }
    }

    /// The running image is on trial and waits for [`Updater::proved`].
    pub fn on_trial(&self) -> bool {
        self.phase == Phase::Trial
    }

    /// The new image proved itself: keep it.
    pub fn proved<F: NorFlash, S: Slots>(&mut self, rec: &mut F, slots: &mut S) -> Option<Step> {
        if self.phase != Phase::Trial {
            return None;
        }
        if slots.mark_booted().is_err() {
            return Some(Step::Report(self.report(
                UpdateState::Failed,
                None,
                None,
                Some("cannot keep the image"),
            )));
        }
        self.phase = Phase::Idle;
        let rollout = self.record.take().map(|r| r.rollout);
        let _ = record::clear(rec);
        Some(Step::Report(self.report(UpdateState::Confirmed, rollout, None, None)))
    }

    /// An offer arrived.
    pub fn offer<F: NorFlash, S: Slots>(
        &mut self,
        offer: &Offer,
        now_ms: u64,
        rec: &mut F,
        slots: &mut S,
    ) -> Option<Step> {
        let refuse =
            |why| Some(Step::Report(self.report(UpdateState::Failed, Some(offer.rollout), None, Some(why))));
        if matches!(self.phase, Phase::Trial | Phase::Restarting | Phase::Verifying)
            || offer.board.as_str() != self.board
        {
            return None;
        }
        if offer.version.as_str() == self.version {
            return Some(Step::Report(self.report(UpdateState::Confirmed, Some(offer.rollout), None, None)));
        }
        if offer.check().is_err() || !offer.chunk.is_power_of_two() || offer.chunk > SECTOR {
            return refuse("offer malformed");
        }
        if offer.size > slots.capacity() || offer.size.div_ceil(SECTOR) > record::MAX_SECTORS {
            return refuse("image larger than the slot");
        }
        if self.phase == Phase::Downloading && self.record.as_ref().is_some_and(|r| r.is_for(offer)) {
            // The same image again (offered once more): go on from where the flash stands.
            self.chunk = offer.chunk;
            self.last_heard_ms = now_ms;
            return Some(Step::Report(self.current()));
        }
        let resume = record::read(rec).filter(|r| r.is_for(offer));
        let r = match resume {
            Some(r) => r,
            None => {
                let r = Record::for_offer(offer)?;
                if record::begin(rec, &r).is_err() {
                    return refuse("cannot write the progress record");
                }
                r
            }
        };
        self.at = r.resume_at();
        self.record = Some(r);
        self.chunk = offer.chunk;
        self.phase = Phase::Downloading;
        self.last_heard_ms = now_ms;
        if self.at == offer.size {
            return Some(self.verifying());
        }
        Some(Step::Report(self.current()))
    }

    /// A chunk arrived.
    pub fn chunk<F: NorFlash, S: Slots>(
        &mut self,
        c: &Chunk<'_>,
        now_ms: u64,
        rec: &mut F,
        slots: &mut S,
    ) -> Option<Step> {
        let r = self.record.as_ref()?;
        if self.phase != Phase::Downloading
            || c.rollout != r.rollout
            || c.offset != self.at
            || c.data.is_empty()
        {
            return None; // a repeat, a stale one, or another roll-out's
        }
        let (size, rollout) = (r.size, r.rollout);
        let len = (c.data.len() as u32).min(size - self.at);
        if slots.write(self.at, &c.data[..len as usize]).is_err() {
            return Some(self.fail(rec, rollout, "cannot write the slot"));
        }
        let before = self.at / SECTOR;
        self.at += len;
        self.last_heard_ms = now_ms;
        let done = if self.at == size { size.div_ceil(SECTOR) } else { self.at / SECTOR };
        for k in before..done {
            if record::sector_done(rec, k).is_err() {
                return Some(self.fail(rec, rollout, "cannot write the progress record"));
            }
        }
        if let Some(r) = &mut self.record {
            r.sectors_done = done;
        }
        if self.at < size {
            return Some(Step::Report(self.current()));
        }
        Some(self.verifying())
    }

    fn verifying(&mut self) -> Step {
        self.phase = Phase::Verifying;
        let r = self.record.as_ref().map(|r| (r.rollout, r.size));
        Step::Verify(self.report(UpdateState::Verifying, r.map(|x| x.0), r.map(|x| x.1), None))
    }

    /// Nothing heard for a while: ask for the chunk again.
    pub fn tick(&mut self, now_ms: u64) -> Option<Step> {
        if self.phase == Phase::Downloading && now_ms.saturating_sub(self.last_heard_ms) >= ASK_AGAIN_MS {
            self.last_heard_ms = now_ms;
            return Some(Step::Report(self.current()));
        }
        None
    }

    fn fail<F: NorFlash>(&mut self, rec: &mut F, rollout: u32, why: &str) -> Step {
        self.phase = Phase::Idle;
        self.record = None;
        let _ = record::clear(rec);
        Step::Report(self.report(UpdateState::Failed, Some(rollout), None, Some(why)))
    }

    /// Every byte is in flash ([`Step::Verify`]): check the signature over the slot and mark
    /// it, or give up.
    pub fn verify<F: NorFlash, S: Slots>(&mut self, rec: &mut F, slots: &mut S) -> Step {
        let Some(r) = self.record.clone().filter(|_| self.phase == Phase::Verifying) else {
            return Step::Report(self.current());
        };
        match slots.verify_and_mark(r.size, &r.sig) {
            Ok(()) => {
                self.phase = Phase::Restarting;
                Step::Restart(self.report(UpdateState::Rebooting, Some(r.rollout), None, None))
            }
            Err(VerifyError::Signature) => self.fail(rec, r.rollout, "signature does not match"),
            Err(VerifyError::Flash) => self.fail(rec, r.rollout, "cannot read the slot or mark it"),
        }
    }
}
