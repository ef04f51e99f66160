//! Text that came from outside (a device's field, a login name) made safe to write into a log
//! line or the audit chain: control characters escaped (a newline cannot forge a second line,
//! an ESC cannot repaint a terminal) and the length capped.

/// `s` with control characters escaped (`\n`, `\u{1b}`) and at most `max` characters kept
/// (then `…`).
pub fn escape(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 2));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_are_escaped_and_length_capped() {
        assert_eq!(escape("a\nb\u{1b}[31m", 64), "a\\nb\\u{1b}[31m");
        assert_eq!(escape("王丽", 64), "王丽");
        assert_eq!(escape("abcdef", 3), "abc…");
        assert!(!escape("x\r\ny\u{7f}", 64).chars().any(char::is_control));
    }
}
