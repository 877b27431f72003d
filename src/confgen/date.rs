//! `date -Iseconds -d STR` in UTC, for the ISO-8601 forms nixpkgs users
//! write (`created`, `mtime`), plus `@EPOCH`.

use crate::time::{civil_from_days, days_from_civil, days_in_month};

#[derive(Debug, thiserror::Error)]
#[error("invalid date {value:?}: {what} (expected \"now\", @EPOCH or ISO-8601 like 2024-01-31T12:00:00Z)")]
pub struct DateError {
    pub value: String,
    pub what: &'static str,
}

/// Seconds since the epoch for a date string (`now` is not accepted here).
pub fn parse_epoch(value: &str) -> Result<i64, DateError> {
    let err = |what| DateError { value: value.to_string(), what };
    let s = value.trim();
    if let Some(epoch) = s.strip_prefix('@') {
        return epoch.parse::<i64>().map_err(|_| err("not an integer after @"));
    }
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, DateError> {
        let part = s.get(from..from + len).ok_or(err("too short"))?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err("expected digits"));
        }
        Ok(part.parse().unwrap())
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err("expected YYYY-MM-DD"));
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(err("no such day"));
    }
    let mut i = 10;
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if i < b.len() && (b[i] == b'T' || b[i] == b't' || b[i] == b' ') {
        i += 1;
        hour = num(i, 2)?;
        if b.get(i + 2) != Some(&b':') {
            return Err(err("expected HH:MM"));
        }
        minute = num(i + 3, 2)?;
        i += 5;
        if b.get(i) == Some(&b':') {
            second = num(i + 1, 2)?;
            i += 3;
            if matches!(b.get(i), Some(b'.') | Some(b',')) {
                i += 1;
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == start {
                    return Err(err("empty fraction"));
                }
            }
        }
        if hour > 24 || minute > 59 || second > 60 || (hour == 24 && (minute, second) != (0, 0)) {
            return Err(err("time out of range"));
        }
    }
    let rest = s[i..].trim_start();
    let offset = match rest {
        "" | "Z" | "z" | "UTC" | "utc" | "GMT" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(err("unknown time zone")),
            };
            let digits: String = rest[1..].chars().filter(|&c| c != ':').collect();
            if !(digits.len() == 2 || digits.len() == 4) || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err("bad UTC offset"));
            }
            let h: i64 = digits[..2].parse().unwrap();
            let m: i64 = if digits.len() == 4 { digits[2..].parse().unwrap() } else { 0 };
            if h > 24 || m > 59 {
                return Err(err("bad UTC offset"));
            }
            sign * (h * 3600 + m * 60)
        }
    };
    Ok(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset)
}

/// `date -Iseconds` of an epoch, in UTC.
pub fn format_utc(epoch: i64) -> String {
    let days = epoch.div_euclid(86400);
    let secs = epoch.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `"now"` stays `"now"`; everything else is normalised to UTC with offset.
pub fn normalize(value: &str) -> Result<String, DateError> {
    if value == "now" {
        return Ok(value.to_string());
    }
    parse_epoch(value).map(format_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_gnu_date() {
        assert_eq!(normalize("1970-01-01T00:00:01Z").unwrap(), "1970-01-01T00:00:01+00:00");
        assert_eq!(normalize("now").unwrap(), "now");
        assert_eq!(normalize("2024-02-29").unwrap(), "2024-02-29T00:00:00+00:00");
        assert_eq!(normalize("2024-03-01T01:30:00+02:00").unwrap(), "2024-02-29T23:30:00+00:00");
        assert_eq!(normalize("2021-05-06 07:08:09.123Z").unwrap(), "2021-05-06T07:08:09+00:00");
        assert_eq!(normalize("@315532800").unwrap(), "1980-01-01T00:00:00+00:00");
        assert!(normalize("yesterday").is_err());
        assert!(normalize("2023-02-29").is_err());
    }
}
