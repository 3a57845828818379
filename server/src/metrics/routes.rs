//! A request's operation id from its method and path, by the OpenAPI
//! document's path templates (`{runner}` matches one segment).

/// The document's operations.
pub struct Routes(Vec<(String, Vec<Segment>, String)>);

enum Segment {
    Literal(String),
    Parameter,
}

impl Routes {
    /// The operations of an OpenAPI document.
    pub fn from_spec(spec: &serde_json::Value) -> Self {
        let mut routes = Vec::new();
        let paths = spec["paths"].as_object().into_iter().flatten();
        for (template, item) in paths {
            let segments: Vec<Segment> = template
                .trim_start_matches('/')
                .split('/')
                .map(|s| match s.starts_with('{') {
                    true => Segment::Parameter,
                    false => Segment::Literal(s.to_owned()),
                })
                .collect();
            for (method, op) in item.as_object().into_iter().flatten() {
                if let Some(id) = op["operationId"].as_str() {
                    let segments = segments.iter().map(Segment::copy).collect();
                    routes.push((method.to_uppercase(), segments, id.to_owned()));
                }
            }
        }
        Self(routes)
    }

    /// The operation `method path` is (`path` may have a query), or
    /// `unknown`.
    pub fn operation(&self, method: &str, path: &str) -> &str {
        let path = path.split('?').next().unwrap_or_default();
        // An absolute URI (`http://host/v0/…`) names its path after the host.
        let path = match path.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => path,
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.0
            .iter()
            .find(|(m, segments, _)| {
                m == method
                    && segments.len() == parts.len()
                    && segments.iter().zip(&parts).all(|(s, p)| match s {
                        Segment::Literal(l) => l == p,
                        Segment::Parameter => !p.is_empty(),
                    })
            })
            .map_or("unknown", |(_, _, id)| id.as_str())
    }
}

impl Segment {
    fn copy(&self) -> Self {
        match self {
            Self::Literal(l) => Self::Literal(l.clone()),
            Self::Parameter => Self::Parameter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Routes;

    #[test]
    fn paths_find_their_operations() {
        let spec: serde_json::Value =
            serde_json::from_str(&crate::api::openapi_document()).unwrap();
        let routes = Routes::from_spec(&spec);
        for (method, path, id) in [
            ("GET", "/v0/runners?per_page=2", "runners_get"),
            ("POST", "/v0/runners", "runners_post"),
            ("GET", "/v0/runners/box", "runner_get"),
            ("POST", "/v0/runners/box/key", "runner_key_post"),
            ("DELETE", "/v0/runners/a/specs/b", "runner_spec_delete"),
            ("GET", "/v0/server/ready", "server_ready_get"),
            ("GET", "/v0/runners/", "unknown"),
            ("PUT", "/v0/runners", "unknown"),
            ("GET", "/metrics", "unknown"),
            ("GET", "http://evil/v0/runners?x", "runners_get"),
        ] {
            assert_eq!(routes.operation(method, path), id, "{method} {path}");
        }
    }
}
