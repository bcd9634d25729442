//! Text that came from outside (a file, a tag, an AWS answer, the activity log) made
//! safe to show: control characters (newline, escape, NUL…) and the Unicode format
//! characters that reorder or hide text (bidi overrides and isolates, zero-width marks)
//! are written as `\u{…}`, so such a string can neither forge a log line nor move a
//! terminal's cursor.
//!
//! Every renderer for people (`check`, `plan`, `run --once`, `status`) passes such
//! strings through [`printable`], and the text log's writer ([`EscapingWriter`])
//! escapes whatever a field held. What it must not do: change visible text.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// Control characters and the format characters that reorder or hide text.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// `text` with every invisible character escaped; borrowed when there is none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_invisible) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_invisible(c) {
            escaped.extend(c.escape_unicode());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// [`printable`] for `format!` arguments.
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printable(self.0))
    }
}

/// A writer of text log lines that escapes every invisible character but the newline
/// that ends each line: a field that held a newline or an escape sequence shows as
/// `\u{a}` or `\u{1b}`, inside its own line. The log formatter writes one whole line
/// per call.
pub struct EscapingWriter<W>(pub W);

impl<W: io::Write> io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        let text = String::from_utf8_lossy(body);
        self.0.write_all(printable(&text).as_bytes())?;
        self.0.write_all(end)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_escaped_and_visible_text_kept() {
        assert_eq!(
            printable("a\nb\u{1b}[2J\u{202E}c"),
            "a\\u{a}b\\u{1b}[2J\\u{202e}c"
        );
        assert!(matches!(printable("checkout-api:live é"), Cow::Borrowed(_)));
        assert_eq!(Printable("x\ty").to_string(), "x\\u{9}y");
    }

    #[test]
    fn a_log_line_keeps_only_its_own_newline() {
        use std::io::Write as _;
        let mut writer = EscapingWriter(Vec::new());
        writer
            .write_all(b"WARN drift target=a\nFAKE LINE\x1b[31m\n")
            .expect("written");
        assert_eq!(
            String::from_utf8(writer.0).expect("UTF-8"),
            "WARN drift target=a\\u{a}FAKE LINE\\u{1b}[31m\n"
        );
    }
}
