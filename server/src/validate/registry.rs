//! The rule of a job's registry URL, once: its pattern is both what
//! openapi.json states and what the server checks (with an ECMA-262 engine,
//! as JSON Schema reads a pattern), so a URL the schema allows is one the
//! server takes, and one a URL parser (the server's and the agent's) takes.

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::Schema;
use serde::{Deserialize, Serialize};

use super::{Invalid, Rule, string_schema};

/// Longest registry URL, in bytes (which are characters: it is ASCII).
pub const URL_MAX_BYTES: usize = 2048;

/// A registry URL, exactly. The last label of a host name begins with a
/// letter, as a URL parser reads a name ending in a number as an IPv4
/// address; single hyphens leave out punycode (`xn--`) labels, which a
/// parser may refuse.
const URL_PATTERN: &str = concat!(
    r"^https?://(",
    r"([A-Za-z0-9_]+(-[A-Za-z0-9_]+)*\.)*[A-Za-z][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*",
    r"|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"|\[(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,7}:",
    r"|([0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,5}(:[0-9A-Fa-f]{1,4}){1,2}",
    r"|([0-9A-Fa-f]{1,4}:){1,4}(:[0-9A-Fa-f]{1,4}){1,3}|([0-9A-Fa-f]{1,4}:){1,3}(:[0-9A-Fa-f]{1,4}){1,4}",
    r"|([0-9A-Fa-f]{1,4}:){1,2}(:[0-9A-Fa-f]{1,4}){1,5}|[0-9A-Fa-f]{1,4}:(:[0-9A-Fa-f]{1,4}){1,6}",
    r"|:((:[0-9A-Fa-f]{1,4}){1,7}|:))\]",
    r")(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?",
    r"(/[\x21\x22\x24-\x3E\x40-\x5B\x5D-\x7E]*)?$",
);

/// [`URL_PATTERN`] in words.
const URL_RULE: &str = "`http://` or `https://`; a host: a name (labels joined by dots, each \
     of ASCII letters, digits and underscores in words joined by single hyphens, the last label \
     beginning with a letter), an IPv4 address, or an IPv6 address in brackets; an optional \
     port (0 to 65535); and an optional path of printable ASCII without `?`, `#` or `\\`";

fn invalid(field: &str, rule: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        field: field.to_owned(),
        rule: rule.into(),
    })
}

/// Checks a registry URL: [`URL_PATTERN`], at most 2048 bytes; the checks
/// before it only say more precisely what is wrong.
pub fn registry_url(field: &str, value: &str) -> Result<(), Invalid> {
    static URL: std::sync::LazyLock<regress::Regex> = std::sync::LazyLock::new(|| {
        regress::Regex::new(URL_PATTERN).expect("URL_PATTERN is an ECMA-262 regular expression")
    });
    if value.len() > URL_MAX_BYTES {
        return invalid(field, format!("must be at most {URL_MAX_BYTES} bytes"));
    }
    // As written, not only as a URL parser would mend it (`http:\\host`
    // and `http:///path` parse, to another host than they seem to name).
    let Some(rest) = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
    else {
        return invalid(field, "must begin with `http://` or `https://`");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return invalid(field, "must name a host after `//`");
    }
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || *c == '\\') {
        return invalid(field, format!("must not contain {c:?}"));
    }
    let url = match url::Url::parse(value) {
        Ok(url) => url,
        Err(e) => return invalid(field, format!("must be an absolute URL ({e})")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return invalid(field, "must not hold a user name or password");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return invalid(field, "must not have a query or fragment");
    }
    if URL.find(value).is_none() {
        return invalid(field, format!("must be {URL_RULE}"));
    }
    Ok(())
}

checked_string!(
    /// Where a job's image is: the registry's base URL.
    RegistryUrl,
    |value| registry_url("registry", value),
    string_schema(
        1,
        URL_MAX_BYTES as u32,
        URL_PATTERN,
        &format!(
            "The OCI registry's URL, at most 2048 characters: {URL_RULE}; no user, \
             password, query or fragment. The agent pulls `{{host}}/{{project}}@{{digest}}` \
             from it, over the URL's scheme."
        ),
    )
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema's pattern (as a client reads it) and the server agree on
    /// every URL, and each one the server takes, a URL parser takes: the
    /// first from an outside Schemathesis run (a non-ASCII host the old
    /// pattern allowed and the URL parser refused), then the edges.
    #[test]
    fn the_schema_states_exactly_the_urls_the_server_takes() {
        let Schema::Object(schema) = RegistryUrl::json_schema(&mut SchemaGenerator::default())
        else {
            panic!("RegistryUrl's schema is an object");
        };
        let pattern = schema.string.and_then(|s| s.pattern).expect("a pattern");
        let stated = regress::Regex::new(&pattern).expect("an ECMA-262 pattern");
        let urls = [
            (
                "https://\u{a9}\u{6d57}\u{18065}\u{c7}^\u{fc}{/\u{fd}W\u{e4}",
                false,
            ),
            ("http://b\u{fc}cher.example", false),
            ("http://xn--zz.example", false),
            ("http://host/p\u{e4}th", false),
            ("http://a:65536", false),
            ("http://1.2.3.256", false),
            ("http://a.1", false),
            ("http://0x1", false),
            ("http://[1:2]", false),
            ("http://user@host", false),
            ("http://host?x", false),
            ("http://host/a b", false),
            ("http://127.0.0.1:5000", true),
            ("https://registry.example.com/base/", true),
            ("http://my_registry:5000", true),
            ("http://[::1]:65535/v2", true),
            ("http://[2001:db8::8a2e:370:7334]", true),
            ("http://a-b.c_d.example:0/%zz\"<>", true),
        ];
        for (url, taken) in urls {
            let said = stated.find(url).is_some();
            let did = registry_url("registry", url);
            assert_eq!((said, did.is_ok()), (taken, taken), "{url}: {did:?}");
            if taken {
                url::Url::parse(url).expect("a URL parser takes it");
            }
        }
    }
}
