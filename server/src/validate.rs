//! The contract's validation rules, each in one place. Every failure is an
//! [`Invalid`] that names the field and the rule. The request extractors run
//! [`Validate`] on every body and query, so a handler only ever sees values
//! that keep the rules.

use std::fmt;

use uuid::Uuid;

use crate::random::random_bytes;
use crate::types::{
    JsonDirection, JsonNewRunner, JsonNewRunnerSpec, JsonNewSpec, JsonUpdateRunner, JsonUpdateSpec,
    RunnersQuery, RunnersSort, SpecsQuery, SpecsSort,
};

/// A value that breaks a rule: which field, and what the rule is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct Invalid {
    pub field: String,
    pub rule: String,
}

impl Invalid {
    fn new(field: &str, rule: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            rule: rule.into(),
        }
    }
}

/// A request body or query that is checked once it is parsed: what the
/// handler receives is its [`Validate::Valid`] form.
pub trait Validate: Sized {
    type Valid;
    fn validate(self) -> Result<Self::Valid, Invalid>;
}

/// A query type that can say what each of its parameters accepts, for the
/// message of a parameter that does not even parse.
pub trait QueryRules {
    /// What `param` accepts.
    fn rule(param: &str) -> Option<&'static str>;
}

/// Longest name, in bytes.
pub const NAME_MAX_BYTES: usize = 64;
/// Longest slug, in characters (slugs are ASCII, so also bytes).
pub const SLUG_MAX_CHARS: usize = 64;
/// Default and largest page size of a list.
pub const PER_PAGE_DEFAULT: u32 = 8;
pub const PER_PAGE_MAX: u32 = 255;
/// Largest number of CPUs of a spec (Bencher's bound, `i32::MAX`).
pub const CPU_MAX: u32 = i32::MAX as u32;
/// Largest memory or disk of a spec, in bytes (Bencher's bound, `i64::MAX`).
pub const BYTES_MAX: u64 = i64::MAX as u64;

/// Checks a runner name: 1 to 64 bytes, no leading or trailing whitespace, no
/// control characters.
pub fn name(field: &str, name: &str) -> Result<(), Invalid> {
    let invalid = |rule: String| Err(Invalid::new(field, rule));
    if name.is_empty() || name.len() > NAME_MAX_BYTES {
        return invalid(format!(
            "must be 1 to {NAME_MAX_BYTES} bytes long, got {} bytes",
            name.len()
        ));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return invalid("must not start or end with whitespace".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return invalid(format!(
            "must not contain control characters, found U+{:04X}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Checks an explicitly given slug: 1 to 64 characters, lowercase ASCII
/// letters and digits in words joined by single hyphens, not a UUID.
pub fn slug(field: &str, slug: &str) -> Result<(), Invalid> {
    let invalid = |rule: &str| Err(Invalid::new(field, rule));
    if slug.is_empty() || slug.len() > SLUG_MAX_CHARS {
        return invalid("must be 1 to 64 characters long");
    }
    if slug::slugify(slug) != slug {
        return invalid(
            "must be lowercase ASCII letters and digits in words joined by single hyphens \
             (for example `my-runner-1`)",
        );
    }
    if Uuid::try_parse(slug).is_ok() {
        return invalid("must not be a UUID, so that a path segment is unambiguous");
    }
    Ok(())
}

/// The slug generated from a name: the slugified name cut to 64 characters,
/// or `None` if nothing usable is left (the caller picks a random one then).
pub fn slug_from_name(name: &str) -> Option<String> {
    let slug = slug::slugify(name);
    let cut = slug[..slug.len().min(SLUG_MAX_CHARS)].trim_end_matches('-');
    (!cut.is_empty()).then(|| cut.to_owned())
}

/// A generated slug's candidate number `attempt`: the slug of the name
/// first, then that slug with a random suffix (`fallback` with one, for a
/// name that leaves no slug). Never parseable as a UUID.
pub fn generated_slug(base: Option<&str>, fallback: &str, attempt: usize) -> String {
    match base {
        // A bare UUID (from a name such as one) would be an ambiguous slug:
        // it always gets a suffix.
        Some(base) if attempt == 0 && Uuid::try_parse(base).is_err() => base.to_owned(),
        base => slug_with_suffix(base.unwrap_or(fallback), &hex::encode(random_bytes::<4>())),
    }
}

/// `base` with `-suffix`, cutting `base` so that the result fits in 64 chars.
pub fn slug_with_suffix(base: &str, suffix: &str) -> String {
    let keep = SLUG_MAX_CHARS - suffix.len() - 1;
    let base = base[..base.len().min(keep)].trim_end_matches('-');
    if base.is_empty() {
        suffix.to_owned()
    } else {
        format!("{base}-{suffix}")
    }
}

/// How a request names one runner or spec: by UUID or by slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    Uuid(Uuid),
    Slug(String),
}

/// A runner, by UUID or slug.
pub type RunnerRef = Ref;
/// A spec, by UUID or slug.
pub type SpecRef = Ref;

impl Ref {
    /// Parses a `{runner}` or `{spec}` value: `kind` is `runner` or `spec`.
    pub fn parse(kind: &str, segment: &str) -> Result<Self, Invalid> {
        if let Ok(uuid) = Uuid::try_parse(segment) {
            return Ok(Self::Uuid(uuid));
        }
        slug(kind, segment).map_err(|_| {
            Invalid::new(
                kind,
                format!(
                    "`{}` is neither a {kind} slug nor a UUID",
                    segment.escape_debug()
                ),
            )
        })?;
        Ok(Self::Slug(segment.to_owned()))
    }
}

impl fmt::Display for Ref {
    /// How a message names the reference: "the UUID `…`" or "the slug `…`".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uuid(uuid) => write!(f, "the UUID `{uuid}`"),
            Self::Slug(slug) => write!(f, "the slug `{slug}`"),
        }
    }
}

/// What a list is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Name, ties broken by slug.
    Name,
    /// Creation order.
    Created,
}

impl From<RunnersSort> for Sort {
    fn from(sort: RunnersSort) -> Self {
        match sort {
            RunnersSort::Name => Self::Name,
            RunnersSort::Created => Self::Created,
        }
    }
}

impl From<SpecsSort> for Sort {
    fn from(sort: SpecsSort) -> Self {
        match sort {
            SpecsSort::Name => Self::Name,
            SpecsSort::Created => Self::Created,
        }
    }
}

/// A validated list query (of runners or of specs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub sort: Sort,
    pub direction: JsonDirection,
    pub per_page: u32,
    pub page: u32,
    pub name: Option<String>,
    /// Lowercased search text.
    pub search: Option<String>,
    pub archived: bool,
}

impl ListQuery {
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per_page)
    }
}

/// The rules of a list query's parameters, for both lists.
fn list_rule(param: &str) -> Option<&'static str> {
    Some(match param {
        "sort" => "`name` or `created`",
        "direction" => "`asc` or `desc`",
        "per_page" => "an integer from 1 to 255",
        "page" => "an integer from 1 to 4294967295",
        "archived" => "`true` or `false`",
        _ => return None,
    })
}

/// A list query's parts, as parsed, into a [`ListQuery`].
fn list_query(
    sort: Option<Sort>,
    direction: Option<JsonDirection>,
    per_page: Option<u32>,
    page: Option<u32>,
    name: Option<String>,
    search: Option<String>,
    archived: Option<bool>,
) -> Result<ListQuery, Invalid> {
    let per_page = per_page.unwrap_or(PER_PAGE_DEFAULT);
    if !(1..=PER_PAGE_MAX).contains(&per_page) {
        return Err(Invalid::new(
            "per_page",
            format!("must be an integer from 1 to {PER_PAGE_MAX}, got {per_page}"),
        ));
    }
    let page = page.unwrap_or(1);
    if page < 1 {
        return Err(Invalid::new(
            "page",
            "must be an integer of at least 1, got 0",
        ));
    }
    Ok(ListQuery {
        sort: sort.unwrap_or(Sort::Name),
        direction: direction.unwrap_or_default(),
        per_page,
        page,
        name,
        search: search.map(|s| s.to_lowercase()),
        archived: archived.unwrap_or(false),
    })
}

macro_rules! list_query_rules {
    ($query:ty) => {
        impl QueryRules for $query {
            fn rule(param: &str) -> Option<&'static str> {
                list_rule(param)
            }
        }

        impl Validate for $query {
            type Valid = ListQuery;

            fn validate(self) -> Result<ListQuery, Invalid> {
                list_query(
                    self.sort.map(Sort::from),
                    self.direction,
                    self.per_page,
                    self.page,
                    self.name,
                    self.search,
                    self.archived,
                )
            }
        }
    };
}

list_query_rules!(RunnersQuery);
list_query_rules!(SpecsQuery);

/// The name and slug of a body, where given.
fn name_and_slug(given_name: Option<&str>, given_slug: Option<&str>) -> Result<(), Invalid> {
    if let Some(given) = given_name {
        name("name", given)?;
    }
    if let Some(given) = given_slug {
        slug("slug", given)?;
    }
    Ok(())
}

impl Validate for JsonNewRunner {
    type Valid = Self;

    fn validate(self) -> Result<Self, Invalid> {
        name_and_slug(Some(&self.name), self.slug.as_deref())?;
        Ok(self)
    }
}

impl Validate for JsonUpdateRunner {
    type Valid = Self;

    fn validate(self) -> Result<Self, Invalid> {
        name_and_slug(self.name.as_deref(), self.slug.as_deref())?;
        Ok(self)
    }
}

impl Validate for JsonNewSpec {
    type Valid = Self;

    fn validate(self) -> Result<Self, Invalid> {
        name_and_slug(Some(&self.name), self.slug.as_deref())?;
        if !(1..=CPU_MAX).contains(&self.cpu) {
            return Err(Invalid::new(
                "cpu",
                format!("must be an integer from 1 to {CPU_MAX}, got {}", self.cpu),
            ));
        }
        for (field, bytes) in [("memory", self.memory), ("disk", self.disk)] {
            if !(1..=BYTES_MAX).contains(&bytes) {
                return Err(Invalid::new(
                    field,
                    format!("must be a number of bytes from 1 to {BYTES_MAX}, got {bytes}"),
                ));
            }
        }
        Ok(self)
    }
}

impl Validate for JsonUpdateSpec {
    type Valid = Self;

    fn validate(self) -> Result<Self, Invalid> {
        name_and_slug(self.name.as_deref(), self.slug.as_deref())?;
        Ok(self)
    }
}

impl Validate for JsonNewRunnerSpec {
    type Valid = SpecRef;

    fn validate(self) -> Result<SpecRef, Invalid> {
        Ref::parse("spec", &self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("name", "Runner 1 ✓").is_ok());
        assert!(name("name", &"é".repeat(32)).is_ok());
        for bad in [
            "",
            " x",
            "x ",
            "a\u{0}b",
            "a\nb",
            &"x".repeat(65),
            &"é".repeat(33),
        ] {
            let err = name("name", bad).unwrap_err().to_string();
            assert!(err.starts_with("name: must"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn slugs() {
        for good in ["a", "my-runner-1", &"a".repeat(64)] {
            assert!(slug("slug", good).is_ok(), "{good}");
        }
        let uuid = Uuid::new_v4();
        for bad in [
            "",
            "A",
            "a--b",
            "-a",
            "a-",
            "a_b",
            &"a".repeat(65),
            &uuid.to_string(),
            &uuid.simple().to_string(),
        ] {
            assert!(slug("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_slugs() {
        assert_eq!(
            slug_from_name("My Runner #1").as_deref(),
            Some("my-runner-1")
        );
        assert_eq!(slug_from_name("Æúű"), Some("aeuu".into()));
        assert_eq!(slug_from_name("!!!"), None);
        let long = slug_from_name(&"ab ".repeat(40)).unwrap();
        assert!(long.len() <= 64 && !long.ends_with('-'));
        let suffixed = slug_with_suffix(&"a".repeat(64), "12345678");
        assert_eq!(suffixed.len(), 64);
        assert!(slug("slug", &suffixed).is_ok());
    }
}
