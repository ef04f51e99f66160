//! Validated identifiers for sites, devices and wristbands.
//!
//! Why one type: an id travels as an MQTT topic level, a JSON string and an InfluxDB tag value.
//! Validating it once where it enters (topic parse, payload decode, config) means no later layer
//! has to escape or reject it: MQTT wildcards (`+`, `#`), the level separator `/`, `$`-topics,
//! spaces and line breaks are impossible by construction.

use core::fmt;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Longest id, in bytes.
pub const ID_MAX: usize = 32;

/// A site, device or band id: 1–32 bytes of `A-Z a-z 0-9 - _ .`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(heapless::String<ID_MAX>);

/// Why a string is not a valid [`Id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Zero bytes long.
    #[error("empty")]
    Empty,
    /// More than [`ID_MAX`] bytes.
    #[error("longer than {ID_MAX} bytes")]
    TooLong,
    /// A character outside `A-Z a-z 0-9 - _ .` (MQTT wildcards and `/` among them).
    #[error("character {0:?} not allowed (use A-Z a-z 0-9 - _ .)")]
    BadChar(char),
}

impl Id {
    /// Validates `s` and copies it.
    pub fn new(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if let Some(c) = s.chars().find(|&c| !is_id_char(c)) {
            return Err(IdError::BadChar(c));
        }
        let mut out = heapless::String::new();
        out.push_str(s).map_err(|_| IdError::TooLong)?;
        Ok(Id(out))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True for the characters an id may hold.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl core::str::FromStr for Id {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Id::new(s)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id of 1-32 characters A-Z a-z 0-9 - _ .")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Id::new(v).map_err(|e| E::custom(format_args!("invalid id: {e}")))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        assert_eq!(Id::new("plaza-3_nb.01").unwrap().as_str(), "plaza-3_nb.01");
        assert!(Id::new(&"a".repeat(ID_MAX)).is_ok());
    }

    #[test]
    fn rejects_wildcards_separators_and_length() {
        assert_eq!(Id::new(""), Err(IdError::Empty));
        assert_eq!(Id::new("a+b"), Err(IdError::BadChar('+')));
        assert_eq!(Id::new("#"), Err(IdError::BadChar('#')));
        assert_eq!(Id::new("a/b"), Err(IdError::BadChar('/')));
        assert_eq!(Id::new("$SYS"), Err(IdError::BadChar('$')));
        assert_eq!(Id::new("a b"), Err(IdError::BadChar(' ')));
        assert_eq!(Id::new("广场"), Err(IdError::BadChar('广')));
        assert_eq!(Id::new(&"a".repeat(ID_MAX + 1)), Err(IdError::TooLong));
    }
}
