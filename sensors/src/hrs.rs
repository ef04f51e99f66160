//! BLE Heart Rate Measurement characteristic (0x2A37) parser.
//!
//! Layout (Bluetooth SIG Heart Rate Service 1.0, §3.1):
//!
//! ```text
//! byte 0      flags: bit0 HR is uint16 | bits1-2 sensor contact | bit3 energy | bit4 RR present
//! 1 or 2 B    heart rate (uint8 or uint16 little-endian)
//! 2 B         energy expended, kJ (if bit3)
//! 2 B each    RR intervals, 1/1024 s, oldest first (if bit4; fill the rest of the packet)
//! ```
//! Contact bits: `0x` not supported, `10` supported but not detected, `11` detected. A band that
//! is off the wrist may still send a heart rate (often 0): callers must read [`Contact`], never
//! the number alone. Bits 5–7 are reserved and ignored, as the spec asks of receivers.

use crate::reading::{Contact, RR_MAX};

/// One decoded notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartRateMeasurement {
    /// Heart rate, bpm.
    pub bpm: u16,
    /// Skin contact state.
    pub contact: Contact,
    /// Energy expended, kJ, when present.
    pub energy_kj: Option<u16>,
    /// RR intervals in 1/1024 s, oldest first.
    pub rr_1024: heapless::Vec<u16, RR_MAX>,
}

/// Why a notification could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HrsError {
    /// No bytes at all.
    #[error("empty notification")]
    Empty,
    /// Fewer bytes than the flags announce for the heart rate.
    #[error("heart rate value cut short")]
    TruncatedHeartRate,
    /// Fewer bytes than the flags announce for energy expended.
    #[error("energy expended cut short")]
    TruncatedEnergy,
    /// The RR list has an odd number of bytes.
    #[error("RR interval cut short (odd byte count)")]
    TruncatedRr,
    /// Bytes left over although the flags announce no RR intervals.
    #[error("{0} trailing bytes without the RR flag")]
    Trailing(usize),
    /// More RR intervals than [`RR_MAX`].
    #[error("more than {RR_MAX} RR intervals")]
    TooManyRr,
}

const FLAG_U16: u8 = 0x01;
const FLAG_ENERGY: u8 = 0x08;
const FLAG_RR: u8 = 0x10;

/// Parses one Heart Rate Measurement notification.
pub fn parse(bytes: &[u8]) -> Result<HeartRateMeasurement, HrsError> {
    let (&flags, mut rest) = bytes.split_first().ok_or(HrsError::Empty)?;
    let bpm = if flags & FLAG_U16 != 0 {
        take_u16(&mut rest).ok_or(HrsError::TruncatedHeartRate)?
    } else {
        let (&b, tail) = rest.split_first().ok_or(HrsError::TruncatedHeartRate)?;
        rest = tail;
        u16::from(b)
    };
    let energy_kj = match flags & FLAG_ENERGY {
        0 => None,
        _ => Some(take_u16(&mut rest).ok_or(HrsError::TruncatedEnergy)?),
    };
    let mut rr_1024 = heapless::Vec::new();
    if flags & FLAG_RR == 0 {
        if !rest.is_empty() {
            return Err(HrsError::Trailing(rest.len()));
        }
    } else {
        if rest.len() % 2 != 0 {
            return Err(HrsError::TruncatedRr);
        }
        while let Some(rr) = take_u16(&mut rest) {
            rr_1024.push(rr).map_err(|_| HrsError::TooManyRr)?;
        }
    }
    Ok(HeartRateMeasurement { bpm, contact: contact(flags), energy_kj, rr_1024 })
}

fn contact(flags: u8) -> Contact {
    match (flags >> 1) & 0b11 {
        0b11 => Contact::Detected,
        0b10 => Contact::NotDetected,
        _ => Contact::Unsupported,
    }
}

fn take_u16(rest: &mut &[u8]) -> Option<u16> {
    let (head, tail) = rest.split_first_chunk::<2>()?;
    *rest = tail;
    Some(u16::from_le_bytes(*head))
}

/// Converts an RR interval from 1/1024 s to milliseconds.
pub fn rr_ms(rr_1024: u16) -> f32 {
    f32::from(rr_1024) * 1000.0 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_72_bpm_rr_0_900_s() {
        // 16 = flags 0b0001_0110: uint8 HR, contact detected (11), no energy, RR present
        // 48 = 72 bpm
        // 9A 03 = 0x039A = 922 / 1024 s = 0.900 s
        let m = parse(&[0x16, 0x48, 0x9A, 0x03]).unwrap();
        assert_eq!(m.bpm, 72);
        assert_eq!(m.contact, Contact::Detected);
        assert_eq!(m.energy_kj, None);
        assert_eq!(m.rr_1024.as_slice(), &[922]);
        assert!((rr_ms(m.rr_1024[0]) - 900.39).abs() < 0.01);
    }

    #[test]
    fn every_flag_combination() {
        for flags in 0u8..=0xFF {
            let u16_hr = flags & FLAG_U16 != 0;
            let mut bytes: heapless::Vec<u8, 16> = heapless::Vec::new();
            bytes.push(flags).unwrap();
            // heart rate 0x0150 = 336 as uint16, 0x50 = 80 as uint8
            if u16_hr {
                bytes.extend_from_slice(&[0x50, 0x01]).unwrap();
            } else {
                bytes.push(0x50).unwrap();
            }
            if flags & FLAG_ENERGY != 0 {
                bytes.extend_from_slice(&[0x10, 0x27]).unwrap(); // 10000 kJ
            }
            if flags & FLAG_RR != 0 {
                bytes.extend_from_slice(&[0x00, 0x04, 0x00, 0x02]).unwrap(); // 1024, 512
            }
            let m = parse(&bytes).unwrap_or_else(|e| panic!("flags {flags:#04x}: {e}"));
            assert_eq!(m.bpm, if u16_hr { 336 } else { 80 }, "flags {flags:#04x}");
            assert_eq!(m.energy_kj, (flags & FLAG_ENERGY != 0).then_some(10000));
            let want_rr: &[u16] = if flags & FLAG_RR != 0 { &[1024, 512] } else { &[] };
            assert_eq!(m.rr_1024.as_slice(), want_rr);
            let want_contact = match (flags >> 1) & 3 {
                3 => Contact::Detected,
                2 => Contact::NotDetected,
                _ => Contact::Unsupported,
            };
            assert_eq!(m.contact, want_contact);
        }
    }

    #[test]
    fn band_off_the_wrist_is_not_detected() {
        // 04 = contact supported, not detected; 00 = 0 bpm (a removed band often says 0)
        let m = parse(&[0x04, 0x00]).unwrap();
        assert_eq!((m.bpm, m.contact), (0, Contact::NotDetected));
    }

    #[test]
    fn malformed_notifications() {
        assert_eq!(parse(&[]), Err(HrsError::Empty));
        assert_eq!(parse(&[0x00]), Err(HrsError::TruncatedHeartRate));
        assert_eq!(parse(&[0x01, 0x48]), Err(HrsError::TruncatedHeartRate)); // uint16 needs 2
        assert_eq!(parse(&[0x08, 0x48, 0x10]), Err(HrsError::TruncatedEnergy));
        assert_eq!(parse(&[0x10, 0x48, 0x9A]), Err(HrsError::TruncatedRr));
        assert_eq!(parse(&[0x00, 0x48, 0x9A]), Err(HrsError::Trailing(1)));
        let mut many = [0u8; 2 + 2 * (RR_MAX + 1)];
        many[0] = FLAG_RR;
        assert_eq!(parse(&many), Err(HrsError::TooManyRr));
    }

    #[test]
    fn reserved_bits_are_ignored() {
        let m = parse(&[0xE0 | 0x16, 0x48, 0x9A, 0x03]).unwrap();
        assert_eq!((m.bpm, m.rr_1024.as_slice()), (72, &[922u16][..]));
    }
}
