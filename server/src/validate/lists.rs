//! The validated queries of the submitter side's lists (keys, reports),
//! as the store takes them.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::Schema;
use serde::{Deserialize, Serialize};

use super::{Rule, integer_schema};

/// The first and last millisecond of years 1 to 9999 (RFC 3339's years).
const MILLIS_MIN: i64 = -62_135_596_800_000;
const MILLIS_MAX: i64 = 253_402_300_799_999;

checked_integer!(
    /// A time in milliseconds since the Unix epoch (Bencher's
    /// `DateTimeMillis`), within years 1 to 9999.
    TimestampMillis(i64), MILLIS_MIN, MILLIS_MAX, "i64",
    "Milliseconds since the Unix epoch, within years 1 to 9999: \
     -62135596800000 to 253402300799999."
);

checked_integer!(
    /// How long a key works, in seconds.
    KeyTtl(u32), 1u32, u32::MAX, "u32",
    "How long the key works, in seconds: 1 to 4294967295 (absent: 4294967295, Bencher's \
     default of over 128 years)."
);

impl TimestampMillis {
    /// The time it is.
    pub fn time(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).expect("its range is chrono's")
    }
}

/// Which keys of one owner to list.
#[derive(Clone, Debug)]
pub struct KeyQuery {
    pub name: Option<String>,
    pub search: Option<String>,
    /// Only revoked keys (default: only live ones).
    pub revoked: bool,
    pub descending: bool,
    pub per_page: u32,
    pub page: u32,
}

/// Which reports of a project to list (newest first by default).
#[derive(Clone, Debug)]
pub struct ReportQuery {
    pub branch: Option<String>,
    pub testbed: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub ascending: bool,
    /// With each report's results (Bencher's `expand`); a list leaves them
    /// out by default.
    pub expand: bool,
    pub per_page: u32,
    pub page: u32,
}
