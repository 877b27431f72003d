//! `date -Iseconds -d STR` in UTC: how nixpkgs turns `created` and `mtime`
//! into the conf's dates. Strings are read with uutils' `parse_datetime`
//! (GNU date's grammar: ISO 8601, "Jan 1 2024", RFC 2822, "20240101",
//! "@EPOCH", offsets, zone names, relative items) against a UTC clock, as
//! in Nix's build environment (no TZ, no /etc/localtime); the instant is
//! then formatted with jiff (which parse_datetime is built on).

use jiff::Timestamp;

#[derive(Debug, thiserror::Error)]
#[error("invalid date {value:?}: {what} (GNU `date -d` forms: \"now\", \"@EPOCH\", \"2024-01-31T12:00:00Z\", \"Jan 1 2024\", ...)")]
pub struct DateError {
    pub value: String,
    pub what: &'static str,
}

/// Seconds since the epoch for a date string, as `date -d STR +%s` with
/// TZ=UTC. `now` means the current time here; [`normalize`] keeps it as is.
pub fn parse_epoch(value: &str) -> Result<i64, DateError> {
    let err = |what| DateError { value: value.to_string(), what };
    // GNU date reads an empty string as midnight today; nixpkgs users never
    // mean that, and parse_datetime refuses it anyway.
    if value.trim().is_empty() {
        return Err(err("empty"));
    }
    let base = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let parsed = parse_datetime::parse_datetime_at_date(base, value).map_err(|_| err("not a date GNU date reads"))?;
    let epoch = parsed.unix_epoch_second();
    // Only what `date -Iseconds` prints with a four-digit year.
    if utc(epoch).is_none() {
        return Err(err("out of range"));
    }
    Ok(epoch)
}

/// `date -Iseconds` of an epoch, in UTC (`2024-01-31T12:00:00+00:00`).
pub fn format_utc(epoch: i64) -> String {
    match utc(epoch) {
        Some(t) => t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        None => panic!("epoch {epoch} is outside years 0-9999 (parse_epoch refuses it)"),
    }
}

/// The instant of `epoch` in UTC, for years 0 to 9999.
fn utc(epoch: i64) -> Option<jiff::civil::DateTime> {
    let t = Timestamp::from_second(epoch).ok()?.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    (0..=9999).contains(&t.year()).then_some(t)
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
        for (input, want) in [
            ("1970-01-01T00:00:01Z", "1970-01-01T00:00:01+00:00"),
            ("now", "now"),
            ("2024-02-29", "2024-02-29T00:00:00+00:00"),
            ("2024-03-01T01:30:00+02:00", "2024-02-29T23:30:00+00:00"),
            ("2021-05-06 07:08:09.123Z", "2021-05-06T07:08:09+00:00"),
            ("@315532800", "1980-01-01T00:00:00+00:00"),
            ("Jan 1 2024", "2024-01-01T00:00:00+00:00"),
            ("20240101", "2024-01-01T00:00:00+00:00"),
            ("Mon, 01 Jan 2024 12:00:00 +0100", "2024-01-01T11:00:00+00:00"),
        ] {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
        assert!(normalize("2023-02-29").is_err());
        assert!(normalize("not a date").is_err());
        assert!(normalize("").is_err());
    }
}
