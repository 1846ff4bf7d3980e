//! Text from hosts and tasks made safe to show on a terminal.
//!
//! A task's stderr, a remote error or a host's self-description is
//! untrusted text: an escape sequence in it can retitle the terminal, clear
//! the screen or hide what came before it. Everything Shoal prints for a
//! person passes through [`printable`], which keeps newlines and tabs and
//! writes every other control character (C0, DEL, C1) as a visible escape
//! such as `\x1b`. Files (logs, outputs, `--json`) keep the raw bytes.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with its control characters but `\n` and `\t` made visible.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_hidden(c) {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_hidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(printable("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(printable("\x1b]0;pwned\x07\x1b[2J"), "\\x1b]0;pwned\\x07\\x1b[2J");
        assert_eq!(printable("cr\rdel\x7f c1\u{9b}"), "cr\\x0ddel\\x7f c1\\x9b");
        assert_eq!(printable("ünïcødé ✓"), "ünïcødé ✓");
    }
}
