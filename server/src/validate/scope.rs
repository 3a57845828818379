//! The query of Docker's token endpoint (`GET /v0/auth/oci/token`): its
//! `service` and its scopes, by Docker's grammar
//! (`type[(class)]:name:action[,action…]`, several in one parameter
//! separated by spaces or in repeated `scope` parameters).

use schemars::JsonSchema;
use serde::Deserialize;

use super::Invalid;

/// The most scopes one request may ask for.
pub const SCOPES_MAX: usize = 16;
/// The longest resource name, in bytes (distribution's bound on a
/// repository name).
pub const SCOPE_NAME_MAX_BYTES: usize = 255;

/// The query of Docker's token endpoint, as the OpenAPI document states it;
/// read by [`OciTokenQuery::parse`], which takes `scope` any number of
/// times and ignores what else Docker's clients send (`account`,
/// `client_id`, `offline_token`).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OciTokenQuery {
    /// The registry's name, which is the token's audience: only
    /// `runners-registry` (what `runners-server registry-config` gives the
    /// registry).
    #[schemars(regex(pattern = r"^runners-registry$"))]
    pub service: Option<String>,
    /// What the token is asked to grant: `type:name:actions`, e.g.
    /// `repository:{project uuid}:pull,push`. The type and each action are
    /// lowercase letters and digits (an action may also be `*`), the name
    /// 1 to 255 bytes of lowercase letters, digits and `._-/:`. Several
    /// scopes are separated by spaces or repeat the parameter (16 at most).
    #[schemars(regex(
        pattern = r"^ *([a-z0-9]+(\([a-z0-9]+\))?:[a-z0-9._/:-]{1,255}:(\*|[a-z0-9]+)(,(\*|[a-z0-9]+))*( +[a-z0-9]+(\([a-z0-9]+\))?:[a-z0-9._/:-]{1,255}:(\*|[a-z0-9]+)(,(\*|[a-z0-9]+))*){0,15})? *$"
    ))]
    pub scope: Option<String>,
}

/// One scope asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciScope {
    /// `repository`, `registry`, … (with its class, if any, as written).
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl OciTokenQuery {
    /// The scopes of the raw query string, once its `service` (if any) is
    /// `service`.
    pub fn parse(raw: &str, service: &str) -> Result<Vec<OciScope>, Invalid> {
        let mut scopes = Vec::new();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match &*key {
                "service" if value != service => {
                    return Err(Invalid::new(
                        "query parameter `service`",
                        format!("must be `{service}`, this registry's name"),
                    ));
                }
                "scope" => {
                    for text in value.split(' ').filter(|s| !s.is_empty()) {
                        scopes.push(scope(text)?);
                    }
                }
                _ => {}
            }
            if scopes.len() > SCOPES_MAX {
                return Err(Invalid::new(
                    "query parameter `scope`",
                    format!("at most {SCOPES_MAX} scopes"),
                ));
            }
        }
        Ok(scopes)
    }
}

/// One scope, `type:name:actions`.
fn scope(text: &str) -> Result<OciScope, Invalid> {
    let bad = |rule: String| Invalid::new("query parameter `scope`", format!("`{text}`: {rule}"));
    let (kind, rest) = text
        .split_once(':')
        .ok_or_else(|| bad("expected `type:name:actions`".into()))?;
    let (name, actions) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("expected `type:name:actions`".into()))?;
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let class_ok = match kind.split_once('(') {
        None => word(kind),
        Some((base, class)) => word(base) && class.strip_suffix(')').is_some_and(word),
    };
    if !class_ok {
        return Err(bad(
            "the type is lowercase letters and digits, with an optional `(class)`".into(),
        ));
    }
    let name_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b);
    if name.is_empty() || name.len() > SCOPE_NAME_MAX_BYTES || !name.bytes().all(name_ok) {
        return Err(bad(format!(
            "the name is 1 to {SCOPE_NAME_MAX_BYTES} bytes of lowercase letters, digits and `._-/:`"
        )));
    }
    let actions: Vec<String> = actions.split(',').map(str::to_owned).collect();
    if !actions.iter().all(|a| a == "*" || word(a)) {
        return Err(bad(
            "each action is lowercase letters and digits, or `*`, joined by `,`".into(),
        ));
    }
    Ok(OciScope {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "runners-registry";

    #[test]
    fn docker_scopes_parse() {
        let got = OciTokenQuery::parse(
            "account=ci&service=runners-registry&scope=repository%3Aab%2Fc%3Apull%2Cpush\
             &scope=registry%3Acatalog%3A*+repository(plugin)%3Ahost%3A5000%2Fx%3Apull",
            SERVICE,
        )
        .unwrap();
        let names: Vec<_> = got.iter().map(|s| (&*s.kind, &*s.name)).collect();
        assert_eq!(
            names,
            [
                ("repository", "ab/c"),
                ("registry", "catalog"),
                ("repository(plugin)", "host:5000/x")
            ]
        );
        assert_eq!(got[0].actions, ["pull", "push"]);
        assert_eq!(got[1].actions, ["*"]);
        assert_eq!(OciTokenQuery::parse("", SERVICE).unwrap(), []);
    }

    #[test]
    fn bad_scopes_and_services_name_the_parameter() {
        for query in [
            "scope=repository",
            "scope=repository%3Ax",
            "scope=Repository%3Ax%3Apull",
            "scope=repository%3A%3Apull",
            "scope=repository%3AX%3Apull",
            "scope=repository%3Ax%3Apu%20ll",
            "scope=repository%3Ax%3Apull%2C",
            "scope=repository(%3Ax%3Apull",
        ] {
            let e = OciTokenQuery::parse(query, SERVICE).unwrap_err();
            assert_eq!(e.field, "query parameter `scope`", "{query}");
        }
        let e = OciTokenQuery::parse("service=docker.io", SERVICE).unwrap_err();
        assert_eq!(e.field, "query parameter `service`");
        let many = vec!["scope=registry%3Acatalog%3A*"; SCOPES_MAX + 1].join("&");
        assert!(
            OciTokenQuery::parse(&many, SERVICE)
                .unwrap_err()
                .rule
                .contains("at most")
        );
    }
}
