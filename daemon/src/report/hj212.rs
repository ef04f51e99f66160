//! HJ 212 (污染物在线监控（监测）系统数据传输标准, 2017 edition) frames.
//!
//! A packet is `##`, the data segment's length as four decimal digits, the data segment, its
//! CRC as four upper-case hex digits, and CRLF. The data segment is `QN=…;ST=…;CN=…;PW=…;MN=…;
//! Flag=…;CP=&&…&&`. The CRC is the standard's own (its appendix, not CRC-16/MODBUS): a 16-bit
//! register from 0xFFFF; per byte `r = (r >> 8) ^ byte`, then eight times: shift right, and XOR
//! 0xA001 when the bit shifted out was 1. The unit test is the standard's example.

/// The data segment's longest length (four digits; the standard allows up to 1024).
pub const MAX_DATA: usize = 1024;

/// The standard's CRC of `data`.
pub fn crc(data: &[u8]) -> u16 {
    let mut r: u16 = 0xFFFF;
    for &b in data {
        r = (r >> 8) ^ u16::from(b);
        for _ in 0..8 {
            let out = r & 1;
            r >>= 1;
            if out == 1 {
                r ^= 0xA001;
            }
        }
    }
    r
}

/// A whole packet around `data`.
pub fn packet(data: &str) -> Result<String, String> {
    if data.len() > MAX_DATA {
        return Err(format!("data segment of {} bytes (at most {MAX_DATA})", data.len()));
    }
    Ok(format!("##{:04}{data}{:04X}\r\n", data.len(), crc(data.as_bytes())))
}

/// The fields of a data segment, e.g. `QN`, `CN`, and `CP`'s inside as one string.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// `(key, value)` of the header fields, in order.
    pub fields: Vec<(String, String)>,
    /// What is between `CP=&&` and the closing `&&`.
    pub cp: String,
}

impl Segment {
    /// The value of header field `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Why bytes are not a packet.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("does not start with ##")]
    Start,
    #[error("length field is not four digits")]
    Length,
    #[error("length {0} does not match the data")]
    Mismatch(usize),
    #[error("CRC {got:04X} where the data gives {want:04X}")]
    Crc { got: u16, want: u16 },
    #[error("no CP=&&…&&")]
    NoCp,
}

/// Reads one packet (without its CRLF, or with it).
pub fn parse(line: &str) -> Result<Segment, FrameError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let rest = line.strip_prefix("##").ok_or(FrameError::Start)?;
    let len: usize = rest
        .get(..4)
        .filter(|l| l.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(FrameError::Length)?
        .parse()
        .map_err(|_| FrameError::Length)?;
    let body = &rest[4..];
    if body.len() != len + 4 || !body.is_char_boundary(len) {
        return Err(FrameError::Mismatch(len));
    }
    let (data, crc_text) = body.split_at(len);
    let got = u16::from_str_radix(crc_text, 16).map_err(|_| FrameError::Length)?;
    let want = crc(data.as_bytes());
    if got != want {
        return Err(FrameError::Crc { got, want });
    }
    let cp_at = data.find("CP=&&").ok_or(FrameError::NoCp)?;
    let cp = data[cp_at + 5..].strip_suffix("&&").ok_or(FrameError::NoCp)?.to_string();
    let fields = data[..cp_at]
        .split(';')
        .filter(|f| !f.is_empty())
        .filter_map(|f| f.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    Ok(Segment { fields, cp })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard's example: length 0101, CRC 1C80.
    #[test]
    fn the_standards_example() {
        let data = "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&";
        assert_eq!(data.len(), 101);
        assert_eq!(crc(data.as_bytes()), 0x1C80);
        let p = packet(data).unwrap();
        assert_eq!(p, format!("##0101{data}1C80\r\n"));
        let s = parse(&p).unwrap();
        assert_eq!(
            (s.get("QN"), s.get("CN"), s.get("Flag")),
            (Some("20160801085857223"), Some("1062"), Some("5"))
        );
        assert_eq!(s.cp, "RtdInterval=30");
    }

    #[test]
    fn damaged_packets_are_refused() {
        let p = packet("QN=1;ST=91;CN=9014;PW=1;MN=2;Flag=4;CP=&&&&").unwrap();
        assert!(parse(&p).is_ok());
        assert!(matches!(parse(&p.replace("9014", "9015")), Err(FrameError::Crc { .. })));
        assert_eq!(parse(&p[1..]), Err(FrameError::Start));
        assert!(matches!(parse(&p.replace("##00", "##01")), Err(FrameError::Mismatch(_))));
        assert!(packet(&"x".repeat(MAX_DATA + 1)).is_err());
    }
}
