//! RFC 3339 timestamps with an offset, as `promotion/timefmt.py` reads them.
//!
//! Only the forms whose value is certain are read here; anything else (a leap second, an invalid
//! date, a value out of range) returns None and is left to the Python decoder, which alone words
//! the rejection.

use crate::event::MAX_MS;

fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch milliseconds of `YYYY-MM-DD[Tt ]HH:MM:SS[.fraction](Z|z|+HH:MM|-HH:MM)`, or None.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None; // second 60 (a leap second) is the Python decoder's to judge
    }
    let mut i = 19;
    let mut fraction_ms = 0;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return None;
        }
        let mut taken = 0;
        for &c in &b[start..end.min(start + 3)] {
            fraction_ms = fraction_ms * 10 + i64::from(c - b'0');
            taken += 1;
        }
        while taken < 3 {
            fraction_ms *= 10;
            taken += 1;
        }
        i = end;
    }
    let offset_ms = match &b[i..] {
        [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = (hours * 60 + minutes) * 60_000;
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return None,
    };
    let wall = days_from_civil(year, month, day) * 86_400_000
        + hour * 3_600_000
        + minute * 60_000
        + second * 1_000
        + fraction_ms;
    let ms = wall - offset_ms;
    if (0..=MAX_MS).contains(&ms) {
        Some(ms)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_ms as p;

    #[test]
    fn reads_the_common_forms() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("1970-01-01T00:00:00.1234Z"), Some(123));
        assert_eq!(p("1970-01-01t00:00:01.5z"), Some(1_500));
        assert_eq!(p("1970-01-01 01:00:00+01:00"), Some(0));
        assert_eq!(p("2026-01-01T10:00:00.123+02:00"), Some(1_767_254_400_123));
        assert_eq!(p("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(p("9999-12-31T23:59:59.999Z"), Some(crate::event::MAX_MS));
    }

    #[test]
    fn leaves_everything_doubtful_to_python() {
        for text in [
            "2023-02-29T00:00:00Z",
            "2026-01-01T23:59:60Z",
            "1969-12-31T23:59:59Z",
            "2026-01-01T10:00:00",
            "2026-01-01T10:00:00+24:00",
            "2026-01-01T10:00:00.Z",
            "２０２６-01-01T10:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(p(text), None, "{text}");
        }
    }
}

/// Epoch milliseconds (0..=MAX_MS) as RFC 3339 UTC with milliseconds (`timefmt.format_ms`).
pub fn format_ms(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1_000 % 60, rest % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod format_tests {
    use super::{format_ms, parse_rfc3339_ms};

    #[test]
    fn formats_and_parses_back() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_767_254_400_123), "2026-01-01T08:00:00.123Z");
        for ms in [0, 951_782_400_000, 1_709_164_800_999, crate::event::MAX_MS] {
            assert_eq!(parse_rfc3339_ms(&format_ms(ms)), Some(ms));
        }
    }
}
