//! The rules of jobs and of the runner channel (Bencher v0.6.12's bounds),
//! each in the type that carries it, like the rest of [`crate::validate`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{ArrayValidation, InstanceType, Metadata, Schema, SchemaObject};
use serde::{Deserialize, Serialize};

use super::{Invalid, Rule, integer_schema, string_schema};

/// Longest `entrypoint` and `cmd`, in arguments (Bencher's bound).
pub const ARGS_MAX: usize = 64;
/// Most `file_paths` and `env` entries (Bencher's bounds).
pub const ENTRIES_MAX: usize = 255;
/// Longest argument, path, variable name or value, or image reference, in
/// bytes.
pub const ARG_MAX_BYTES: usize = 4096;
/// A job's default timeout, in seconds (Bencher's).
pub const TIMEOUT_DEFAULT: u32 = 3600;
/// The default long-poll of a `ready`, in seconds (Bencher's).
pub const POLL_TIMEOUT_DEFAULT: u32 = 30;

const DIGEST_PATTERN: &str = "^sha256:[0-9a-f]{64}$";
const SHA256_PATTERN: &str = "^[0-9a-f]{64}$";
const NO_CONTROL_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
const IMAGE_PATTERN: &str = r"^[^\s\x00-\x1F\x7F-\x9F]+$";
const STATUSES_PATTERN: &str = "^(pending|claimed|running|completed|processed|failed|canceled)(,(pending|claimed|running|completed|processed|failed|canceled))*$";

fn invalid(field: &str, rule: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        field: field.to_owned(),
        rule: rule.into(),
    })
}

/// Checks an image digest: `sha256:` and 64 lowercase hex digits.
pub fn digest(field: &str, value: &str) -> Result<(), Invalid> {
    let ok = value.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if ok {
        Ok(())
    } else {
        invalid(
            field,
            "must be `sha256:` followed by 64 lowercase hex digits",
        )
    }
}

/// Checks a SHA-256 in hex: 64 lowercase hex digits.
pub fn sha256(field: &str, value: &str) -> Result<(), Invalid> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        invalid(field, "must be 64 lowercase hex digits")
    }
}

/// Checks a text of at most `max` bytes with no control characters (and, if
/// `nonempty`, at least one byte and no whitespace).
fn text(field: &str, value: &str, max: usize, nonempty: bool) -> Result<(), Invalid> {
    if value.len() > max {
        return invalid(
            field,
            format!("must be at most {max} bytes, got {}", value.len()),
        );
    }
    if nonempty && value.is_empty() {
        return invalid(field, "must not be empty");
    }
    if nonempty && value.contains(char::is_whitespace) {
        return invalid(field, "must not contain whitespace");
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return invalid(
            field,
            format!(
                "must not contain control characters, found U+{:04X}",
                u32::from(c)
            ),
        );
    }
    Ok(())
}

checked_string!(
    /// An image's digest.
    ImageDigest,
    |value| digest("digest", value),
    string_schema(
        71,
        71,
        DIGEST_PATTERN,
        "The image manifest's digest: `sha256:` and 64 lowercase hex digits.",
    )
);

checked_string!(
    /// A readable image reference (`name:tag`), for people.
    ImageRef,
    |value| text("image", value, ARG_MAX_BYTES, true),
    string_schema(
        1,
        ARG_MAX_BYTES as u32,
        IMAGE_PATTERN,
        "The readable image reference (say `registry/name:tag`): 1 to 4096 \
         bytes, no whitespace or control characters. For people only: the \
         agent pulls by `project` and `digest`.",
    )
);

checked_string!(
    /// The SHA-256 of a runner binary, in hex.
    Sha256Hex,
    |value| sha256("checksum", value),
    string_schema(64, 64, SHA256_PATTERN, "A SHA-256, as 64 lowercase hex digits.")
);

checked_string!(
    /// A version an agent reports.
    AgentVersion,
    |value| text("version", value, 64, true),
    string_schema(
        1,
        64,
        IMAGE_PATTERN,
        "The agent's version: 1 to 64 bytes, no whitespace or control characters.",
    )
);

checked_string!(
    /// One argument, path, or environment variable's name or value.
    Arg,
    |value| text("argument", value, ARG_MAX_BYTES, false),
    string_schema(
        0,
        ARG_MAX_BYTES as u32,
        NO_CONTROL_PATTERN,
        "At most 4096 bytes, no control characters.",
    )
);

checked_string!(
    /// A comma-separated list of job statuses, for a filter.
    StatusList,
    |value| {
        const STATUSES: [&str; 7] = [
            "pending",
            "claimed",
            "running",
            "completed",
            "processed",
            "failed",
            "canceled",
        ];
        if value.split(',').all(|s| STATUSES.contains(&s)) {
            Ok(())
        } else {
            invalid(
                "status",
                "must be one or more of `pending`, `claimed`, `running`, `completed`, \
                 `failed`, `canceled`, separated by commas",
            )
        }
    },
    string_schema(
        1,
        255,
        STATUSES_PATTERN,
        "One or more job statuses, separated by commas (say `pending,claimed`).",
    )
);

impl StatusList {
    /// The statuses named, each once.
    pub fn statuses(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.split(',') {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }
}

checked_integer!(
    /// A job's timeout, in seconds.
    Timeout(u32), 1u32, i32::MAX as u32, "u32",
    "The job's timeout, in seconds: 1 to 2147483647 (default 3600). Running \
     past it plus a 60 s grace cancels the job."
);
checked_integer!(
    /// How long a `ready` waits for a job, in seconds.
    PollTimeout(u32), 1u32, 900u32, "u32",
    "How long to wait for a job before `no_job`, in seconds: 1 to 900 (default 30)."
);
checked_integer!(
    /// How many times a job's benchmark runs (**beyond** Bencher, which
    /// takes any u32: its agent allocates for every iteration at once and
    /// aborts on billions, so a bound keeps one run from taking a runner
    /// down).
    Iterations(u32), 1u32, ITERATIONS_MAX, "u32",
    "How many times to run the benchmark: 1 to 1000."
);

/// Most iterations of a job.
pub const ITERATIONS_MAX: u32 = 1000;

/// A list of at most `MAX` arguments (or paths), each an [`Arg`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Arg>", into = "Vec<Arg>")]
pub struct ArgList<const MAX: usize>(Vec<Arg>);

impl<const MAX: usize> TryFrom<Vec<Arg>> for ArgList<MAX> {
    type Error = Rule;

    fn try_from(args: Vec<Arg>) -> Result<Self, Rule> {
        if args.len() > MAX {
            return Err(Rule(format!(
                "must have at most {MAX} entries, got {}",
                args.len()
            )));
        }
        Ok(Self(args))
    }
}

impl<const MAX: usize> From<ArgList<MAX>> for Vec<Arg> {
    fn from(list: ArgList<MAX>) -> Self {
        list.0
    }
}

impl<const MAX: usize> JsonSchema for ArgList<MAX> {
    fn schema_name() -> String {
        format!("ArgList{MAX}")
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::Array.into()),
            array: Some(Box::new(ArrayValidation {
                items: Some(generator.subschema_for::<Arg>().into()),
                max_items: Some(MAX as u32),
                ..ArrayValidation::default()
            })),
            metadata: Some(Box::new(Metadata {
                description: Some(format!("At most {MAX} entries.")),
                ..Metadata::default()
            })),
            ..SchemaObject::default()
        }
        .into()
    }
}

/// An `entrypoint` or `cmd`: at most 64 arguments.
pub type Args = ArgList<ARGS_MAX>;
/// `file_paths`: at most 255 paths.
pub type FilePaths = ArgList<ENTRIES_MAX>;

/// Environment variables: at most 255, each name 1 to 4096 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<Arg, Arg>", into = "BTreeMap<Arg, Arg>")]
pub struct EnvVars(BTreeMap<Arg, Arg>);

impl TryFrom<BTreeMap<Arg, Arg>> for EnvVars {
    type Error = Rule;

    fn try_from(vars: BTreeMap<Arg, Arg>) -> Result<Self, Rule> {
        if vars.len() > ENTRIES_MAX {
            return Err(Rule(format!(
                "must have at most {ENTRIES_MAX} variables, got {}",
                vars.len()
            )));
        }
        if let Some((name, _)) = vars.iter().find(|(k, _)| k.is_empty() || k.contains('=')) {
            return Err(Rule(format!(
                "a variable's name must be non-empty with no `=`, got `{}`",
                &**name
            )));
        }
        Ok(Self(vars))
    }
}

impl From<EnvVars> for BTreeMap<Arg, Arg> {
    fn from(vars: EnvVars) -> Self {
        vars.0
    }
}

impl PartialOrd for Arg {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Arg {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl JsonSchema for EnvVars {
    fn schema_name() -> String {
        "EnvVars".to_owned()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut object = SchemaObject {
            instance_type: Some(InstanceType::Object.into()),
            metadata: Some(Box::new(Metadata {
                description: Some(
                    "Environment variables: at most 255, each name non-empty with no `=`, \
                     names and values at most 4096 bytes with no control characters."
                        .to_owned(),
                ),
                ..Metadata::default()
            })),
            ..SchemaObject::default()
        };
        let validation = object.object();
        validation.max_properties = Some(ENTRIES_MAX as u32);
        validation.additional_properties = Some(Box::new(generator.subschema_for::<Arg>()));
        object.into()
    }
}

/// A validated job list query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobListQuery {
    /// The statuses to list (none: all), by their wire names.
    pub statuses: Vec<String>,
    pub runner: Option<super::Ref>,
    pub spec: Option<super::Ref>,
    /// Only a project's jobs (set from the path, never the query).
    pub project: Option<super::Ref>,
    pub direction: super::Direction,
    pub per_page: u32,
    pub page: u32,
}

impl JobListQuery {
    /// Every job on one page of 255, oldest first, no filter.
    pub fn everything() -> Self {
        Self {
            statuses: Vec::new(),
            runner: None,
            spec: None,
            project: None,
            direction: super::Direction::Asc,
            per_page: 255,
            page: 1,
        }
    }

    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per_page)
    }
}

/// The rules of a job list's parameters.
pub fn job_list_rule(param: &str) -> Option<&'static str> {
    Some(match param {
        "status" => "job statuses separated by commas",
        "runner" | "spec" => "a slug or a UUID",
        "sort" => "`created`",
        "direction" => "`asc` or `desc`",
        "per_page" => "an integer from 1 to 255",
        "page" => "an integer from 1 to 4294967295",
        _ => return None,
    })
}

/// The earliest and latest years of a time a job may carry (RFC 3339 has
/// four-digit years; an agent parses nothing else).
pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// A time in RFC 3339 (a year of four digits), as `backdate` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "chrono::DateTime<chrono::Utc>",
    into = "chrono::DateTime<chrono::Utc>"
)]
pub struct Rfc3339Time(chrono::DateTime<chrono::Utc>);

impl TryFrom<chrono::DateTime<chrono::Utc>> for Rfc3339Time {
    type Error = Rule;

    fn try_from(t: chrono::DateTime<chrono::Utc>) -> Result<Self, Rule> {
        use chrono::Datelike as _;
        if YEARS.contains(&t.year()) {
            Ok(Self(t))
        } else {
            Err(Rule(format!(
                "must be a time in the years 0001 to 9999, got the year {}",
                t.year()
            )))
        }
    }
}

impl From<Rfc3339Time> for chrono::DateTime<chrono::Utc> {
    fn from(t: Rfc3339Time) -> Self {
        t.0
    }
}

impl JsonSchema for Rfc3339Time {
    fn schema_name() -> String {
        "Rfc3339Time".to_owned()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            format: Some("date-time".to_owned()),
            metadata: Some(Box::new(Metadata {
                description: Some("An RFC 3339 time, in the years 0001 to 9999.".to_owned()),
                ..Metadata::default()
            })),
            ..SchemaObject::default()
        }
        .into()
    }
}
