//! The validated queries of the submitter side's lists (keys, reports),
//! as the store takes them.

use chrono::{DateTime, Utc};

/// Which keys of one owner to list.
#[derive(Clone, Debug)]
pub struct KeyQuery {
    pub name: Option<String>,
    pub search: Option<String>,
    /// Include revoked keys (default: only live ones).
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
    pub per_page: u32,
    pub page: u32,
}
