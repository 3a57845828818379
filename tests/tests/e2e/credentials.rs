//! The credential sweep, generated from the checked-in `openapi.json`: every
//! operation that declares a `security` requirement is called without
//! credentials, with a malformed `Authorization` header, with a non-admin API
//! token and with a runner key, and must give the contract's 401 or 403;
//! every operation that declares none must answer an anonymous caller. No
//! endpoint is named here, so an operation is swept the day it is added.

use chrono::Duration;
use runners_tests::*;

/// An operation of the document.
struct Operation {
    method: reqwest::Method,
    /// The path template, e.g. `/v0/runners/{runner}`.
    template: String,
    id: String,
    /// The names of the security schemes it takes (none: public).
    security: Vec<String>,
    /// Whether it takes no credential too (`{}` among its requirements).
    optional: bool,
    /// A WebSocket (`x-dropshot-websocket`): called with a handshake.
    websocket: bool,
}

/// Every operation of the checked-in `openapi.json`.
fn operations() -> Vec<Operation> {
    // Read when the test runs, like `spec_endpoint_serves_the_checked_in_openapi_json`.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut operations = Vec::new();
    for (template, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let id = op["operationId"].as_str().unwrap().to_owned();
            let requirements = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{id} declares no `security` (public: `[]`)"));
            let security = requirements
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().cloned())
                .collect();
            let optional = requirements
                .iter()
                .any(|r| r.as_object().unwrap().is_empty());
            operations.push(Operation {
                method,
                template: template.clone(),
                id,
                security,
                optional,
                websocket: op.get("x-dropshot-websocket").is_some(),
            });
        }
    }
    operations
}

/// `template` with every path parameter set to `slug`, but those that are
/// only ever a UUID (a job, a key, a report), set to a UUID.
fn fill(template: &str, slug: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('{') {
        path.push_str(before);
        let (name, after) = after.split_once('}').expect("a closed parameter");
        rest = after;
        match name {
            "job" | "key" | "report" => path.push_str("0f5ad5b1-4a3c-4c6f-9d3e-3e0b5c2a7d11"),
            _ => path.push_str(slug),
        }
    }
    path.push_str(rest);
    path
}

/// How a request authenticates.
#[derive(Clone, Copy, Debug)]
enum Sent<'a> {
    Nothing,
    Header(&'a str),
    Bearer(&'a str),
}

/// The status, `WWW-Authenticate` header and error code of `op` at `path`,
/// sent with `sent` and no body.
async fn call(
    http: &reqwest::Client,
    server: &TestServer,
    op: &Operation,
    path: &str,
    sent: Sent<'_>,
) -> (u16, Option<String>, Option<String>) {
    let mut request = http.request(op.method.clone(), format!("{}{path}", server.url));
    if op.websocket {
        request = request
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    }
    match sent {
        Sent::Nothing => {}
        Sent::Header(value) => request = request.header("authorization", value),
        Sent::Bearer(token) => request = request.bearer_auth(token),
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let www = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    // The live event stream's body never ends: its answer is its status.
    if response
        .headers()
        .get("content-type")
        .is_some_and(|t| t == "text/event-stream")
    {
        return (status, www, None);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = body["error_code"].as_str().map(str::to_owned);
    (status, www, code)
}

#[tokio::test]
async fn every_operation_with_a_credential_refuses_a_wrong_one() {
    let operations = operations();
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, runner_key) = create(&admin, "Real", None).await;
    let (_, other_key) = create(&admin, "Other", None).await;
    // A spec with the runner's slug: every path names an existing item.
    let mut spec = new_spec("Real");
    spec.slug = Some(runner.slug.parse().unwrap());
    create_spec(&admin, spec).await;
    let (_, viewer) = server.api_token("viewer", false, Duration::days(1)).await;
    let http = reqwest::Client::new();
    let path_of = |op: &Operation| fill(&op.template, &runner.slug);
    let unauthorized = (
        401,
        Some("Bearer".to_owned()),
        Some("Unauthorized".to_owned()),
    );
    let forbidden = |status: (u16, Option<String>, Option<String>), what: &str, op: &Operation| {
        assert_eq!(status.0, 403, "{} {what}: {status:?}", op.id);
        assert_eq!(status.2.as_deref(), Some("Forbidden"), "{} {what}", op.id);
    };

    let keys = Keys::make(&server).await;
    let (mut secured, mut public) = (0, 0);
    for op in &operations {
        let path = path_of(op);
        let answer = |sent| call(&http, &server, op, &path, sent);
        let mut schemes: Vec<&str> = op.security.iter().map(String::as_str).collect();
        schemes.sort_unstable();
        if schemes.is_empty() {
            public += 1;
            let (status, ..) = answer(Sent::Nothing).await;
            assert!(
                (200..300).contains(&status),
                "{} declares no credential but refuses an anonymous caller: {status}",
                op.id
            );
            continue;
        }
        secured += 1;
        if op.optional {
            let (status, ..) = answer(Sent::Nothing).await;
            assert!(
                (200..300).contains(&status),
                "{} takes no credential: {status}",
                op.id
            );
        }
        let nothing = [("without credentials", Sent::Nothing)];
        let nothing = if op.optional { &[][..] } else { &nothing[..] };
        for (what, sent) in nothing.iter().cloned().chain([
            ("with a malformed header", Sent::Header("Bearer")),
            (
                "with a Basic header",
                Sent::Header("Basic YWRtaW46YWRtaW4="),
            ),
        ]) {
            assert_eq!(answer(sent).await, unauthorized, "{} {what}", op.id);
        }
        match schemes.as_slice() {
            ["ApiToken", "UserKey"] => {
                for (what, token) in [
                    ("a non-admin token", viewer.as_str()),
                    ("a non-admin's user key", &keys.viewer),
                    ("a project key", &keys.project),
                ] {
                    forbidden(answer(Sent::Bearer(token)).await, what, op);
                }
                for (what, token) in [
                    ("a runner key", runner_key.as_str()),
                    ("a revoked user key", &keys.revoked_user),
                ] {
                    assert_eq!(
                        answer(Sent::Bearer(token)).await,
                        unauthorized,
                        "{} {what}",
                        op.id
                    );
                }
            }
            ["ApiToken", "ProjectKey", "UserKey"] => {
                for (what, token) in [
                    ("a runner key", runner_key.as_str()),
                    ("a revoked user key", &keys.revoked_user),
                    ("a revoked project key", &keys.revoked_project),
                ] {
                    assert_eq!(
                        answer(Sent::Bearer(token)).await,
                        unauthorized,
                        "{} {what}",
                        op.id
                    );
                }
                if op.template.contains("{project}") || op.template.contains("{user}") {
                    let other = answer(Sent::Bearer(&keys.project)).await;
                    forbidden(other, "with another project's key", op);
                }
                if op.template.contains("{user}") {
                    forbidden(answer(Sent::Bearer(&viewer)).await, "another user's", op);
                    forbidden(
                        answer(Sent::Bearer(&keys.viewer)).await,
                        "another user's key",
                        op,
                    );
                }
            }
            // Docker's token endpoint: what is sent must be valid; a
            // valid one of any kind is answered (with what it may do).
            ["ApiToken", "Basic", "ProjectKey", "UserKey"] => {
                for (what, token) in [
                    ("a runner key", runner_key.as_str()),
                    ("a revoked user key", &keys.revoked_user),
                    ("a revoked project key", &keys.revoked_project),
                ] {
                    let got = answer(Sent::Bearer(token)).await;
                    assert_eq!(got, unauthorized, "{} {what}", op.id);
                }
                for token in [viewer.as_str(), &keys.viewer, &keys.project] {
                    let (status, ..) = answer(Sent::Bearer(token)).await;
                    assert_eq!(status, 200, "{}", op.id);
                }
            }
            ["RunnerKey"] => {
                for (what, token) in [
                    ("with a non-admin token", &viewer),
                    ("with an admin token", &server.admin_token),
                ] {
                    assert_eq!(answer(Sent::Bearer(token)).await, unauthorized, "{what}");
                }
                let another = answer(Sent::Bearer(&other_key)).await;
                forbidden(another, "with another runner's key", op);
            }
            other => panic!("{}: an unknown set of security schemes {other:?}", op.id),
        }
    }
    assert!(
        secured > 0 && public > 0,
        "{secured} secured, {public} public"
    );

    // With the right credential, no operation is refused for its
    // credential: what was refused above was refused for the credential
    // alone. (Last, as some of these delete; the runner key's first, as
    // some of the admin's rotate it.)
    for (scheme, right) in [
        ("RunnerKey", Sent::Bearer(&runner_key)),
        ("ApiToken", Sent::Bearer(&server.admin_token)),
        ("UserKey", Sent::Bearer(&keys.admin)),
    ] {
        for op in operations
            .iter()
            .filter(|op| op.security.iter().any(|s| s == scheme))
        {
            let (status, ..) = call(&http, &server, op, &path_of(op), right).await;
            assert!(
                status != 401 && status != 403,
                "{} with its credential: {status}",
                op.id
            );
        }
    }
}

/// The user and project keys the sweep sends: an admin's, a non-admin's
/// (user `viewer`), project `other`'s, and a revoked one of each kind.
struct Keys {
    admin: String,
    viewer: String,
    project: String,
    revoked_user: String,
    revoked_project: String,
}

impl Keys {
    async fn make(server: &TestServer) -> Self {
        let http = reqwest::Client::new();
        let post = |path: String, token: String, body: serde_json::Value| {
            let request = http
                .post(format!("{}{path}", server.url))
                .bearer_auth(token);
            async move {
                let answer = request.json(&body).send().await.unwrap();
                assert_eq!(answer.status(), 201, "{path}");
                answer.json::<serde_json::Value>().await.unwrap()
            }
        };
        let admin = server.admin_token.clone();
        let (_, viewer) = server.api_token("viewer", false, Duration::days(1)).await;
        let key = |v: serde_json::Value| v["key"].as_str().unwrap().to_owned();
        let named = serde_json::json!({"name": "sweep"});
        let project = serde_json::json!({"name": "Other", "slug": "other"});
        post(
            "/v0/organizations/default/projects".into(),
            admin.clone(),
            project,
        )
        .await;
        let revoke = |path: String, made: serde_json::Value| {
            let request = http
                .delete(format!(
                    "{}{path}/{}",
                    server.url,
                    made["uuid"].as_str().unwrap()
                ))
                .bearer_auth(&admin);
            async move { assert_eq!(request.send().await.unwrap().status(), 204) }
        };
        let revoked_user = post("/v0/users/admin/keys".into(), admin.clone(), named.clone()).await;
        revoke("/v0/users/admin/keys".into(), revoked_user.clone()).await;
        let revoked_project = post(
            "/v0/projects/other/keys".into(),
            admin.clone(),
            named.clone(),
        )
        .await;
        revoke("/v0/projects/other/keys".into(), revoked_project.clone()).await;
        Self {
            admin: key(post("/v0/users/admin/keys".into(), admin.clone(), named.clone()).await),
            viewer: key(post("/v0/users/viewer/keys".into(), viewer, named.clone()).await),
            project: key(post("/v0/projects/other/keys".into(), admin.clone(), named).await),
            revoked_user: key(revoked_user),
            revoked_project: key(revoked_project),
        }
    }
}

/// A bad credential is answered before a bad body, query or path, however
/// long the credential's check takes (on PostgreSQL it awaits the
/// database while dropshot already has the body's error): 401/403, never
/// the 400 of what follows.
#[tokio::test]
async fn a_bad_credential_answers_before_a_bad_request() {
    let server = TestServer::start().await;
    let (_, viewer) = server.api_token("viewer", false, Duration::days(1)).await;
    let http = reqwest::Client::new();
    for (method, path, body) in [
        (reqwest::Method::POST, "/v0/runners", "{not json"),
        (reqwest::Method::POST, "/v0/jobs", ""),
        (reqwest::Method::POST, "/v0/specs", "{\"name\": 5}"),
        (reqwest::Method::GET, "/v0/runners?per_page=0", ""),
        (reqwest::Method::GET, "/v0/specs?unknown=1", ""),
        (reqwest::Method::PATCH, "/v0/runners/NOT_A_SLUG", "{}"),
    ] {
        for (token, status) in [(Some(viewer.as_str()), 403), (None, 401)] {
            // Many times: the race is lost only now and then.
            for _ in 0..20 {
                let mut request = http
                    .request(method.clone(), format!("{}{path}", server.url))
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let answer = request.send().await.unwrap().status().as_u16();
                assert_eq!(answer, status, "{method} {path} with {token:?}");
            }
        }
    }
}
