//! GNSS receivers on a serial line: NMEA 0183 GGA fixes into displacement readings.
//!
//! Slope GNSS stations (RTK receivers on the moving mass, corrected by a base on stable ground)
//! print one `$xxGGA` sentence per epoch. Parsing (checksum included) is the `nmea` crate's; this
//! module decides what a fix is worth — only fixes of the configured quality count, because a
//! float or plain GPS fix wanders by decimetres to metres and would read as a landslide — and
//! turns positions into east/north/up displacements from the antenna's surveyed origin, in mm.

use crate::channels::{ChannelKind, DeformReport};
use crate::error::{FieldError, Reason};

/// Fix quality of a GGA sentence, in rising precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Autonomous GPS (metres).
    Gps,
    /// Differential GPS (decimetres to a metre).
    Dgps,
    /// RTK with float ambiguities (decimetres).
    FloatRtk,
    /// RTK with fixed integer ambiguities (millimetres to a centimetre).
    Rtk,
}

/// One position fix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Latitude, degrees (north positive).
    pub lat_deg: f64,
    /// Longitude, degrees (east positive).
    pub lon_deg: f64,
    /// Antenna altitude above mean sea level, m.
    pub alt_m: f64,
    /// Fix quality.
    pub quality: Quality,
    /// Satellites used.
    pub satellites: u32,
}

/// Why a line gave no fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NmeaError {
    /// The `*hh` checksum does not match (line noise).
    #[error("checksum mismatch")]
    Checksum,
    /// Not a well-formed NMEA sentence (or a GGA sentence with a bad field).
    #[error("malformed sentence")]
    Malformed,
    /// A GGA sentence without a usable position (no fix, estimated, manual or simulated).
    #[error("no position fix")]
    NoFix,
}

impl NmeaError {
    /// Counter label (`gridsentry_field_errors_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            NmeaError::Checksum => "nmea_checksum",
            NmeaError::Malformed => "nmea_malformed",
            NmeaError::NoFix => "nmea_no_fix",
        }
    }
}

/// Parses one line. `Ok(None)`: a valid sentence of another type (GSV, RMC, ...), ignored.
pub fn parse_line(line: &str) -> Result<Option<Fix>, NmeaError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if !line.starts_with('$') || line.len() < 10 {
        return Err(NmeaError::Malformed);
    }
    // Other sentences are skipped before parsing: the crate is built with GGA only.
    if line.get(3..7) != Some("GGA,") {
        return match nmea::parse_nmea_sentence(line) {
            Ok(s) if s.checksum != s.calc_checksum() => Err(NmeaError::Checksum),
            Ok(_) => Ok(None),
            Err(_) => Err(NmeaError::Malformed),
        };
    }
    let gga = match nmea::parse_str(line) {
        Ok(nmea::ParseResult::GGA(g)) => g,
        Ok(_) => return Ok(None),
        Err(nmea::Error::ChecksumMismatch { .. }) => return Err(NmeaError::Checksum),
        Err(_) => return Err(NmeaError::Malformed),
    };
    use nmea::sentences::FixType;
    let quality = match gga.fix_type {
        Some(FixType::Gps) => Quality::Gps,
        Some(FixType::DGps) | Some(FixType::Pps) => Quality::Dgps,
        Some(FixType::FloatRtk) => Quality::FloatRtk,
        Some(FixType::Rtk) => Quality::Rtk,
        _ => return Err(NmeaError::NoFix),
    };
    let (Some(lat_deg), Some(lon_deg), Some(alt)) = (gga.latitude, gga.longitude, gga.altitude) else {
        return Err(NmeaError::NoFix);
    };
    let alt_m = f64::from(alt);
    if !(lat_deg.abs() <= 90.0 && lon_deg.abs() <= 180.0 && alt_m.is_finite()) {
        return Err(NmeaError::Malformed);
    }
    Ok(Some(Fix { lat_deg, lon_deg, alt_m, quality, satellites: gga.fix_satellites.unwrap_or(0) }))
}

/// The antenna's surveyed position: displacements are measured from here.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// Latitude, degrees.
    pub lat_deg: f64,
    /// Longitude, degrees.
    pub lon_deg: f64,
    /// Altitude above mean sea level, m.
    pub alt_m: f64,
}

/// WGS 84 semi-major axis, m.
const A: f64 = 6_378_137.0;
/// WGS 84 first eccentricity squared.
const E2: f64 = 6.694_379_990_14e-3;

impl Origin {
    /// East, north, up displacement of `fix` from the origin, mm (local tangent plane, exact to
    /// well under a millimetre over the few hundred metres a slope moves).
    pub fn enu_mm(&self, fix: &Fix) -> [f64; 3] {
        let phi = self.lat_deg.to_radians();
        let w = 1.0 - E2 * sin2(phi);
        let r_n = A / w.sqrt();
        let r_m = A * (1.0 - E2) / (w * w.sqrt());
        let d_lat = (fix.lat_deg - self.lat_deg).to_radians();
        let d_lon = (fix.lon_deg - self.lon_deg).to_radians();
        let north = d_lat * (r_m + self.alt_m);
        let east = d_lon * (r_n + self.alt_m) * phi.cos();
        [east * 1000.0, north * 1000.0, (fix.alt_m - self.alt_m) * 1000.0]
    }

    /// A deformation report of east/north/up and horizontal (`disp_mm`) displacement.
    pub fn report(&self, enu_mm: [f64; 3]) -> Result<DeformReport, FieldError> {
        let [e, n, u] = enu_mm;
        if !(e.is_finite() && n.is_finite() && u.is_finite()) {
            return Err(FieldError::new("disp_mm", Reason::NotFinite));
        }
        let mut r = DeformReport::default();
        r.push(ChannelKind::DisplacementMm, (e * e + n * n).sqrt())?;
        r.push(ChannelKind::DisplacementEastMm, e)?;
        r.push(ChannelKind::DisplacementNorthMm, n)?;
        r.push(ChannelKind::DisplacementUpMm, u)?;
        Ok(r)
    }
}

fn sin2(x: f64) -> f64 {
    let s = x.sin();
    s * s
}

/// Appends the `*hh` checksum and CRLF to a sentence body (`$GPGGA,...`): test peers and
/// simulators use it to speak like a receiver.
pub fn with_checksum(body: &str) -> std::string::String {
    let sum = body.trim_start_matches('$').bytes().fold(0u8, |a, b| a ^ b);
    std::format!("{body}*{sum:02X}\r\n")
}

/// A GGA sentence for a position (simulators and tests): `hhmmss.ss` time of day, 9 decimal
/// places of minutes (≈ 0.02 mm), quality code as receivers write it.
pub fn gga_line(time_of_day_s: f64, fix: &Fix) -> std::string::String {
    let (lat, ns) = (fix.lat_deg.abs(), if fix.lat_deg < 0.0 { 'S' } else { 'N' });
    let (lon, ew) = (fix.lon_deg.abs(), if fix.lon_deg < 0.0 { 'W' } else { 'E' });
    let dm = |v: f64| (v.trunc(), (v - v.trunc()) * 60.0);
    let ((la_d, la_m), (lo_d, lo_m)) = (dm(lat), dm(lon));
    let q = match fix.quality {
        Quality::Gps => 1,
        Quality::Dgps => 2,
        Quality::Rtk => 4,
        Quality::FloatRtk => 5,
    };
    let cs = (time_of_day_s.rem_euclid(86_400.0) * 100.0) as u64 % 8_640_000;
    let (h, m, s, c) = (cs / 360_000, cs / 6000 % 60, cs / 100 % 60, cs % 100);
    with_checksum(&std::format!(
        "$GNGGA,{h:02}{m:02}{s:02}.{c:02},{la_d:02}{la_m:012.9},{ns},{lo_d:03}{lo_m:012.9},{ew},{q},{:02},0.6,{:.4},M,-32.1,M,1.0,0000",
        fix.satellites,
        fix.alt_m
    ))
}
