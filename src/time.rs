//! Times as the stream script sees them: `datetime.fromisoformat` on the
//! way in, `datetime.isoformat` into the image config, and
//! `int(dt.timestamp())` as the mtime of every tar member.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
#[error("invalid time {input:?}: {reason} (expected ISO 8601, e.g. 1970-01-01T00:00:01+00:00, or \"now\")")]
pub struct TimeError {
    pub input: String,
    pub reason: &'static str,
}

/// A `datetime`: civil date and time, microseconds, and an optional UTC
/// offset (`None` is Python's naive datetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micro: u32,
    /// Offset east of UTC in microseconds.
    pub offset_micros: Option<i64>,
}

impl DateTime {
    /// `datetime.now(tz=timezone.utc)`.
    pub fn now_utc() -> DateTime {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let total = d.as_micros() as i64;
        Self::from_unix_micros(total)
    }

    pub fn from_unix_micros(total: i64) -> DateTime {
        let secs = total.div_euclid(1_000_000);
        let micro = total.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let (year, month, day) = (year as i32, month as u32, day as u32);
        DateTime { year, month, day, hour: sod / 3600, minute: sod / 60 % 60, second: sod % 60, micro, offset_micros: Some(0) }
    }

    /// Microseconds since the epoch. A naive time is taken as UTC: Python
    /// would use the machine's zone, which would make the image depend on
    /// where it is built. nixpkgs always writes an offset.
    pub fn unix_micros(&self) -> i64 {
        let days = days_from_civil(self.year.into(), self.month.into(), self.day.into());
        let secs = days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second);
        secs * 1_000_000 + i64::from(self.micro) - self.offset_micros.unwrap_or(0)
    }

    /// `int(dt.timestamp())`: Python divides the microsecond count into a
    /// correctly rounded double, then truncates toward zero. Parsing the
    /// exact decimal reproduces that rounding.
    pub fn timestamp(&self) -> i64 {
        let m = self.unix_micros();
        let sign = if m < 0 { "-" } else { "" };
        let a = m.unsigned_abs();
        let x: f64 = format!("{sign}{}.{:06}", a / 1_000_000, a % 1_000_000).parse().expect("a decimal number");
        x.trunc() as i64
    }
}

/// `datetime.isoformat()`.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", self.year, self.month, self.day, self.hour, self.minute, self.second)?;
        if self.micro != 0 {
            write!(f, ".{:06}", self.micro)?;
        }
        if let Some(off) = self.offset_micros {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            let (secs, micro) = (a / 1_000_000, a % 1_000_000);
            write!(f, "{sign}{:02}:{:02}", secs / 3600, secs / 60 % 60)?;
            if secs % 60 != 0 || micro != 0 {
                write!(f, ":{:02}", secs % 60)?;
                if micro != 0 {
                    write!(f, ".{micro:06}")?;
                }
            }
        }
        Ok(())
    }
}

/// The two time keys of a conf: `"now"` means one instant shared by both.
pub fn parse_conf_time(s: &str, now: DateTime) -> Result<DateTime, TimeError> {
    if s == "now" { Ok(now) } else { parse_iso(s) }
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
    input: &'a str,
}

impl Cursor<'_> {
    fn err(&self, reason: &'static str) -> TimeError {
        TimeError { input: self.input.to_string(), reason }
    }
    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, TimeError> {
        let end = self.pos + n;
        if end > self.s.len() || !self.s[self.pos..end].iter().all(u8::is_ascii_digit) {
            return Err(self.err(what));
        }
        let v = self.s[self.pos..end].iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
        self.pos = end;
        Ok(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.pos >= self.s.len()
    }
}

/// `datetime.fromisoformat` (Python 3.11): calendar dates in extended or
/// basic form, an optional time `HH[:MM[:SS[.f...]]]` after any one
/// separator character, and an optional `Z` or `±HH[:MM[:SS[.ffffff]]]`.
pub fn parse_iso(input: &str) -> Result<DateTime, TimeError> {
    let mut c = Cursor { s: input.as_bytes(), pos: 0, input };
    let year = c.digits(4, "year must be 4 digits")? as i32;
    let extended = c.eat(b'-');
    let month = c.digits(2, "month must be 2 digits")?;
    if extended && !c.eat(b'-') {
        return Err(c.err("expected '-' between month and day"));
    }
    let day = c.digits(2, "day must be 2 digits")?;
    if year < 1 {
        return Err(c.err("year out of range"));
    }
    if !(1..=12).contains(&month) {
        return Err(c.err("month out of range"));
    }
    if day < 1 || i64::from(day) > days_in_month(year.into(), month.into()) {
        return Err(c.err("day out of range for month"));
    }
    let mut dt = DateTime { year, month, day, hour: 0, minute: 0, second: 0, micro: 0, offset_micros: None };
    if c.done() {
        return Ok(dt);
    }
    // Python accepts any single character as the date/time separator.
    let sep_len = input[c.pos..].chars().next().map_or(1, char::len_utf8);
    c.pos += sep_len;
    let (h, m, s, us) = parse_clock(&mut c)?;
    if h > 23 || m > 59 || s > 59 {
        return Err(c.err("time out of range"));
    }
    dt.hour = h;
    dt.minute = m;
    dt.second = s;
    dt.micro = us;
    if c.done() {
        return Ok(dt);
    }
    if c.eat(b'Z') {
        dt.offset_micros = Some(0);
    } else {
        let sign: i64 = if c.eat(b'+') {
            1
        } else if c.eat(b'-') {
            -1
        } else {
            return Err(c.err("unexpected text after the time"));
        };
        let (oh, om, os, ous) = parse_clock(&mut c)?;
        if oh > 23 || om > 59 || os > 59 {
            return Err(c.err("UTC offset out of range"));
        }
        let off = ((i64::from(oh) * 3600 + i64::from(om) * 60 + i64::from(os)) * 1_000_000 + i64::from(ous)) * sign;
        dt.offset_micros = Some(off);
    }
    if !c.done() {
        return Err(c.err("unexpected text after the UTC offset"));
    }
    Ok(dt)
}

/// `HH[:MM[:SS[.fff]]]` or the basic form `HH[MM[SS[.fff]]]`.
fn parse_clock(c: &mut Cursor<'_>) -> Result<(u32, u32, u32, u32), TimeError> {
    let h = c.digits(2, "hour must be 2 digits")?;
    let at_field = |c: &Cursor<'_>| c.s.get(c.pos).is_some_and(|b| b.is_ascii_digit() || *b == b':');
    if !at_field(c) {
        return Ok((h, 0, 0, 0));
    }
    let extended = c.eat(b':');
    let m = c.digits(2, "minute must be 2 digits")?;
    if !(if extended { c.s.get(c.pos) == Some(&b':') } else { c.s.get(c.pos).is_some_and(u8::is_ascii_digit) }) {
        return Ok((h, m, 0, 0));
    }
    if extended {
        c.pos += 1;
    }
    let s = c.digits(2, "second must be 2 digits")?;
    let mut us = 0;
    if c.eat(b'.') || c.eat(b',') {
        let start = c.pos;
        while c.s.get(c.pos).is_some_and(u8::is_ascii_digit) {
            c.pos += 1;
        }
        let frac = &c.s[start..c.pos];
        if frac.is_empty() {
            return Err(c.err("empty fraction of a second"));
        }
        // Digits past the sixth are dropped, not rounded, as Python does.
        for i in 0..6 {
            us = us * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
        }
    }
    Ok((h, m, s, us))
}

// The proleptic Gregorian calendar (Python's and GNU date's), from jiff.
fn date(y: i64, m: i64, d: i64) -> Option<jiff::civil::Date> {
    jiff::civil::Date::new(i16::try_from(y).ok()?, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()
}

const EPOCH_DAY: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    date(y, m, 1).map_or(0, |d| i64::from(d.days_in_month()))
}

/// Days since 1970-01-01 of a valid civil date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let date = date(y, m, d).unwrap_or_else(|| panic!("{y:04}-{m:02}-{d:02} is not a date"));
    i64::from(EPOCH_DAY.until(date).unwrap_or_else(|e| panic!("{date}: {e}")).get_days())
}

/// The civil date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let date =
        jiff::Span::new().try_days(z).and_then(|span| EPOCH_DAY.checked_add(span)).unwrap_or_else(|e| panic!("day {z} is outside the calendar: {e}"));
    (i64::from(date.year()), i64::from(date.month()), i64::from(date.day()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by CPython 3.11:
    // d = datetime.fromisoformat(s); d.isoformat(), int(d.timestamp())
    #[test]
    fn like_python() {
        for (s, iso, ts) in [
            ("1970-01-01T00:00:01+00:00", "1970-01-01T00:00:01+00:00", 1),
            ("1970-01-01T00:00:01Z", "1970-01-01T00:00:01+00:00", 1),
            ("2024-05-06T07:08:09+02:00", "2024-05-06T07:08:09+02:00", 1714972089),
            ("2024-05-06 07:08:09.5-01:30", "2024-05-06T07:08:09.500000-01:30", 1714984689),
            ("20240506T070809", "2024-05-06T07:08:09", 1714979289),
            ("2024-05-06", "2024-05-06T00:00:00", 1714953600),
            ("1969-12-31T23:59:59.5+00:00", "1969-12-31T23:59:59.500000+00:00", 0),
            ("1900-03-01T00:00:00.1234567+05:30:15", "1900-03-01T00:00:00.123456+05:30:15", -2203911014),
            ("9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59.999999+00:00", 253402300800),
        ] {
            let d = parse_iso(s).unwrap();
            assert_eq!(d.to_string(), iso, "{s}");
            assert_eq!(d.timestamp(), ts, "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "yesterday", "2024-13-01", "2024-02-30", "2024-05-06T25:00", "2024-05-06T07:08:09+", "2024-05-06T07:08:09 UTC"] {
            assert!(parse_iso(s).is_err(), "{s}");
        }
    }

    #[test]
    fn epoch_roundtrip() {
        for m in [0i64, 1, -1, 1_714_972_089_123_456, -2_203_910_415_000_000] {
            assert_eq!(DateTime::from_unix_micros(m).unix_micros(), m);
        }
    }
}
