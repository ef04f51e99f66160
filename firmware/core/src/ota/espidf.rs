//! Trial boots on the ESP32-C3, decided by the app: ESP-IDF's OTA data partition (`otadata`)
//! read and written as its boot loader reads it, with a boot counter the app keeps itself.
//!
//! Why in the app: the boot loader `espflash` ships is not built with rollback
//! (`CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`), so nothing but the app can send a new image back.
//! That boot loader boots the app slot of the valid otadata entry with the highest sequence
//! number (slot = (seq − 1) mod 2; an entry is valid when its CRC matches and its state is not
//! `Invalid` or `Aborted`), and falls back to the other slot when the image there does not
//! check out. So:
//!
//! - **marking** an image writes a new entry — the next sequence number of the new slot's
//!   parity, state `New` — into the sector that does *not* hold the current entry: a cut while
//!   writing leaves the current entry as it was (the old image boots). The entry goes in as
//!   label and state first, then the sequence number, then the CRC: a valid CRC means the rest
//!   is in flash.
//! - a **trial boot** (state `New`, or `PendingVerify` should a rollback boot loader be used)
//!   programs one more word of the entry's label to zero — bits cleared, no erase, so a cut
//!   costs at most one count — and reverts once [`TRIAL_BOOTS`] boots passed without proof.
//! - **keeping** an image writes a `Valid` entry for the same slot (sequence + 2);
//!   **reverting** writes an entry for the other slot, marked in its label so that the old
//!   image, when it boots, knows to report `rolled_back`.
//!
//! A boot on the slot the entry does not name means the boot loader refused the new image:
//! that is a revert too.

use super::{sign, Boot, Slots, VerifyError};
use embedded_storage::nor_flash::NorFlash;

/// Boots a new image gets to prove itself (the count includes the first).
pub const TRIAL_BOOTS: u32 = 3;
/// One otadata entry per sector.
const SECTOR: u32 = 4096;
const NEW: u32 = 0;
const PENDING_VERIFY: u32 = 1;
const VALID: u32 = 2;
const INVALID: u32 = 3;
const ABORTED: u32 = 4;
/// Label word 0 of an entry the app wrote to revert.
const REVERTED: [u8; 4] = *b"GSRV";

/// One otadata entry (32 bytes: sequence, label, state, CRC-32 of the sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number: the highest valid one is booted.
    pub seq: u32,
    /// Free for the app (the boot loader ignores it): revert mark and trial boot counter.
    pub label: [u8; 20],
    /// ESP-IDF's image state.
    pub state: u32,
    /// CRC-32 of the sequence number, as ESP-IDF computes it.
    pub crc: u32,
}

/// ESP-IDF's CRC of an entry: `esp_rom_crc32_le(UINT32_MAX, &seq, 4)`.
pub fn seq_crc(seq: u32) -> u32 {
    super::record::crc32_from(0, &seq.to_le_bytes())
}

impl Entry {
    fn parse(b: &[u8; 32]) -> Entry {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut label = [0; 20];
        label.copy_from_slice(&b[4..24]);
        Entry { seq: word(0), label, state: word(24), crc: word(28) }
    }

    /// Whether the boot loader takes it.
    pub fn valid(&self) -> bool {
        self.seq != u32::MAX
            && self.crc == seq_crc(self.seq)
            && self.state != INVALID
            && self.state != ABORTED
    }

    /// The app slot it boots (0: `ota_0`, 1: `ota_1`).
    pub fn slot(&self) -> u8 {
        (self.seq.wrapping_sub(1) % 2) as u8
    }

    fn trial_boots(&self) -> u32 {
        self.label[4..].chunks_exact(4).filter(|w| *w != [0xff; 4]).count() as u32
    }
}

/// The otadata partition (8 KB: one entry at the start of each 4 KB sector).
pub struct OtaData<F: NorFlash> {
    /// The partition, offset 0 = its start.
    pub flash: F,
}

impl<F: NorFlash> OtaData<F> {
    fn entry(&mut self, i: u32) -> Result<Entry, VerifyError> {
        let mut b = [0u8; 32];
        self.flash.read(i * SECTOR, &mut b).map_err(|_| VerifyError::Flash)?;
        Ok(Entry::parse(&b))
    }

    /// The entry the boot loader follows and the sector it is in (none: both blank or
    /// broken, and the boot loader boots `ota_0`).
    pub fn selected(&mut self) -> Result<Option<(u32, Entry)>, VerifyError> {
        let (a, b) = (self.entry(0)?, self.entry(1)?);
        Ok(match (a.valid(), b.valid()) {
            (true, true) if b.seq > a.seq => Some((1, b)),
            (true, _) => Some((0, a)),
            (false, true) => Some((1, b)),
            (false, false) => None,
        })
    }

    /// The slot the next boot starts.
    pub fn next_boot(&mut self) -> Result<u8, VerifyError> {
        Ok(self.selected()?.map_or(0, |(_, e)| e.slot()))
    }

    /// Points the boot loader at `slot` with `state`, in the sector the current entry is not in.
    fn select(&mut self, slot: u8, state: u32, reverted: bool) -> Result<(), VerifyError> {
        let current = self.selected()?;
        let (sector, seq) = match current {
            Some((i, e)) => (1 - i, e.seq + 1 + u32::from(e.slot() == slot)),
            None => (0, u32::from(slot) + 1),
        };
        let mut b = [0xffu8; 32];
        if reverted {
            b[4..8].copy_from_slice(&REVERTED);
        }
        b[24..28].copy_from_slice(&state.to_le_bytes());
        let at = sector * SECTOR;
        let f = &mut self.flash;
        f.erase(at, at + SECTOR).map_err(|_| VerifyError::Flash)?;
        f.write(at + 4, &b[4..28]).map_err(|_| VerifyError::Flash)?;
        f.write(at, &seq.to_le_bytes()).map_err(|_| VerifyError::Flash)?;
        f.write(at + 28, &seq_crc(seq).to_le_bytes()).map_err(|_| VerifyError::Flash)
    }

    /// Marks `slot` (the one not running) for a trial at the next boot.
    pub fn mark_trial(&mut self, slot: u8) -> Result<(), VerifyError> {
        self.select(slot, NEW, false)
    }

    /// Keeps the running image in `booted` (after a trial or a revert); nothing to write when
    /// the entry already says so.
    pub fn keep(&mut self, booted: u8) -> Result<(), VerifyError> {
        match self.selected()? {
            Some((_, e)) if e.slot() == booted && e.state == VALID && e.label[..4] != REVERTED => Ok(()),
            None if booted == 0 => Ok(()),
            _ => self.select(booted, VALID, false),
        }
    }

    /// What this boot is, with the app in slot `booted`: counts a trial boot, and past
    /// [`TRIAL_BOOTS`] points the boot loader back at the other slot and returns `None` — the
    /// board restarts at once.
    pub fn at_boot(&mut self, booted: u8) -> Result<Option<Boot>, VerifyError> {
        let Some((sector, e)) = self.selected()? else { return Ok(Some(Boot::Normal)) };
        if e.slot() != booted || e.label[..4] == REVERTED {
            return Ok(Some(Boot::Reverted));
        }
        if e.state != NEW && e.state != PENDING_VERIFY {
            return Ok(Some(Boot::Normal));
        }
        let boots = e.trial_boots();
        if boots >= TRIAL_BOOTS {
            self.select(1 - booted, VALID, true)?;
            return Ok(None);
        }
        let word = sector * SECTOR + 8 + 4 * boots;
        self.flash.write(word, &[0; 4]).map_err(|_| VerifyError::Flash)?;
        Ok(Some(Boot::Trial))
    }
}

/// [`Slots`] on the ESP32-C3: the app slot not running, otadata, and the fleet's public key.
pub struct EspSlots<F: NorFlash> {
    /// The OTA data partition.
    pub otadata: OtaData<F>,
    /// The app slot not running: the download goes there.
    pub other: F,
    /// The app slot running (0: `ota_0`).
    pub booted: u8,
    /// The fleet's signing key (none: every image is refused).
    pub public_key: Option<[u8; 32]>,
}

impl<F: NorFlash> Slots for EspSlots<F> {
    fn capacity(&self) -> u32 {
        self.other.capacity() as u32
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), VerifyError> {
        // Chunks come in order and never cross a sector: its first one erases it.
        if offset.is_multiple_of(SECTOR) {
            self.other.erase(offset, offset + SECTOR).map_err(|_| VerifyError::Flash)?;
        }
        self.other.write(offset, data).map_err(|_| VerifyError::Flash)
    }

    fn verify_and_mark(&mut self, size: u32, sig: &[u8; 64]) -> Result<(), VerifyError> {
        sign::verify(&mut self.other, size, sig, self.public_key.as_ref())?;
        self.otadata.mark_trial(1 - self.booted)
    }

    fn mark_booted(&mut self) -> Result<(), VerifyError> {
        self.otadata.keep(self.booted)
    }
}
