//! An OCI image reference as Bencher's CLI takes it (`bencher run --image`):
//! `[host[:port]/]repository[:tag][@sha256:digest]`, by the OCI
//! distribution reference grammar, with Docker's rule for the first
//! component: it is the host when a `/` follows it and it holds a `.` or a
//! `:`, or is `localhost`; otherwise it is part of the repository.
//!
//! Stricter than Bencher v0.6.12 (which takes any non-empty string and
//! fails later, at the registry): what this refuses, no registry would
//! serve.

use std::fmt;

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::Schema;
use serde::{Deserialize, Serialize};

use super::{Invalid, Rule, string_schema};

/// Longest repository with its host, in characters (the distribution
/// reference's bound), for the whole reference's bound; not checked apart
/// (a schema cannot state it: a registry refuses a longer name itself).
pub const NAME_MAX_CHARS: usize = 255;
/// Longest tag, in characters.
pub const TAG_MAX_CHARS: usize = 128;
/// Longest reference: a name, a tag and a SHA-256 digest.
pub const REFERENCE_MAX_CHARS: usize = NAME_MAX_CHARS + 1 + TAG_MAX_CHARS + 1 + 71;
/// The registry Docker assumes for a reference without a host.
pub const DOCKER_HUB: &str = "docker.io";

/// The rule in a JSON Schema pattern (ECMA-262), whole: what the parser
/// takes, exactly (a port from 0 to 65535 included). The length is the
/// schema's `maxLength` ([`REFERENCE_MAX_CHARS`]).
const IMAGE_PATTERN: &str = concat!(
    "^(?![0-9a-f]{64}$)(?:",
    // A host: a name with a dot, any name with a port, `localhost`, or an
    // IPv6 address in brackets.
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)+(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?",
    r"|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?:(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})",
    r"|localhost",
    // (with a `:` inside or a port: Docker's rule, a host has `.` or `:`)
    r"|\[[0-9A-Fa-f]*:[0-9A-Fa-f:]*\](?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?|\[[0-9A-Fa-f:]+\]:(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))/",
    // Or none, when the first component is no host.
    r"|(?![^/]*[.:][^/]*/)(?!localhost/))",
    // The repository, the tag, the digest.
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*",
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$",
);

/// A parsed image reference. Built only by [`ImageReference::parse`], so
/// each part keeps its rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    host: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageReference {
    /// Parses `value`; the error names `field` and says which rule broke.
    pub fn parse(field: &str, value: &str) -> Result<Self, Invalid> {
        parse(value).map_err(|why| Invalid {
            field: field.to_owned(),
            rule: format!(
                "`{}` is not an image reference `[host[:port]/]repository[:tag][@sha256:digest]`: {why}",
                value.chars().take(120).collect::<String>().escape_debug()
            ),
        })
    }

    /// The registry's host (with its port), as written; `None` when the
    /// reference names none (Docker then assumes `docker.io`).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The repository: path components joined by `/`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest's digest (`sha256:` and 64 lowercase hex digits), if
    /// given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Whether it names Docker's default registry: no host, or
    /// `docker.io` / `index.docker.io` (which Bencher accepts as naming
    /// its own registry too).
    pub fn names_default_registry(&self) -> bool {
        matches!(self.host(), None | Some(DOCKER_HUB | "index.docker.io"))
    }

    /// The repository as Bencher reads a project from it: a single path
    /// component, after dropping Docker's implied `library/` on the
    /// default registry; `None` for a repository of several components.
    pub fn project_repository(&self) -> Option<&str> {
        let repository = if self.names_default_registry() {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
        } else {
            &self.repository
        };
        (!repository.contains('/')).then_some(repository)
    }
}

impl fmt::Display for ImageReference {
    /// The reference as written (less nothing: every part is kept).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.host {
            write!(f, "{host}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn parse(value: &str) -> Result<ImageReference, String> {
    if value.is_empty() {
        return Err("it is empty".to_owned());
    }
    if value.len() > REFERENCE_MAX_CHARS {
        return Err(format!(
            "it is longer than {REFERENCE_MAX_CHARS} characters"
        ));
    }
    if value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("64 hex digits are an image ID, not a repository".to_owned());
    }
    let (name_tag, digest) = match value.split_once('@') {
        Some((name_tag, digest)) => (name_tag, Some(check_digest(digest)?)),
        None => (value, None),
    };
    let (host, rest) = match name_tag.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            check_host(first)?;
            (Some(first), rest)
        }
        _ => (None, name_tag),
    };
    let (repository, tag) = match rest.split_once(':') {
        Some((repository, tag)) => (repository, Some(check_tag(tag)?)),
        None => (rest, None),
    };
    check_repository(repository)?;
    Ok(ImageReference {
        host: host.map(str::to_owned),
        repository: repository.to_owned(),
        tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    })
}

fn check_digest(digest: &str) -> Result<&str, String> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if ok {
        Ok(digest)
    } else {
        Err("the digest after `@` must be `sha256:` and 64 lowercase hex digits".to_owned())
    }
}

/// A host: a domain name (components of ASCII letters, digits and inner
/// hyphens, joined by dots) or an IPv6 address in brackets, and an
/// optional port from 0 to 65535.
fn check_host(host: &str) -> Result<(), String> {
    let bad = |what: &str| Err(format!("the host `{}` {what}", host.escape_debug()));
    let (name, port) = if let Some(inner) = host.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return bad("opens `[` without closing it");
        };
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return bad("must hold an IPv6 address (hex digits and `:`) between `[` and `]`");
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return bad("may only have a `:port` after `]`"),
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        };
        if !name.split('.').all(component_ok) {
            return bad(
                "must be a domain name: components of ASCII letters, digits and inner \
                 hyphens, joined by dots",
            );
        }
    }
    if let Some(port) = port {
        let ok = (1..=5).contains(&port.len())
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| p <= 65535);
        if !ok {
            return bad("must have a port from 0 to 65535 after `:`");
        }
    }
    Ok(())
}

/// A tag: 1 to 128 of ASCII letters, digits, `_`, `.` and `-`, not
/// beginning with `.` or `-`.
fn check_tag(tag: &str) -> Result<&str, String> {
    let ok = (1..=TAG_MAX_CHARS).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(tag)
    } else {
        Err(format!(
            "the tag `{}` must be 1 to {TAG_MAX_CHARS} ASCII letters, digits, `_`, `.` and \
             `-`, not beginning with `.` or `-`",
            tag.escape_debug()
        ))
    }
}

/// A repository: path components joined by `/`, each lowercase letters and
/// digits in runs joined by one `.`, one or two `_`, or any number of `-`.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("it names no repository".to_owned());
    }
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "the repository `{}` must be lowercase",
            repository.escape_debug()
        ));
    }
    for component in repository.split('/') {
        if !path_component(component) {
            return Err(format!(
                "the repository's component `{}` must be lowercase letters and digits in \
                 runs joined by one `.`, one or two `_`, or hyphens",
                component.escape_debug()
            ));
        }
    }
    Ok(())
}

fn path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    // Runs of letters and digits, each after a separator but the first.
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        match &component[sep..i] {
            "." | "_" | "__" => {}
            s if s.bytes().all(|b| b == b'-') => {}
            _ => return false,
        }
    }
}

impl TryFrom<String> for ImageReference {
    type Error = Rule;

    fn try_from(value: String) -> Result<Self, Rule> {
        parse(&value).map_err(|why| {
            Rule(format!(
                "must be an image reference `[host[:port]/]repository[:tag][@sha256:digest]`: {why}"
            ))
        })
    }
}

impl From<ImageReference> for String {
    fn from(image: ImageReference) -> Self {
        image.to_string()
    }
}

impl Serialize for ImageReference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageReference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::try_from(value).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ImageReference {
    fn schema_name() -> String {
        "ImageReference".to_owned()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_schema(
            1,
            REFERENCE_MAX_CHARS as u32,
            IMAGE_PATTERN,
            "An OCI image reference, `[host[:port]/]repository[:tag][@sha256:digest]`: the \
             first component is the host when a `/` follows it and it holds a `.` or a `:` \
             or is `localhost`; the repository is lowercase letters and digits in runs \
             joined by one `.`, one or two `_` or hyphens, components joined by `/`; a \
             port from 0 to 65535; at most 456 characters in all; a tag \
             of 1 to 128 ASCII letters, digits, `_`, `.` and `-` (not first `.` or `-`); a \
             digest of `sha256:` and 64 lowercase hex digits; not 64 hex digits alone.",
        )
    }
}

#[cfg(test)]
mod tests;
