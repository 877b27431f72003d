//! Lines on stderr: best effort, one line each, control characters escaped.
//!
//! `eprintln!` panics when stderr fails (EPIPE once the reader is gone,
//! ENOSPC on `/dev/full`); a progress or error line must never turn a good
//! image into a crash, so these writes ignore failures. Names from hostile
//! inputs may hold newlines or escape sequences: [`escape_controls`] keeps
//! every line one line, unable to forge another or drive a terminal.

use std::borrow::Cow;
use std::io::Write;

/// `\n`, `\r`, `\t` and `\u{..}` for every other control character.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Writes `text` (escaped) and a newline to stderr in one write, ignoring failure.
pub fn line(text: &str) {
    let mut buf = escape_controls(text).into_owned();
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}

/// Writes `text` as is (already escaped, possibly several lines) and a
/// newline to stderr, ignoring failure.
pub fn raw(text: &str) {
    let mut buf = String::with_capacity(text.len() + 1);
    buf.push_str(text);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}
