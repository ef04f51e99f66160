//! The download's progress, in one flash sector of its own: which image is coming (its manifest)
//! and which of its sectors are complete. It is what lets a device resume after a power cut from
//! what reached its flash — not from zero, and never from a sector that was half written.
//!
//! Layout (all little-endian), written in this order:
//! - 0..252: header — magic `GSOT`, roll-out, size, SHA-256, signature, version (24 bytes,
//!   zero-padded), CRC-32 of the bytes before it;
//! - 252..256: the commit word, 0 once the header is complete (a cut while writing the header
//!   leaves it 0xFFFFFFFF: no record);
//! - 256..: one 4-byte marker per image sector, 0 once that sector's bytes are all written. A
//!   marker is written only after its sector's data, so a cut during a marker write (some bits
//!   programmed) still means the data is complete; a cut during the data leaves the marker erased
//!   and the sector is downloaded again.

use embedded_storage::nor_flash::NorFlash;
use gridsentry_sensors::ota::Offer;

/// Bytes of image per progress marker (the DFU slot's erase size on both chips).
pub const SECTOR: u32 = 4096;
const MAGIC: &[u8; 4] = b"GSOT";
const HEADER: usize = 252;
const MARKERS: u32 = 256;
/// Most image sectors one record tracks (3.75 MB).
pub const MAX_SECTORS: u32 = (SECTOR - MARKERS) / 4;

/// A download in progress, as the record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The roll-out it came with.
    pub rollout: u32,
    /// Image length, bytes.
    pub size: u32,
    /// SHA-256 of the image (as offered).
    pub sha256: [u8; 32],
    /// Ed25519 signature over SHA-512 of the image.
    pub sig: [u8; 64],
    /// The image's firmware version.
    pub version: heapless::String<24>,
    /// Image sectors complete, from the start.
    pub sectors_done: u32,
}

impl Record {
    /// A new record for `offer` (its hex fields already checked).
    pub fn for_offer(offer: &Offer) -> Option<Record> {
        Some(Record {
            rollout: offer.rollout,
            size: offer.size,
            sha256: offer.sha256_bytes().ok()?,
            sig: offer.sig_bytes().ok()?,
            version: heapless::String::try_from(offer.version.as_str()).ok()?,
            sectors_done: 0,
        })
    }

    /// Whether it is the download `offer` describes.
    pub fn is_for(&self, offer: &Offer) -> bool {
        offer.rollout == self.rollout
            && offer.size == self.size
            && offer.sha256_bytes().ok() == Some(self.sha256)
    }

    /// Bytes complete (where the download resumes).
    pub fn resume_at(&self) -> u32 {
        (self.sectors_done * SECTOR).min(self.size)
    }

    /// Whether every byte is in flash.
    pub fn complete(&self) -> bool {
        self.resume_at() == self.size
    }

    fn header(&self) -> [u8; 256] {
        let mut h = [0xffu8; 256];
        h[..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&self.rollout.to_le_bytes());
        h[8..12].copy_from_slice(&self.size.to_le_bytes());
        h[12..44].copy_from_slice(&self.sha256);
        h[44..108].copy_from_slice(&self.sig);
        h[108..132].fill(0);
        h[108..108 + self.version.len()].copy_from_slice(self.version.as_bytes());
        let crc = crc32(&h[..132]);
        h[132..136].copy_from_slice(&crc.to_le_bytes());
        h
    }
}

/// Reads the record in `flash` (its own sector, at offset 0), if a committed one is there.
pub fn read<F: NorFlash>(flash: &mut F) -> Option<Record> {
    let mut h = [0u8; 256];
    flash.read(0, &mut h).ok()?;
    if &h[..4] != MAGIC || h[252..256] != [0; 4] {
        return None;
    }
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if crc32(&h[..132]) != word(132) {
        return None;
    }
    let version_len = h[108..132].iter().position(|&b| b == 0).unwrap_or(24);
    let version = core::str::from_utf8(&h[108..108 + version_len]).ok()?;
    let size = word(8);
    if size == 0 || size.div_ceil(SECTOR) > MAX_SECTORS {
        return None;
    }
    let mut r = Record {
        rollout: word(4),
        size,
        sha256: h[12..44].try_into().ok()?,
        sig: h[44..108].try_into().ok()?,
        version: heapless::String::try_from(version).ok()?,
        sectors_done: 0,
    };
    let mut marker = [0u8; 4];
    while r.sectors_done < size.div_ceil(SECTOR) {
        flash.read(MARKERS + 4 * r.sectors_done, &mut marker).ok()?;
        if marker == [0xff; 4] {
            break;
        }
        r.sectors_done += 1;
    }
    Some(r)
}

/// Starts a record: erases the sector, writes the header, then commits it.
pub fn begin<F: NorFlash>(flash: &mut F, r: &Record) -> Result<(), F::Error> {
    flash.erase(0, SECTOR)?;
    let h = r.header();
    flash.write(0, &h[..HEADER])?;
    flash.write(HEADER as u32, &[0; 4])
}

/// Marks image sector `k` complete.
pub fn sector_done<F: NorFlash>(flash: &mut F, k: u32) -> Result<(), F::Error> {
    flash.write(MARKERS + 4 * k, &[0; 4])
}

/// Forgets the record (the update ended).
pub fn clear<F: NorFlash>(flash: &mut F) -> Result<(), F::Error> {
    flash.erase(0, SECTOR)
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_from(!0, bytes)
}

/// The same with the register starting at `start` instead of all ones (ESP-IDF's otadata
/// starts it at zero).
pub fn crc32_from(start: u32, bytes: &[u8]) -> u32 {
    let mut crc = start;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
