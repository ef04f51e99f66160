//! WAV files as the host board's microphone: 48 kHz integer PCM, 16, 24 or 32 bits per sample in
//! plain (format 1) or WAVE_FORMAT_EXTENSIBLE files, the first channel, as 24-bit samples (the
//! INMP441's width).
//!
//! Why not hound: it reads a WAVE_FORMAT_EXTENSIBLE file's 24 valid bits in a 32-bit container
//! from the container's low bytes, but the format puts them at the top (most significant bits
//! first, Microsoft's WAVEFORMATEXTENSIBLE documentation), so such a file — what many recorders
//! and editors write — read 48 dB too loud. Here the container's width sets the shift.

/// KSDATAFORMAT_SUBTYPE_PCM after its first two bytes (00000001-0000-0010-8000-00aa00389b71).
const PCM_GUID_TAIL: [u8; 14] = [0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71];

/// The first channel of `bytes` as 24-bit samples at `rate` Hz.
pub fn read(bytes: &[u8], rate: u32) -> Result<Vec<i32>, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a WAV file".into());
    }
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut at = 12;
    let mut fmt: Option<(u16, usize, u32, usize)> = None; // format, channels, rate, container bytes
    while at + 8 <= bytes.len() {
        let (id, size) = (&bytes[at..at + 4], u32_at(bytes, at + 4) as usize);
        let body = &bytes[at + 8..(at + 8).saturating_add(size).min(bytes.len())];
        if id == b"fmt " && body.len() >= 16 {
            let mut format = u16_at(body, 0);
            if format == 0xfffe && body.len() >= 40 {
                format = if body[26..40] == PCM_GUID_TAIL { u16_at(body, 24) } else { 0 };
            }
            let (channels, block_align) = (usize::from(u16_at(body, 2)), usize::from(u16_at(body, 12)));
            fmt = Some((format, channels, u32_at(body, 4), block_align / channels.max(1)));
        } else if id == b"data" {
            let (format, channels, r, width) = fmt.ok_or("data before the fmt chunk")?;
            if format != 1 || r != rate || ![2, 3, 4].contains(&width) || channels == 0 {
                return Err(format!(
                    "need {rate} Hz integer PCM (16/24/32-bit, plain or extensible), got format {format}, {r} Hz, {} bits",
                    8 * width
                ));
            }
            let frame = width * channels;
            return Ok(body
                .chunks_exact(frame)
                .map(|f| {
                    // The sample's bytes, most significant at the top of an i32, then down to 24 bits.
                    let mut v = [0u8; 4];
                    v[4 - width..].copy_from_slice(&f[..width]);
                    i32::from_le_bytes(v) >> 8
                })
                .collect());
        }
        at += 8 + size + (size & 1);
    }
    Err("no data chunk".into())
}

#[cfg(test)]
mod tests {
    use super::read;

    fn wav(format: u16, container: u16, valid: u16, samples: &[i32]) -> Vec<u8> {
        let mut fmt: Vec<u8> = Vec::new();
        for v in [format, 1] {
            fmt.extend(v.to_le_bytes());
        }
        fmt.extend(48_000u32.to_le_bytes());
        fmt.extend((48_000 * u32::from(container / 8)).to_le_bytes());
        fmt.extend((container / 8).to_le_bytes());
        fmt.extend(container.to_le_bytes());
        if format == 0xfffe {
            fmt.extend(22u16.to_le_bytes());
            fmt.extend(valid.to_le_bytes());
            fmt.extend(4u32.to_le_bytes());
            fmt.extend(1u16.to_le_bytes());
            fmt.extend(super::PCM_GUID_TAIL);
        }
        let mut data: Vec<u8> = Vec::new();
        for s in samples {
            // Valid bits at the top of the container.
            let v = (*s << (32 - valid)).to_le_bytes();
            data.extend(&v[4 - usize::from(container / 8)..]);
        }
        let mut out = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        out.extend((fmt.len() as u32).to_le_bytes());
        out.extend(fmt);
        out.extend(b"data");
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn every_width_reads_as_24_bits() {
        let s24 = [-8_388_608, -1, 0, 1, 8_388_607];
        assert_eq!(read(&wav(1, 24, 24, &s24), 48_000).unwrap(), s24);
        assert_eq!(read(&wav(0xfffe, 32, 24, &s24), 48_000).unwrap(), s24, "extensible, 24 in 32");
        assert_eq!(read(&wav(1, 16, 16, &[-32_768, 5]), 48_000).unwrap(), [-8_388_608, 5 << 8]);
        assert_eq!(read(&wav(1, 32, 32, &[i32::MIN, 256]), 48_000).unwrap(), [-8_388_608, 1]);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(read(b"RIFX", 48_000).is_err());
        assert!(read(&wav(3, 32, 32, &[0]), 48_000).unwrap_err().contains("format 3"));
        assert!(read(&wav(1, 24, 24, &[0]), 44_100).is_err());
        let mut other_guid = wav(0xfffe, 32, 24, &[0]);
        other_guid[20 + 26] = 3; // IEEE float's GUID
        assert!(read(&other_guid, 48_000).is_err());
    }
}
