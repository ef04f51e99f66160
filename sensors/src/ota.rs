//! The over-the-air update contract (device ⇄ daemon), on the device's own MQTT session.
//!
//! Why MQTT and not HTTP range requests: the boxes already hold one authenticated, persistent
//! MQTT session; a second protocol would mean a second TLS stack, credentials and firewall rule
//! on both chips. Why the device asks for every chunk (pull) instead of the daemon pushing the
//! image: the device alone knows what reached its flash, so after a power cut it resumes from
//! there, and it never receives faster than it can write.
//!
//! Topics, under `gs/v1/{site}/{device}/`:
//! - `ota` (daemon → device, QoS 1): an [`Offer`] — JSON, the manifest of one signed image;
//! - `ota/chunk` (daemon → device, QoS 1): binary, [`Chunk`]: `rollout` (u32 LE), `offset` (u32
//!   LE), then the image's bytes from that offset;
//! - `ota/state` (device → daemon, QoS 1, retained): a [`Report`] — JSON: board, running version
//!   and slot, and where an update stands; in state `downloading` its `offset` is also the
//!   request for the chunk that starts there.
//!
//! JSON on a device: serde-json-core, reading with `from_slice_escaped` (plain `from_slice` leaves
//! escapes in strings).
//!
//! The image is signed offline: `sig` is Ed25519 over the SHA-512 digest of the image (as
//! embassy-boot's `verify_and_mark_updated` checks it), `sha256` guards the transfer.

use crate::id::Id;
use serde::{Deserialize, Serialize};

/// Contract version, in every message.
pub const VERSION: u8 = 1;
/// Longest board or version string.
pub const NAME_MAX: usize = 24;
/// Longest error text a device reports.
pub const ERROR_MAX: usize = 64;
/// Bytes before the image data in a chunk message.
pub const CHUNK_HEADER: usize = 8;
/// Largest chunk the daemon may offer (a device's MQTT buffer must hold it plus the header).
pub const CHUNK_MAX: u32 = 4096;

/// The manifest of one image, offered to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// Contract version ([`VERSION`]).
    pub v: u8,
    /// Roll-out id (chunks and reports name it).
    pub rollout: u32,
    /// Board the image is built for (`rp2040`, `esp32c3`, …): a device refuses another board's.
    pub board: heapless::String<NAME_MAX>,
    /// Firmware version of the image.
    pub version: heapless::String<NAME_MAX>,
    /// Image length, bytes.
    pub size: u32,
    /// SHA-256 of the image, lowercase hex.
    pub sha256: heapless::String<64>,
    /// Ed25519 signature of SHA-512(image), lowercase hex.
    pub sig: heapless::String<128>,
    /// Bytes per chunk (the last one may be shorter), at most [`CHUNK_MAX`].
    pub chunk: u32,
}

/// Why an offer or a chunk is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OtaError {
    /// Not the contract version this side speaks.
    #[error("contract version {0}, expected 1")]
    Version(u8),
    /// A hex field of the wrong length or with a non-hex character.
    #[error("{0} is not lowercase hex of the right length")]
    Hex(&'static str),
    /// Chunk size 0 or over [`CHUNK_MAX`], or an empty image.
    #[error("chunk size or image size out of range")]
    Size,
    /// A chunk message shorter than its header.
    #[error("chunk message shorter than its 8-byte header")]
    Short,
}

impl Offer {
    /// Checks what serde cannot: version, hex fields, sizes.
    pub fn check(&self) -> Result<(), OtaError> {
        if self.v != VERSION {
            return Err(OtaError::Version(self.v));
        }
        if self.chunk == 0 || self.chunk > CHUNK_MAX || self.size == 0 {
            return Err(OtaError::Size);
        }
        self.sha256_bytes()?;
        self.sig_bytes()?;
        Ok(())
    }

    /// The SHA-256, decoded.
    pub fn sha256_bytes(&self) -> Result<[u8; 32], OtaError> {
        unhex(&self.sha256).ok_or(OtaError::Hex("sha256"))
    }

    /// The signature, decoded.
    pub fn sig_bytes(&self) -> Result<[u8; 64], OtaError> {
        unhex(&self.sig).ok_or(OtaError::Hex("sig"))
    }
}

/// Lowercase hex of `N` bytes into bytes.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(out)
}

/// One piece of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Roll-out id.
    pub rollout: u32,
    /// Where `data` starts in the image.
    pub offset: u32,
    /// The bytes.
    pub data: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// Reads a chunk message.
    pub fn parse(b: &'a [u8]) -> Result<Chunk<'a>, OtaError> {
        if b.len() < CHUNK_HEADER {
            return Err(OtaError::Short);
        }
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Ok(Chunk { rollout: word(0), offset: word(4), data: &b[CHUNK_HEADER..] })
    }

    /// The message's header (the data follows it).
    pub fn header(rollout: u32, offset: u32) -> [u8; CHUNK_HEADER] {
        let mut h = [0u8; CHUNK_HEADER];
        h[..4].copy_from_slice(&rollout.to_le_bytes());
        h[4..].copy_from_slice(&offset.to_le_bytes());
        h
    }
}

/// Where a device's update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// No update in progress (running `version`).
    Idle,
    /// Fetching the image; `offset` bytes are in flash, the next chunk starts there.
    Downloading,
    /// The whole image is in flash; checking its hash and signature.
    Verifying,
    /// Verified and marked: restarting into it (trial boot).
    Rebooting,
    /// Running the new image on trial: it has not proved itself yet (a restart now goes back
    /// to the previous image).
    Trial,
    /// Running the new image, which proved itself and was confirmed (kept for good).
    Confirmed,
    /// The new image did not confirm; the device is back on the previous one.
    RolledBack,
    /// The update was abandoned (`error` says why); still running the previous image.
    Failed,
}

impl UpdateState {
    /// The name used on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpdateState::Idle => "idle",
            UpdateState::Downloading => "downloading",
            UpdateState::Verifying => "verifying",
            UpdateState::Rebooting => "rebooting",
            UpdateState::Trial => "trial",
            UpdateState::Confirmed => "confirmed",
            UpdateState::RolledBack => "rolled_back",
            UpdateState::Failed => "failed",
        }
    }
}

/// What a device says about itself on `ota/state` (retained: the daemon learns the fleet from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Contract version ([`VERSION`]).
    pub v: u8,
    /// Board (`rp2040`, `rp2040-offline`, `esp32c3`, `esp32c3-wristband`, `host`): the Pico W and
    /// the radio-less Pico are different boards — one's app would not run on the other.
    pub board: heapless::String<NAME_MAX>,
    /// Version running now.
    pub version: heapless::String<NAME_MAX>,
    /// Slot running now (`active` on the RP2040, where the boot loader swaps images in;
    /// `ota_0`/`ota_1` on the ESP32-C3).
    #[serde(default)]
    pub slot: heapless::String<8>,
    /// Where the update stands.
    pub state: UpdateState,
    /// The roll-out it is about (none when idle).
    #[serde(default)]
    pub rollout: Option<u32>,
    /// Downloading: bytes in flash (the next chunk's offset).
    #[serde(default)]
    pub offset: Option<u32>,
    /// Failed or rolled back: why.
    #[serde(default)]
    pub error: Option<heapless::String<ERROR_MAX>>,
}

/// The three OTA topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtaTopic {
    /// `…/ota`: offers.
    Offer,
    /// `…/ota/chunk`: image pieces.
    Chunk,
    /// `…/ota/state`: device reports.
    State,
}

impl OtaTopic {
    /// The topic's suffix after `gs/v1/{site}/{device}/`.
    pub const fn suffix(self) -> &'static str {
        match self {
            OtaTopic::Offer => "ota",
            OtaTopic::Chunk => "ota/chunk",
            OtaTopic::State => "ota/state",
        }
    }

    /// Reads `gs/v1/{site}/{device}/ota[/chunk|/state]`.
    pub fn parse(s: &str) -> Option<(Id, Id, OtaTopic)> {
        let rest = s.strip_prefix("gs/v1/")?;
        let mut it = rest.splitn(3, '/');
        let (site, device, tail) = (it.next()?, it.next()?, it.next()?);
        let kind =
            [OtaTopic::Offer, OtaTopic::Chunk, OtaTopic::State].into_iter().find(|k| k.suffix() == tail)?;
        Some((Id::new(site).ok()?, Id::new(device).ok()?, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_round_trips_and_short_ones_are_refused() {
        let mut msg = std::vec::Vec::from(Chunk::header(7, 4096));
        msg.extend_from_slice(b"abc");
        assert_eq!(Chunk::parse(&msg), Ok(Chunk { rollout: 7, offset: 4096, data: b"abc" }));
        assert_eq!(Chunk::parse(&msg[..7]), Err(OtaError::Short));
    }

    #[test]
    fn topics_parse_and_others_do_not() {
        let (s, d, k) = OtaTopic::parse("gs/v1/plaza-1/box-1/ota/state").unwrap();
        assert_eq!((s.as_str(), d.as_str(), k), ("plaza-1", "box-1", OtaTopic::State));
        assert_eq!(OtaTopic::parse("gs/v1/p/d/ota").unwrap().2, OtaTopic::Offer);
        for bad in ["gs/v1/p/d/noise", "gs/v1/p/d/ota/x", "gs/v1/p+/d/ota", "gs/v2/p/d/ota", "gs/v1/p/ota"] {
            assert!(OtaTopic::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn offers_are_checked() {
        let ok = Offer {
            v: 1,
            rollout: 1,
            board: "rp2040".try_into().unwrap(),
            version: "0.2.0".try_into().unwrap(),
            size: 10,
            sha256: heapless::String::try_from("ab".repeat(32).as_str()).unwrap(),
            sig: heapless::String::try_from("cd".repeat(64).as_str()).unwrap(),
            chunk: 1024,
        };
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(ok.sha256_bytes().unwrap()[0], 0xab);
        let mut bad = ok.clone();
        bad.sha256 = heapless::String::try_from("AB".repeat(32).as_str()).unwrap();
        assert_eq!(bad.check(), Err(OtaError::Hex("sha256")));
        let mut bad = ok.clone();
        bad.chunk = CHUNK_MAX + 1;
        assert_eq!(bad.check(), Err(OtaError::Size));
        let mut bad = ok;
        bad.v = 2;
        assert_eq!(bad.check(), Err(OtaError::Version(2)));
    }
}
