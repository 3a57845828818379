//! The audit trail's query (`GET /v0/audit`): newest first, a page at a
//! time, filtered by time, runner and action.

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::Schema;
use serde::{Deserialize, Serialize};

use super::{
    Invalid, PER_PAGE_DEFAULT, Page, PerPage, QueryRules, Ref, Rfc3339Time, Rule, Validate,
    string_schema,
};
use chrono::{DateTime, Utc};

/// Which audit rows to read: from `since` on, only those about the runner
/// with this UUID or (current or past) slug, and whose action is `action`
/// or starts with `action.`; oldest first unless `newest_first`, a page
/// (`per_page`, `page` from 1) or all.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub since: Option<DateTime<Utc>>,
    pub runner: Option<String>,
    pub action: Option<String>,
    pub newest_first: bool,
    pub page: Option<(u32, u32)>,
}

impl AuditQuery {
    /// Every row is after the year 0: an earlier bound is none (and
    /// PostgreSQL's `timestamptz` cannot hold one before 4713 BC).
    pub fn new(since: Option<DateTime<Utc>>, runner: Option<String>) -> Self {
        use chrono::Datelike as _;
        let since = since.filter(|t| t.year() >= 0);
        Self {
            since,
            runner,
            ..Self::default()
        }
    }

    /// The rows a page skips and holds (`None`: every row).
    pub fn offset_limit(&self) -> (i64, Option<i64>) {
        match self.page {
            Some((per_page, page)) => {
                let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
                (offset, Some(i64::from(per_page)))
            }
            None => (0, None),
        }
    }

    /// `ASC` or `DESC`.
    pub fn order(&self) -> &'static str {
        if self.newest_first { "DESC" } else { "ASC" }
    }
}

/// Longest action filter, in characters.
const ACTION_MAX_CHARS: usize = 64;
/// An action filter's rule as a pattern: lowercase words joined by dots.
const ACTION_PATTERN: &str = r"^[a-z]+(\.[a-z]+)*$";

checked_string!(
    /// An audit action, or the words it starts with.
    AuditActionFilter,
    |value| action("action", value),
    string_schema(
        1,
        ACTION_MAX_CHARS as u32,
        ACTION_PATTERN,
        "An action (`runner.key.rotate`) or the words it starts with (`runner`: \
         every `runner.…` action): 1 to 64 lowercase ASCII letters in words \
         joined by single dots.",
    )
);

fn action(field: &str, text: &str) -> Result<(), Invalid> {
    let words_ok = text
        .split('.')
        .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
    if text.is_empty() || text.len() > ACTION_MAX_CHARS || !words_ok {
        return Err(Invalid::new(
            field,
            format!(
                "must be 1 to {ACTION_MAX_CHARS} lowercase ASCII letters in words joined by \
                 single dots (`runner`, `runner.key.rotate`), got {text:?}"
            ),
        ));
    }
    Ok(())
}

/// Query parameters of the audit trail.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditListQuery {
    /// Only rows from this time on (RFC 3339).
    pub since: Option<Rfc3339Time>,
    /// Only rows about this runner: its UUID, or a slug it has or had.
    pub runner: Option<Ref>,
    /// Only rows of this action, or of the actions it is the first words
    /// of (`runner`: every `runner.…` action).
    pub action: Option<AuditActionFilter>,
    /// The number of rows per page: 1 to 255, default 8.
    pub per_page: Option<PerPage>,
    /// The page number, starting at 1 (the default).
    pub page: Option<Page>,
}

impl QueryRules for AuditListQuery {
    fn rule(param: &str) -> Option<&'static str> {
        Some(match param {
            "since" => "a time in RFC 3339 (`2026-12-08T00:00:00Z`)",
            "runner" => "a slug or a UUID",
            "action" => "lowercase words joined by dots",
            "per_page" => "an integer from 1 to 255",
            "page" => "an integer from 1 to 4294967295",
            _ => return None,
        })
    }
}

impl Validate for AuditListQuery {
    type Valid = AuditQuery;

    fn validate(self) -> Result<AuditQuery, Invalid> {
        let since = self.since.map(chrono::DateTime::from);
        let runner = self.runner.map(|r| match r {
            Ref::Uuid(uuid) => uuid.to_string(),
            Ref::Slug(slug) => slug,
        });
        Ok(AuditQuery {
            action: self.action.map(String::from),
            newest_first: true,
            page: Some((
                self.per_page.map_or(PER_PAGE_DEFAULT, PerPage::get),
                self.page.map_or(1, Page::get),
            )),
            ..AuditQuery::new(since, runner)
        })
    }
}
