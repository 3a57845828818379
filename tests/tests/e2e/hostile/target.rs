//! The hostile-input tests' target: a server on its own runtime, and a raw
//! HTTP client that can send what the typed SDK never would.

use super::*;

/// Generated cases per property: enough to hit each edge case family many
/// times, few enough for CI.
pub(super) const CASES: u32 = 96;

/// A server on its own runtime, with a raw HTTP client that can send what
/// the typed SDK never would.
pub(super) struct Target {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) server: Option<TestServer>,
    pub(super) http: reqwest::Client,
}

/// What came back.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) www_authenticate: bool,
    pub(super) body: String,
}

impl Target {
    pub(super) fn new() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(TestServer::start());
        Self {
            runtime,
            server: Some(server),
            http: reqwest::Client::new(),
        }
    }

    pub(super) fn server(&self) -> &TestServer {
        self.server.as_ref().unwrap()
    }

    pub(super) fn admin(&self) -> HeaderValue {
        HeaderValue::try_from(format!("Bearer {}", self.server().admin_token)).unwrap()
    }

    /// Sends a request; `auth` defaults to the admin's token.
    pub(super) fn send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        auth: Option<HeaderValue>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let url = format!("{}{path_and_query}", self.server().url);
        let mut request = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, auth.unwrap_or_else(|| self.admin()));
        if let Some((content_type, bytes)) = body {
            if !content_type.is_empty() {
                request = request.header(CONTENT_TYPE, content_type);
            }
            request = request.body(bytes);
        }
        self.runtime.block_on(async {
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            let www_authenticate = response.headers().contains_key("www-authenticate");
            let body = response.text().await.unwrap();
            Answer {
                status,
                www_authenticate,
                body,
            }
        })
    }

    pub(super) fn post_json(&self, path: &str, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send(
            reqwest::Method::POST,
            path,
            None,
            Some(("application/json", bytes)),
        )
    }

    /// Everything a client can see of the registry: every runner, archived
    /// or not, with its timestamps.
    pub(super) fn state(&self) -> String {
        let mut all = String::new();
        for page in 1.. {
            let path = format!("/v0/runners?archived=true&per_page=255&page={page}");
            let answer = self.send(reqwest::Method::GET, &path, None, None);
            assert_eq!(answer.status, 200, "{answer:?}");
            if answer.body == "[]" {
                return all;
            }
            all.push_str(&answer.body);
        }
        unreachable!()
    }

    /// Runs `cases` generated cases of `strategy` through `check`, which
    /// sees the state before the request.
    pub(super) fn check<S: Strategy>(
        &self,
        strategy: S,
        check: impl Fn(S::Value, &str) -> Result<(), TestCaseError>,
    ) {
        let config = Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        };
        TestRunner::new(config)
            .run(&strategy, |value| check(value, &self.state()))
            .unwrap();
    }

    /// The answer is not a 5xx; a 4xx has the error shape, its code, and
    /// left the state as it was.
    pub(super) fn assert_sound(&self, answer: &Answer, before: &str) -> Result<(), TestCaseError> {
        prop_assert!(answer.status < 500, "{answer:?}");
        if answer.status >= 400 {
            let error: Value = serde_json::from_str(&answer.body)
                .map_err(|e| TestCaseError::fail(format!("{e}: {answer:?}")))?;
            // Dropshot's router answers an unknown path or method, or a path
            // that is not UTF-8, itself, before any of our code runs, with
            // no error_code (known and documented); every other 4xx has one.
            let router_messages = ["Not Found", "Method Not Allowed", "invalid path encoding"];
            let routed = error["error_code"].is_null()
                && router_messages.contains(&error["message"].as_str().unwrap_or_default());
            for field in ["request_id", "error_code", "message"] {
                prop_assert!(
                    error[field].as_str().is_some_and(|s| !s.is_empty())
                        || (routed && field == "error_code"),
                    "no {field}: {answer:?}"
                );
            }
            prop_assert_eq!(
                &self.state(),
                before,
                "a rejected request changed the state"
            );
        }
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // The server shuts down inside its runtime.
        let server = self.server.take();
        self.runtime.block_on(async move { drop(server) });
    }
}
