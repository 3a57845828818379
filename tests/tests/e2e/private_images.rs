//! Private images: a real `docker-registry` (CNCF distribution 2.8) with
//! `auth: token`, trusting this server's registry keys as
//! `runners-server registry-config` configures it, pushed to by `skopeo`
//! with a project key, pulled from with a job's `oci_token`. Skipped, saying
//! so, without Debian's `docker-registry` and `skopeo`.

use std::time::Duration;

use runners_server::auth::{REGISTRY_ISSUER, REGISTRY_SERVICE};
use runners_server::server::Submit;
use runners_server::store::{Actor, NewRegistryKey};
use runners_tests::agent::Agent;
use runners_tests::registry::{Registry, free_port, tools_installed};
use runners_tests::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// A server whose registry tokens last `ttl`, and a registry that trusts
/// it; `None` without the tools.
async fn trusted(ttl: Duration) -> Option<(TestServer, Registry)> {
    if !tools_installed() {
        return None;
    }
    let port = free_port();
    let server = TestServer::start_submit(Submit {
        registry_url: Some(format!("http://127.0.0.1:{port}")),
        registry_token_ttl: ttl,
        ..Submit::default()
    })
    .await;
    let registry = Registry::trusting(port, &server.url, &bundle(&server).await)?;
    Some((server, registry))
}

/// Project `bench`, a project key of it, an image pushed with the key as
/// `{project uuid}:v1`, and an agent for a fallback runner: the project's
/// UUID, the key, the digest pushed, the agent.
async fn bench(server: &TestServer, registry: &Registry) -> (String, String, String, Agent) {
    let admin = server.admin();
    let mine = project(&admin, "bench").await.uuid.to_string();
    let (key, _) = project_key(&admin, "bench", None).await;
    let pushed = registry.push_as(&mine, "v1", &format!("ci:{key}")).await;
    let digest = pushed.unwrap_or_else(|e| panic!("{e}\n{}", registry.log()));
    let (_, runner, runner_key) = fallback_runner(&admin, "box").await;
    let agent = Agent::connect(server, &runner.slug, &runner_key)
        .await
        .unwrap();
    (mine, key, digest, agent)
}

/// The certificates of every registry key not retired, as
/// `runners-server registry-config` writes them.
async fn bundle(server: &TestServer) -> String {
    let keys = server.store().registry_keys().await.unwrap();
    keys.iter().map(|k| k.certificate_pem()).collect()
}

/// A token from the server's token endpoint for `scope`, with `basic`
/// (`user:password`) if any: the status and the body.
async fn token_for(server: &TestServer, scope: &str, basic: Option<&str>) -> (u16, Value) {
    let url = format!("{}/v0/auth/oci/token", server.url);
    let mut request = reqwest::Client::new()
        .get(url)
        .query(&[("service", REGISTRY_SERVICE), ("scope", scope)]);
    if let Some((user, password)) = basic.and_then(|b| b.split_once(':')) {
        request = request.basic_auth(user, Some(password));
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The token of a 200 answer of the token endpoint.
async fn token(server: &TestServer, scope: &str, basic: Option<&str>) -> String {
    let (status, body) = token_for(server, scope, basic).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// A JWT's header and claims.
fn decode(token: &str) -> (Value, Value) {
    use base64::Engine as _;
    let part = |i: usize| {
        let text = token.split('.').nth(i).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    (part(0), part(1))
}

/// A JWT of `header` and `claims` with `signature` (base64url).
fn forge(header: &Value, claims: &Value, signature: &str) -> String {
    use base64::Engine as _;
    let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", enc(header), enc(claims))
}

/// Refused by the registry: 401 (no valid token) or 403.
fn refused(status: u16) -> bool {
    matches!(status, 401 | 403)
}

#[tokio::test]
async fn a_project_key_pushes_to_its_projects_repository_only() {
    let Some((server, registry)) = trusted(Duration::from_secs(600)).await else {
        return;
    };
    let admin = server.admin();
    let mine = project(&admin, "mine").await.uuid.to_string();
    let theirs = project(&admin, "theirs").await.uuid.to_string();
    let (key, _) = project_key(&admin, "mine", None).await;

    // The username is ignored: the password is the credential.
    let pushed = registry
        .push_as(&mine, "v1", &format!("anyone:{key}"))
        .await;
    let digest = pushed.unwrap_or_else(|e| panic!("{e}\n{}", registry.log()));
    let elsewhere = registry.push_as(&theirs, "v1", &format!("ci:{key}")).await;
    let error = elsewhere.unwrap_err();
    assert!(
        error.contains("denied") || error.contains("unauthorized"),
        "{error}"
    );

    // No token, or an anonymous one, pulls nothing.
    assert_eq!(registry.manifest_status(&mine, &digest, None).await, 401);
    let anonymous = token(&server, &format!("repository:{mine}:pull"), None).await;
    assert_eq!(decode(&anonymous).1["access"], json!([]));
    let status = registry
        .manifest_status(&mine, &digest, Some(&anonymous))
        .await;
    assert!(refused(status), "{status}");
    // The project key pulls its own; an admin pushes anywhere.
    let pull = token(
        &server,
        &format!("repository:{mine}:pull"),
        Some(&format!("x:{key}")),
    )
    .await;
    assert_eq!(
        registry.manifest_status(&mine, &digest, Some(&pull)).await,
        200
    );
    let admin_creds = format!("admin:{}", server.admin_token);
    registry.push_as(&theirs, "v1", &admin_creds).await.unwrap();
    // A credential that is not valid is refused at the token endpoint.
    let (status, _) = token_for(
        &server,
        "",
        Some("ci:bencher_run_000000000000000000000000000000"),
    )
    .await;
    assert_eq!(status, 401);
    let bad = registry
        .push_as(&mine, "v2", "ci:bencher_run_000000000000000000000000000000")
        .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn a_jobs_token_pulls_its_image_only_and_a_tag_is_pinned_at_submit() {
    let Some((server, registry)) = trusted(Duration::from_secs(600)).await else {
        return;
    };
    let (mine, key, first, mut agent) = bench(&server, &registry).await;
    let theirs = project(&server.admin(), "theirs").await.uuid.to_string();
    let creds = format!("ci:{key}");
    let other = registry
        .push_as(&theirs, "v1", &format!("admin:{}", server.admin_token))
        .await
        .unwrap();

    // By tag: the server resolves it through the registry with its own
    // token, and the job keeps the digest it had then.
    let host = registry.url.trim_start_matches("http://");
    let job = json!({"image": format!("{host}/{mine}:v1")});
    let ci = server.client(&key);
    let report = ci
        .run_post()
        .body(new_run(None, Some(job), &[]))
        .send()
        .await;
    let report = report.unwrap().into_inner();
    let second = registry.push_as(&mine, "v1", &creds).await.unwrap();
    assert_ne!(first, second, "a new image under the same tag");
    let claimed = agent.take_job(5).await.unwrap();
    assert_eq!(Some(claimed.uuid), report.job);
    assert_eq!(claimed.config.digest.as_str(), first);

    // The job's token: pull on its repository only, for ten minutes.
    let (header, claims) = decode(&claimed.oci_token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": mine, "actions": ["pull"]}])
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        (Some(REGISTRY_ISSUER), Some(REGISTRY_SERVICE))
    );
    let job_token = Some(claimed.oci_token.as_str());
    assert_eq!(
        registry.manifest_status(&mine, &first, job_token).await,
        200
    );
    let status = registry.manifest_status(&theirs, &other, job_token).await;
    assert!(refused(status), "{status}");
}

#[tokio::test]
async fn a_token_is_refused_after_expiry_and_once_its_rotated_key_is_retired() {
    let Some((server, mut registry)) = trusted(Duration::from_secs(1)).await else {
        return;
    };
    let (mine, key, digest, mut agent) = bench(&server, &registry).await;
    let host = registry.url.trim_start_matches("http://");
    let job = || json!({"image": format!("{host}/{mine}@{digest}")});
    let ci = server.client(&key);
    let mut job_token = async || {
        let run = ci.run_post().body(new_run(None, Some(job()), &[]));
        run.send().await.unwrap();
        let claimed = agent.take_job(5).await.unwrap();
        agent.start(claimed.uuid).await.unwrap();
        let done = vec![runners_tests::agent::output(0, "{}")];
        agent.complete(claimed.uuid, done).await.unwrap();
        agent.expect_ack(claimed.uuid).await.unwrap();
        claimed.oci_token
    };

    // Signed by the first key.
    let old = job_token().await;
    assert_eq!(
        registry.manifest_status(&mine, &digest, Some(&old)).await,
        200
    );

    // Rotated: new tokens are signed by the new key at once (a running
    // server within 1 s), which the registry trusts once restarted with
    // the bundle of both.
    let store = server.store();
    store
        .rotate_registry_key(NewRegistryKey::generate().unwrap(), &Actor::program())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = job_token().await;
    assert_ne!(decode(&new).0["kid"], decode(&old).0["kid"]);
    assert_eq!(
        registry.manifest_status(&mine, &digest, Some(&new)).await,
        401
    );
    registry.restart_with(&bundle(&server).await);
    for token in [&old, &new] {
        assert_eq!(
            registry.manifest_status(&mine, &digest, Some(token)).await,
            200
        );
    }

    // Retired: gone from the bundle, so its tokens are refused once the
    // registry restarts (well within their 60 s of leeway).
    let retired = store.retire_registry_keys(&Actor::program()).await.unwrap();
    assert_eq!(retired.len(), 1);
    registry.restart_with(&bundle(&server).await);
    assert_eq!(
        registry.manifest_status(&mine, &digest, Some(&old)).await,
        401
    );
    assert_eq!(
        registry.manifest_status(&mine, &digest, Some(&new)).await,
        200
    );

    // Expired: 1 s, and distribution's 60 s of leeway past it.
    let exp = decode(&new).1["exp"].as_i64().unwrap();
    let wait = exp + 61 - chrono::Utc::now().timestamp();
    tokio::time::sleep(Duration::from_secs(u64::try_from(wait).unwrap_or(0) + 1)).await;
    assert_eq!(
        registry.manifest_status(&mine, &digest, Some(&new)).await,
        401
    );
}

#[tokio::test]
async fn forged_tokens_are_refused_by_the_registry() {
    let Some((server, registry)) = trusted(Duration::from_secs(600)).await else {
        return;
    };
    let admin = server.admin();
    let mine = project(&admin, "mine").await.uuid.to_string();
    let (key, _) = project_key(&admin, "mine", None).await;
    let digest = registry
        .push_as(&mine, "v1", &format!("ci:{key}"))
        .await
        .unwrap();
    let valid = token(
        &server,
        &format!("repository:{mine}:pull"),
        Some(&format!("ci:{key}")),
    )
    .await;
    assert_eq!(
        registry.manifest_status(&mine, &digest, Some(&valid)).await,
        200
    );
    let (header, claims) = decode(&valid);
    let signature = valid.rsplit('.').next().unwrap();

    let es256 = |der: &[u8], kid: &str, claims: &Value| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some(kid.to_owned());
        let key = jsonwebtoken::EncodingKey::from_ec_der(der);
        jsonwebtoken::encode(&h, claims, &key).unwrap()
    };
    let stranger = NewRegistryKey::generate().unwrap();
    let real = server.store().registry_keys().await.unwrap().remove(0);
    let kid = header["kid"].as_str().unwrap();
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    let forged = [
        (
            "another key, its own kid",
            es256(&stranger.private_key, &stranger.kid, &claims),
        ),
        (
            "another key, the real kid",
            es256(&stranger.private_key, kid, &claims),
        ),
        (
            "alg none",
            forge(
                &json!({"alg": "none", "typ": "JWT", "kid": kid}),
                &claims,
                "",
            ),
        ),
        (
            "HS256 keyed by the certificate",
            jsonwebtoken::encode(
                &jsonwebtoken::Header {
                    kid: Some(kid.to_owned()),
                    ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
                },
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(&real.certificate),
            )
            .unwrap(),
        ),
        (
            "a later exp, same signature",
            forge(
                &header,
                &with("exp", json!(claims["exp"].as_i64().unwrap() + 3600)),
                signature,
            ),
        ),
        (
            "push added, same signature",
            forge(
                &header,
                &with(
                    "access",
                    json!([{"type": "repository", "name": mine, "actions": ["pull", "push"]}]),
                ),
                signature,
            ),
        ),
        (
            "the real key, another issuer",
            es256(real.expose(), kid, &with("iss", json!("evil"))),
        ),
        (
            "the real key, another audience",
            es256(real.expose(), kid, &with("aud", json!("docker.io"))),
        ),
    ];
    for (what, token) in forged {
        let status = registry.manifest_status(&mine, &digest, Some(&token)).await;
        assert_eq!(status, 401, "{what}");
    }
    // The real key signs what the registry accepts (the forgeries above
    // fail for what they changed, not for how they were made).
    let resigned = es256(real.expose(), kid, &claims);
    assert_eq!(
        registry
            .manifest_status(&mine, &digest, Some(&resigned))
            .await,
        200
    );
}

/// What each credential is granted, read from the tokens themselves (no
/// registry needed: on both engines).
#[tokio::test]
async fn the_token_endpoint_grants_what_the_credential_may() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mine = project(&admin, "mine").await.uuid.to_string();
    let theirs = project(&admin, "theirs").await.uuid.to_string();
    let nowhere = Uuid::new_v4().to_string();
    let (key, key_uuid) = project_key(&admin, "mine", None).await;
    let (_, user) = server
        .api_token("bob", false, chrono::Duration::days(1))
        .await;
    let (_, runner_key) = create(&admin, "box", None).await;
    let scope = format!(
        "repository:{mine}:pull,push,delete repository:{theirs}:pull,push \
         repository:{nowhere}:pull registry:catalog:*"
    );
    let access = |token: &str| decode(token).1["access"].clone();
    let grant = |name: &str, actions: &[&str]| json!({"type": "repository", "name": name, "actions": actions});

    let anonymous = token(&server, &scope, None).await;
    assert_eq!(access(&anonymous), json!([]));
    let project_key_token = token(&server, &scope, Some(&format!("ci:{key}"))).await;
    assert_eq!(
        access(&project_key_token),
        json!([grant(&mine, &["pull", "push"])])
    );
    assert_eq!(
        decode(&project_key_token).1["sub"],
        format!("project:{mine}")
    );
    let user_token = token(&server, &scope, Some(&format!("bob:{user}"))).await;
    assert_eq!(
        access(&user_token),
        json!([
            grant(&mine, &["pull", "push"]),
            grant(&theirs, &["pull", "push"])
        ])
    );
    let admin_token = token(
        &server,
        &scope,
        Some(&format!("admin:{}", server.admin_token)),
    )
    .await;
    assert_eq!(
        access(&admin_token),
        json!([
            grant(&mine, &["pull", "push", "delete"]),
            grant(&theirs, &["pull", "push"]),
            grant(&nowhere, &["pull"]),
            {"type": "registry", "name": "catalog", "actions": ["*"]}
        ])
    );
    // A bearer credential works as the Basic password does.
    let bearer = reqwest::Client::new()
        .get(format!("{}/v0/auth/oci/token", server.url))
        .query(&[("scope", format!("repository:{mine}:pull"))])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let body: Value = bearer.json().await.unwrap();
    assert_eq!(
        access(body["token"].as_str().unwrap()),
        json!([grant(&mine, &["pull"])])
    );
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 600);

    // Refused: a runner key, a malformed Basic, a revoked key (401); a bad
    // scope or another service (400).
    let (status, body) = token_for(&server, &scope, Some(&format!("r:{runner_key}"))).await;
    assert_eq!(status, 401, "{body}");
    // Not base64; no `:`; an empty password.
    for header in ["Basic !!!", "Basic bm8tY29sb24=", "Basic dXNlcjo="] {
        let raw = reqwest::Client::new()
            .get(format!("{}/v0/auth/oci/token", server.url))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 401, "{header}");
        let body: Value = raw.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("Basic"),
            "{body}"
        );
    }
    let revoked = admin
        .proj_key_delete()
        .project("mine")
        .key(key_uuid)
        .send()
        .await;
    revoked.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = token_for(&server, &scope, Some(&format!("ci:{key}"))).await;
    assert_eq!(status, 401);
    let (status, body) = token_for(&server, "repository:Mine:pull", None).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("scope"),
        "{body}"
    );
    let other = reqwest::Client::new()
        .get(format!(
            "{}/v0/auth/oci/token?service=registry.docker.io",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
}
