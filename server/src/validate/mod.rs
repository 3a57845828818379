//! The contract's rules, each in one place, and the types that carry them:
//! a value of [`ResourceName`], [`Slug`], [`Ref`], [`Cpu`], [`Bytes`],
//! [`PerPage`] or [`Page`] keeps its rule by construction (serde parses
//! through it), and its JSON Schema states the rule, so `openapi.json` tells
//! a client everything the server checks. Every failure is an [`Invalid`]
//! that names the rule (the field's name comes from where it was parsed).

use std::fmt;

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{
    InstanceType, Metadata, NumberValidation, Schema, SchemaObject, StringValidation,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::random::random_bytes;

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

/// A rule a value parsed into one of these types broke (serde names the field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rule(String);

/// A request query that is checked once it is parsed: what the handler
/// receives is its [`Validate::Valid`] form.
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

/// A name's rule as a pattern: a first and a last character that is neither
/// whitespace nor a control character, and no control character between.
const NAME_PATTERN: &str =
    r"^[^\s\x00-\x1F\x7F-\x9F](?:[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?$";
/// A search text's rule as a pattern: no control characters (anywhere).
const SEARCH_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
/// Longest search text, in bytes.
pub const SEARCH_MAX_BYTES: usize = 255;
/// A slug's rule as a pattern: words of lowercase ASCII letters and digits
/// joined by single hyphens, and not a UUID (hyphenated or simple).
const SLUG_PATTERN: &str = "^(?![0-9a-f]{32}$)(?![0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$)[a-z0-9]+(?:-[a-z0-9]+)*$";
/// A `{runner}` or `{spec}` path value: a slug, or a UUID (hyphenated or
/// simple, any case).
const REF_PATTERN: &str = "^(?:[a-z0-9]+(?:-[a-z0-9]+)*|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32})$";

fn string_schema(min: u32, max: u32, pattern: &str, description: &str) -> Schema {
    SchemaObject {
        instance_type: Some(InstanceType::String.into()),
        string: Some(Box::new(StringValidation {
            min_length: Some(min),
            max_length: Some(max),
            pattern: Some(pattern.to_owned()),
        })),
        metadata: Some(Box::new(Metadata {
            description: Some(description.to_owned()),
            ..Metadata::default()
        })),
        ..SchemaObject::default()
    }
    .into()
}

fn integer_schema(format: &str, min: f64, max: f64, description: &str) -> Schema {
    SchemaObject {
        instance_type: Some(InstanceType::Integer.into()),
        format: Some(format.to_owned()),
        number: Some(Box::new(NumberValidation {
            minimum: Some(min),
            maximum: Some(max),
            ..NumberValidation::default()
        })),
        metadata: Some(Box::new(Metadata {
            description: Some(description.to_owned()),
            ..Metadata::default()
        })),
        ..SchemaObject::default()
    }
    .into()
}

/// A string newtype whose parsing is `check`, whose schema is `schema`.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr, $schema:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = Rule;

            fn try_from(value: String) -> Result<Self, Rule> {
                let check: fn(&str) -> Result<(), Invalid> = $check;
                check(&value).map_err(|e| Rule(e.rule))?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> String {
                stringify!($name).to_owned()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

checked_string!(
    /// A runner's or a spec's name.
    ResourceName,
    |value| name("name", value),
    string_schema(
        1,
        NAME_MAX_BYTES as u32,
        NAME_PATTERN,
        "A name: 1 to 64 bytes of UTF-8 (JSON Schema counts characters, so \
         `maxLength` is the closest bound it can state), with no leading or \
         trailing whitespace and no control characters.",
    )
);

checked_string!(
    /// The text of a list's `search`.
    SearchText,
    |value| search("search", value),
    string_schema(
        0,
        SEARCH_MAX_BYTES as u32,
        SEARCH_PATTERN,
        "Text to find in a name, slug or UUID: at most 255 bytes of UTF-8 \
         (JSON Schema counts characters, so `maxLength` is the closest bound \
         it can state), with no control characters.",
    )
);

checked_string!(
    /// A runner's or a spec's slug, as given.
    Slug,
    |value| slug("slug", value),
    string_schema(
        1,
        SLUG_MAX_CHARS as u32,
        SLUG_PATTERN,
        "A slug: 1 to 64 lowercase ASCII letters and digits, in words joined by \
         single hyphens (it equals its own slugified form), and not a UUID.",
    )
);

/// A whole number of bytes or CPUs, within the bounds of its rule.
macro_rules! checked_integer {
    ($(#[$doc:meta])* $name:ident($int:ty), $min:expr, $max:expr, $format:literal, $description:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = $format, into = $format)]
        pub struct $name($int);

        impl TryFrom<$int> for $name {
            type Error = Rule;

            fn try_from(value: $int) -> Result<Self, Rule> {
                if ($min..=$max).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err(Rule(format!(
                        "must be an integer from {} to {}, got {value}",
                        $min, $max
                    )))
                }
            }
        }

        impl From<$name> for $int {
            fn from(value: $name) -> $int {
                value.0
            }
        }

        impl $name {
            pub fn get(self) -> $int {
                self.0
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> String {
                stringify!($name).to_owned()
            }

            fn is_referenceable() -> bool {
                false
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                integer_schema(
                    match $format {
                        "u32" => "uint32",
                        "i64" => "int64",
                        _ => "uint64",
                    },
                    $min as f64,
                    $max as f64,
                    $description,
                )
            }
        }
    };
}

checked_integer!(
    /// A spec's number of CPUs.
    Cpu(u32), 1u32, CPU_MAX, "u32", "The number of CPUs: 1 to 2147483647."
);
checked_integer!(
    /// A spec's memory or disk, in bytes.
    Bytes(u64), 1u64, BYTES_MAX, "u64", "A size in bytes: 1 to 9223372036854775807."
);
checked_integer!(
    /// A list's page size.
    PerPage(u32), 1u32, PER_PAGE_MAX, "u32", "The number of items per page: 1 to 255 (default 8)."
);
checked_integer!(
    /// A list's page number.
    Page(u32), 1u32, u32::MAX, "u32", "The page number, from 1 (the default) to 4294967295."
);

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

/// Checks a list's search text: at most 255 bytes, no control characters
/// (the trigram index cannot take NUL, and no name, slug or UUID holds one).
pub fn search(field: &str, text: &str) -> Result<(), Invalid> {
    let invalid = |rule: String| Err(Invalid::new(field, rule));
    if text.len() > SEARCH_MAX_BYTES {
        return invalid(format!(
            "must be at most {SEARCH_MAX_BYTES} bytes long, got {} bytes",
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
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
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Ref {
    Uuid(Uuid),
    Slug(String),
}

impl Ref {
    /// Parses a `{runner}` or `{spec}` value: `kind` is `runner` or `spec`.
    pub fn parse(kind: &str, segment: &str) -> Result<Self, Invalid> {
        if let Ok(uuid) = Uuid::try_parse(segment) {
            return Ok(Self::Uuid(uuid));
        }
        slug(kind, segment).map_err(|_| {
            Invalid::new(
                kind,
                format!("`{}` is neither a slug nor a UUID", segment.escape_debug()),
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

impl TryFrom<String> for Ref {
    type Error = Rule;

    fn try_from(value: String) -> Result<Self, Rule> {
        Ref::parse("path", &value).map_err(|e| Rule(e.rule))
    }
}

impl Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Uuid(uuid) => uuid.serialize(serializer),
            Self::Slug(slug) => serializer.serialize_str(slug),
        }
    }
}

impl JsonSchema for Ref {
    fn schema_name() -> String {
        "ResourceId".to_owned()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            1,
            SLUG_MAX_CHARS as u32,
            REF_PATTERN,
            "A slug or a UUID (hyphenated, or 32 hex digits).",
        )
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

/// A validated list query (of runners or of specs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub sort: Sort,
    pub direction: Direction,
    pub per_page: u32,
    pub page: u32,
    pub name: Option<String>,
    /// Lowercased search text.
    pub search: Option<String>,
    pub archived: bool,
    /// Runners only: the status to list (`offline`, `idle` or `busy`).
    pub status: Option<&'static str>,
}

/// The direction of a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

impl ListQuery {
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per_page)
    }
}

/// The rules of a list query's parameters, for both lists.
pub fn list_rule(param: &str) -> Option<&'static str> {
    Some(match param {
        "sort" => "`name` or `created`",
        "direction" => "`asc` or `desc`",
        "per_page" => "an integer from 1 to 255",
        "page" => "an integer from 1 to 4294967295",
        "archived" => "`true` or `false`",
        "status" => "`offline`, `idle` or `busy`",
        _ => return None,
    })
}

mod audit;
pub mod image;
mod jobs;
mod lists;
mod registry;
mod scope;
#[cfg(test)]
mod tests;
pub use audit::{AuditActionFilter, AuditListQuery, AuditQuery};
pub use jobs::*;
pub use lists::*;
pub use registry::*;
pub use scope::{OciScope, OciTokenQuery, SCOPE_NAME_MAX_BYTES, SCOPES_MAX};
