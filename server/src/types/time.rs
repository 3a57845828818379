//! Timestamps on the wire: RFC 3339 in UTC, exactly as chrono's `Serialize`
//! writes them (`SecondsFormat::AutoSi`: no fraction, or 3, 6 or 9 digits;
//! `Z`), written straight into a small buffer. chrono goes through
//! `core::fmt`, which was the largest part of serializing a page of runners
//! (three or four timestamps a runner). For `#[serde(serialize_with)]`.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// `t` as chrono writes it, or `None` where this does not write it (a year
/// outside 0 to 9999, or a leap second: chrono then writes it itself).
fn write(t: &DateTime<Utc>, buf: &mut [u8; 32]) -> Option<usize> {
    let year = u32::try_from(t.year()).ok().filter(|&y| y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut put = |at: usize, value: u32, digits: usize| {
        let mut v = value;
        for i in (0..digits).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    let (fraction, digits) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
        n if n % 1_000 == 0 => (n / 1_000, 6),
        n => (n, 9),
    };
    let mut len = 19;
    if digits > 0 {
        put(20, fraction, digits);
        buf[19] = b'.';
        len = 20 + digits;
    }
    buf[4] = b'-';
    buf[7] = b'-';
    buf[10] = b'T';
    buf[13] = b':';
    buf[16] = b':';
    buf[len] = b'Z';
    Some(len + 1)
}

/// Serializes `t` as chrono does.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 32];
    match write(t, &mut buf) {
        // Only ASCII digits and separators were written.
        Some(len) => s.serialize_str(std::str::from_utf8(&buf[..len]).expect("ASCII")),
        None => t.serialize(s),
    }
}

/// Serializes `t` as chrono does (`null` for none).
pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    /// What chrono's own `Serialize` writes.
    fn chrono_json(t: &DateTime<Utc>) -> String {
        serde_json::to_string(t).unwrap()
    }

    fn ours(t: &DateTime<Utc>) -> String {
        let mut out = Vec::new();
        super::serialize(t, &mut serde_json::Serializer::new(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_what_chrono_writes() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let fixed = [
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 2, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
        ];
        for base in fixed {
            for nanos in [
                0,
                1,
                999,
                1_000,
                120_000,
                123_456,
                1_000_000,
                500_000_000,
                999_999_999,
            ] {
                let t = base + chrono::Duration::nanoseconds(nanos);
                assert_eq!(ours(&t), chrono_json(&t), "{t:?}");
            }
        }
        for _ in 0..20_000 {
            let secs = (next() % 400_000_000_000) as i64 - 60_000_000_000;
            let nanos = match next() % 4 {
                0 => 0,
                1 => (next() % 1_000) as u32 * 1_000_000,
                2 => (next() % 1_000_000) as u32 * 1_000,
                _ => (next() % 1_000_000_000) as u32,
            };
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            assert_eq!(ours(&t), chrono_json(&t), "{t:?}");
        }
        // A leap second, which chrono writes itself.
        let leap = DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap();
        assert_eq!(ours(&leap), chrono_json(&leap));
        let none: Option<DateTime<Utc>> = None;
        let mut out = Vec::new();
        super::serialize_opt(&none, &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(out, b"null");
    }
}
