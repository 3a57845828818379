//! Authentication and authorization, before any lookup.

use chrono::Duration;
use runners_sdk::Client;
use runners_sdk::types::{JsonNewRunnerSpec, JsonUpdateRunner, JsonUpdateSpec};
use runners_tests::*;

/// Every admin endpoint, against a runner (and a spec of the same slug)
/// that may or may not exist.
async fn admin_endpoint_failures(client: &Client, runner: &str) -> Vec<runners_tests::ApiFailure> {
    let spec = runner;
    let add = JsonNewRunnerSpec {
        spec: spec.parse().unwrap(),
    };
    vec![
        failure(client.runner_key_post().runner(runner).send().await),
        failure(client.runner_specs_get().runner(runner).send().await),
        failure(
            client
                .runner_specs_post()
                .runner(runner)
                .body(add)
                .send()
                .await,
        ),
        failure(
            client
                .runner_spec_delete()
                .runner(runner)
                .spec(spec)
                .send()
                .await,
        ),
        failure(client.specs_get().send().await),
        failure(client.specs_post().body(new_spec("x")).send().await),
        failure(client.spec_get().spec(spec).send().await),
        failure(
            client
                .spec_patch()
                .spec(spec)
                .body(JsonUpdateSpec::default())
                .send()
                .await,
        ),
        failure(client.spec_delete().spec(spec).send().await),
        failure(client.runners_get().send().await),
        failure(
            client
                .runners_post()
                .body(new_runner("x", None))
                .send()
                .await,
        ),
        failure(client.runner_get().runner(runner).send().await),
        failure(
            client
                .runner_patch()
                .runner(runner)
                .body(JsonUpdateRunner::default())
                .send()
                .await,
        ),
        failure(client.runner_token_post().runner(runner).send().await),
    ]
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401_before_any_lookup() {
    let server = TestServer::start().await;
    let (runner, runner_token) = create(&server.admin(), "Real", None).await;
    // A spec with the runner's slug, so that every path names a real item.
    let mut spec = new_spec("Real");
    spec.slug = Some(runner.slug.parse().unwrap());
    create_spec(&server.admin(), spec).await;
    let clients = [
        ("no token", server.anonymous()),
        ("not a JWT", server.client("hello")),
        (
            "JWT-shaped garbage",
            server.client("eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"),
        ),
        ("runner token", server.client(&runner_token)),
    ];
    for (what, client) in clients {
        for path in [runner.slug.as_str(), "does-not-exist"] {
            for f in admin_endpoint_failures(&client, path).await {
                f.assert(401, "Unauthorized");
                assert_eq!(
                    f.headers.get("www-authenticate").unwrap(),
                    "Bearer",
                    "{what}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_token_signed_by_another_server_is_401() {
    let server = TestServer::start().await;
    let other = TestServer::start().await;
    failure(server.client(&other.admin_token).runners_get().send().await)
        .assert(401, "Unauthorized")
        .mentions("signature");
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let server = TestServer::start().await;
    let (_, expired) = server
        .api_token("admin", true, Duration::seconds(-10))
        .await;
    failure(server.client(&expired).runners_get().send().await)
        .assert(401, "Unauthorized")
        .mentions("expired");
}

#[tokio::test]
async fn a_revoked_token_is_401_within_the_cache_bound() {
    let server = TestServer::start().await;
    let (jti, token) = server.api_token("ops", true, Duration::days(1)).await;
    let client = server.client(&token);
    client.runners_get().send().await.unwrap();
    let program = runners_server::store::Actor::program();
    server
        .store()
        .revoke_api_token(jti, &program)
        .await
        .unwrap();
    let revoked = std::time::Instant::now();
    // The server trusts a verified token for at most ADMIN_CACHE_TTL
    // without reading its row again.
    let bound = runners_server::auth::ADMIN_CACHE_TTL + std::time::Duration::from_millis(500);
    let refused = loop {
        match client.runners_get().send().await {
            Ok(_) => assert!(revoked.elapsed() < bound, "still accepted after {bound:?}"),
            refused => break refused,
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    failure(refused)
        .assert(401, "Unauthorized")
        .mentions("revoked");
    // Other tokens are unaffected.
    server.admin().runners_get().send().await.unwrap();
}

#[tokio::test]
async fn a_non_admin_token_is_403_whether_or_not_the_runner_exists() {
    let server = TestServer::start().await;
    let (runner, _) = create(&server.admin(), "Real", None).await;
    let (_, token) = server.api_token("viewer", false, Duration::days(1)).await;
    let client = server.client(&token);
    for path in [runner.slug.as_str(), "does-not-exist"] {
        for f in admin_endpoint_failures(&client, path).await {
            f.assert(403, "Forbidden").mentions("admin");
        }
    }
    // `token create --admin` on the same user promotes it.
    let (_, token) = server.api_token("viewer", true, Duration::days(1)).await;
    server.client(&token).runners_get().send().await.unwrap();
}
