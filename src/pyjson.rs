//! Python's `json.dumps` and `repr(str)`, byte for byte.
//!
//! nixpkgs serialises the image config with `json.dumps(obj, indent=4)` and
//! puts `repr(list_of_paths)` into history comments; the config's sha256 is
//! the image ID, so every byte here is part of the image's identity.

use serde_json::Value;
use std::fmt::Write;
use unicode_general_category::{GeneralCategory, get_general_category};

/// The knobs of `json.dumps` that nixpkgs' scripts use.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// `indent=N`; `None` is the single-line form.
    pub indent: Option<usize>,
    pub sort_keys: bool,
    pub item_separator: &'static str,
    pub key_separator: &'static str,
}

impl Style {
    /// `json.dumps(obj)`: one line, `", "` and `": "`.
    pub const DEFAULT: Style = Style { indent: None, sort_keys: false, item_separator: ", ", key_separator: ": " };

    /// `json.dumps(obj, indent=n)`: Python drops the space after `,` once
    /// there is an indent.
    pub const fn indent(n: usize) -> Style {
        Style { indent: Some(n), sort_keys: false, item_separator: ",", key_separator: ": " }
    }
}

/// `json.dumps(value, ...)` with `ensure_ascii=True`.
pub fn dumps(value: &Value, style: Style) -> String {
    let mut out = String::new();
    write_value(&mut out, value, style, 0);
    out
}

fn newline_indent(out: &mut String, style: Style, depth: usize) {
    if let Some(n) = style.indent {
        out.push('\n');
        for _ in 0..n * depth {
            out.push(' ');
        }
    }
}

/// `value` as `dumps` writes it nested `depth` levels deep, appended to `out`.
pub fn write_value(out: &mut String, value: &Value, style: Style, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, &n.to_string()),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_separator);
                }
                newline_indent(out, style, depth + 1);
                write_value(out, item, style, depth + 1);
            }
            newline_indent(out, style, depth);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if style.sort_keys {
                // Python compares str by code point, which is UTF-8 byte order.
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_separator);
                }
                newline_indent(out, style, depth + 1);
                write_str(out, k);
                out.push_str(style.key_separator);
                write_value(out, v, style, depth + 1);
            }
            newline_indent(out, style, depth);
            out.push('}');
        }
    }
}

/// Numbers arrive as their JSON text (serde_json's arbitrary_precision).
/// Python's `json.load` makes an `int` of a literal without fraction or
/// exponent (exact, unbounded) and a `float` of anything else, and `dumps`
/// writes `int` as decimal and `float` as `float.__repr__`.
fn write_number(out: &mut String, text: &str) {
    if !text.contains(['.', 'e', 'E']) {
        // Only "-0" differs from its int() rendering.
        if text.trim_start_matches('-').bytes().all(|b| b == b'0') {
            out.push('0');
        } else {
            out.push_str(text);
        }
        return;
    }
    let x: f64 = text.parse().unwrap_or(f64::NAN);
    if !x.is_finite() {
        // Python would write `Infinity`, which no JSON reader (docker's
        // included) accepts: the number keeps its exact text instead.
        out.push_str(text);
        return;
    }
    out.push_str(&py_float_repr(x));
}

/// `float.__repr__`: the shortest round-tripping digits, fixed notation for
/// decimal exponents in [-4, 16), scientific otherwise; JSON spells the
/// non-finite values the way Python's encoder does.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` is also shortest-round-trip: "d.ddde±x".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    let mut s = String::new();
    if x < 0.0 {
        s.push('-');
    }
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            s.push_str("0.");
            for _ in 0..-decpt {
                s.push('0');
            }
            s.push_str(&digits);
        } else {
            let d = decpt as usize;
            if digits.len() <= d {
                s.push_str(&digits);
                for _ in digits.len()..d {
                    s.push('0');
                }
                s.push_str(".0");
            } else {
                s.push_str(&digits[..d]);
                s.push('.');
                s.push_str(&digits[d..]);
            }
        }
    } else {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(s, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    s
}

/// A JSON string with `ensure_ascii=True`: everything outside `' '..='~'`
/// is escaped, DEL included; astral characters become surrogate pairs.
/// A string as `dumps` writes it, appended to `out`.
pub fn write_str(out: &mut String, s: &str) {
    write_escaped(out, s, |c| matches!(c, ' '..='~'));
}

/// A JSON string, the characters `keep` refuses written as `\uXXXX`
/// (UTF-16 units): Python's `dumps` keeps printable ASCII, jq all but
/// control characters and DEL.
pub fn write_escaped(out: &mut String, s: &str, keep: impl Fn(char) -> bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if keep(c) => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
        }
    }
    out.push('"');
}

/// Python's `str.isprintable` for one character (Unicode database of the
/// crate, which may be newer than the CPython that nixpkgs ships).
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    )
}

/// `repr(s)` for a Python `str`.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push(quote);
    out
}

/// `repr(list_of_str)`, as in `f"store paths: {paths}"`.
pub fn py_repr_str_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&py_repr_str(item.as_ref()));
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings below were printed by CPython 3.11 (`json.dumps`,
    // `repr`) on the same inputs.
    #[test]
    fn floats_like_python() {
        for (x, want) in [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5, "1.5"),
            (-2.0, "-2.0"),
            (123456789.125, "123456789.125"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1, "0.1"),
        ] {
            assert_eq!(py_float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn strings_and_indent_like_python() {
        let v: Value = serde_json::from_str(r#"{"b": [1, 2.50, "caf\u00e9\u007f\ud83d\ude00"], "a": {}, "c": []}"#).unwrap();
        assert_eq!(
            dumps(&v, Style::indent(4)),
            "{\n    \"b\": [\n        1,\n        2.5,\n        \"caf\\u00e9\\u007f\\ud83d\\ude00\"\n    ],\n    \"a\": {},\n    \"c\": []\n}"
        );
        assert_eq!(dumps(&v, Style::DEFAULT), "{\"b\": [1, 2.5, \"caf\\u00e9\\u007f\\ud83d\\ude00\"], \"a\": {}, \"c\": []}");
    }

    #[test]
    fn repr_like_python() {
        assert_eq!(
            py_repr_str_list(&["/nix/store/a-x", "it's", "a\"b'c", "caf\u{e9}\u{7f}\u{200b}"]),
            "['/nix/store/a-x', \"it's\", 'a\"b\\'c', 'caf\u{e9}\\x7f\\u200b']"
        );
    }
}
