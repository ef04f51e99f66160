//! Errors shared by the codecs: which field, and why.
//!
//! Malformed payloads are counted by reason and logged with device and topic by the daemon, so an
//! error must say *what* was wrong in a way that can be both counted (the [`Reason`] / variant)
//! and read (the field path and detail). Fixed-capacity strings keep this usable without an
//! allocator.

use core::fmt;

/// Longest field path kept in an error (longer paths are cut).
pub const FIELD_MAX: usize = 48;
/// Longest detail text kept in an error (longer text is cut).
pub const DETAIL_MAX: usize = 80;

/// Why a field was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Required but absent.
    Missing,
    /// Present with the wrong JSON/binary type.
    WrongType,
    /// A number outside its plausible range.
    OutOfRange,
    /// NaN or infinite.
    NotFinite,
    /// More entries than the fixed capacity.
    TooMany,
    /// The same channel twice.
    Duplicate,
    /// A field this version does not define (binary), or conflicting alternatives.
    Conflict,
    /// Present but not an acceptable value (bad id, unknown enum name, ...).
    Invalid,
}

impl Reason {
    /// A short stable name, usable as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::WrongType => "wrong_type",
            Reason::OutOfRange => "out_of_range",
            Reason::NotFinite => "not_finite",
            Reason::TooMany => "too_many",
            Reason::Duplicate => "duplicate",
            Reason::Conflict => "conflict",
            Reason::Invalid => "invalid",
        }
    }
}

/// A rejected field: its path (e.g. `hr.bpm`), the reason and, where known, the decoder's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field; empty when the decoder could not tell.
    pub field: heapless::String<FIELD_MAX>,
    /// Why it was rejected.
    pub reason: Reason,
    /// Free text from the decoder (may be empty).
    pub detail: heapless::String<DETAIL_MAX>,
}

impl FieldError {
    /// An error for `field` without detail.
    pub fn new(field: &str, reason: Reason) -> Self {
        FieldError { field: truncated(field), reason, detail: heapless::String::new() }
    }

    /// Adds free text.
    pub fn with_detail(mut self, detail: &str) -> Self {
        self.detail = truncated(detail);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field.is_empty() {
            true => write!(f, "a field: {}", self.reason.as_str())?,
            false => write!(f, "field `{}`: {}", self.field, self.reason.as_str())?,
        }
        match self.detail.is_empty() {
            true => Ok(()),
            false => write!(f, " ({})", self.detail),
        }
    }
}

/// Copies `s` into a fixed string, cutting at a char boundary when too long.
pub(crate) fn truncated<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes.
    #[error("empty payload")]
    Empty,
    /// Not well-formed JSON, or a binary payload cut short or corrupt.
    #[error("malformed payload: {0}")]
    Syntax(&'static str),
    /// The JSON object has no `v` field.
    #[error("no format version (field `v`)")]
    MissingVersion,
    /// A format version this build does not read.
    #[error(
        "payload format version {found} is not supported (this build reads version {})",
        crate::codec::VERSION
    )]
    UnsupportedVersion {
        /// The version the payload claims.
        found: u32,
    },
    /// Well-formed, but a field is wrong.
    #[error("{0}")]
    Field(FieldError),
}

impl DecodeError {
    /// A short stable name for counting (metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Syntax(_) => "syntax",
            DecodeError::MissingVersion => "missing_version",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::Field(e) => e.reason.as_str(),
        }
    }
}

impl From<FieldError> for DecodeError {
    fn from(e: FieldError) -> Self {
        DecodeError::Field(e)
    }
}

/// Why a reading could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is too small.
    #[error("output buffer too small")]
    BufferFull,
    /// The reading breaks an invariant (see [`crate::Reading::validate`]).
    #[error("invalid reading: {0}")]
    Invalid(FieldError),
}
