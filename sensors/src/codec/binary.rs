//! The binary payload: one version byte, then the [`Reading`] in postcard.
//!
//! postcard is positional (no field names on the wire), so binary decode errors name a field
//! only when validation caught it; framing problems are reported as [`DecodeError::Syntax`].

use super::VERSION;
use crate::error::{DecodeError, EncodeError, FieldError, Reason};
use crate::reading::Reading;

/// Encodes `reading` as version byte + postcard into `buf`.
pub fn encode_binary(reading: &Reading, buf: &mut [u8]) -> Result<usize, EncodeError> {
    reading.validate().map_err(EncodeError::Invalid)?;
    let (first, rest) = buf.split_first_mut().ok_or(EncodeError::BufferFull)?;
    *first = VERSION as u8;
    let used = postcard::to_slice(reading, rest).map_err(|_| EncodeError::BufferFull)?;
    Ok(1 + used.len())
}

/// Decodes a binary payload.
pub fn decode_binary(payload: &[u8]) -> Result<Reading, DecodeError> {
    let (&version, rest) = payload.split_first().ok_or(DecodeError::Empty)?;
    if u32::from(version) != VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version.into() });
    }
    let (reading, tail): (Reading, _) = postcard::take_from_bytes(rest).map_err(postcard_error)?;
    if !tail.is_empty() {
        return Err(DecodeError::Syntax("trailing bytes after the reading"));
    }
    reading.validate()?;
    Ok(reading)
}

fn postcard_error(e: postcard::Error) -> DecodeError {
    use postcard::Error as E;
    DecodeError::Syntax(match e {
        E::DeserializeUnexpectedEnd => "binary payload truncated",
        E::DeserializeBadVarint => "bad varint",
        E::DeserializeBadBool => "bad bool byte",
        E::DeserializeBadChar | E::DeserializeBadUtf8 => "bad UTF-8 in a string",
        E::DeserializeBadOption => "bad option tag",
        E::DeserializeBadEnum => "bad enum tag",
        E::DeserializeBadEncoding => "bad encoding",
        E::SerdeDeCustom => return DecodeError::Field(FieldError::new("", Reason::Invalid)),
        _ => "corrupt binary payload",
    })
}
