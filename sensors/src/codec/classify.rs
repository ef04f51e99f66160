//! Turns the text of a serde error into a [`Reason`] and, where the text names it, a field.
//!
//! serde's derive writes fixed phrases ("missing field `bpm`", "invalid type: ...") and
//! serde_json passes them through with the path that serde_path_to_error tracked, so a phrase and
//! a path are enough to say which field failed and why (std only: see `json.rs`).

use crate::error::{truncated, FieldError, Reason};

/// Builds a [`FieldError`] from a serde message and the path known so far (may be empty).
pub(crate) fn field_error(path: &str, msg: &str) -> FieldError {
    let reason = reason_of(msg);
    let named = match reason {
        Reason::Missing => backticked(msg),
        _ => None,
    };
    let mut field: heapless::String<{ crate::error::FIELD_MAX }> = truncated(path);
    if let Some(name) = named {
        if !field.is_empty() && field.as_str() != "." {
            let _ = field.push('.');
        } else {
            field.clear();
        }
        for c in name.chars() {
            if field.push(c).is_err() {
                break;
            }
        }
    }
    if field.as_str() == "." {
        field.clear();
    }
    FieldError { field, reason, detail: truncated(msg) }
}

fn reason_of(msg: &str) -> Reason {
    const TABLE: [(&str, Reason); 7] = [
        ("missing field", Reason::Missing),
        ("invalid type", Reason::WrongType),
        ("invalid length", Reason::TooMany),
        ("duplicate", Reason::Duplicate),
        ("unknown variant", Reason::Invalid),
        ("invalid id", Reason::Invalid),
        ("invalid value", Reason::OutOfRange),
    ];
    TABLE.iter().find(|(p, _)| msg.starts_with(p)).map_or(Reason::Invalid, |(_, r)| *r)
}

/// The text between the first pair of backticks.
fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_fields_under_their_parent() {
        let e = field_error("hr", "missing field `bpm`");
        assert_eq!((e.field.as_str(), e.reason), ("hr.bpm", Reason::Missing));
        let e = field_error("", "missing field `seq`");
        assert_eq!((e.field.as_str(), e.reason), ("seq", Reason::Missing));
    }

    #[test]
    fn classifies_serde_phrases() {
        assert_eq!(field_error("x", "invalid type: string \"a\", expected u16").reason, Reason::WrongType);
        assert_eq!(field_error("x", "invalid value: integer `300`, expected u8").reason, Reason::OutOfRange);
        assert_eq!(field_error("x", "invalid length 17, expected ...").reason, Reason::TooMany);
        assert_eq!(field_error("x", "unknown variant `on`, expected ...").reason, Reason::Invalid);
        assert_eq!(field_error("x", "something else").reason, Reason::Invalid);
    }
}
