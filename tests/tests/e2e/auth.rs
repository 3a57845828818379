//! Authentication and authorization, before any lookup.

use chrono::Duration;
use runners_sdk::Client;
use runners_sdk::types::{JsonNewRunnerSpec, JsonUpdateRunner, JsonUpdateSpec};
use runners_server::auth;
use runners_server::store::Actor;
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

/// A signing key rotated by another process (as `runners-server key
/// rotate` does) while the server runs: the new token works at once, even
/// right after a request with a bad signature made the server re-read the
/// secret (it used to wait a second before the next re-read).
#[tokio::test]
async fn a_new_token_works_the_instant_key_rotate_returns() {
    let server = TestServer::start().await;
    let cli = server.store();
    for round in 0..3 {
        // A token of another server: a bad signature, so a re-read.
        let foreign = TestServer::start().await.admin_token;
        failure(server.client(&foreign).runners_get().send().await).assert(401, "Unauthorized");
        cli.rotate_signing_key(&Actor::program()).await.unwrap();
        let ttl = chrono::Duration::days(1);
        let (_, token) = auth::issue_api_token(&cli, "admin", true, ttl, &Actor::program())
            .await
            .unwrap();
        let answer = server.client(&token).runners_get().send().await;
        assert!(answer.is_ok(), "round {round}: {answer:?}");
    }
}

/// Rotations racing token creations: every token whose row is not revoked
/// works, because it is signed with the secret read in the transaction that
/// inserts its row (a token signed before a rotation and inserted after it
/// would be live and never verify).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_never_live_with_a_retired_secret() {
    let server = TestServer::start().await;
    let (rotator, issuer) = (server.store(), server.store());
    let rotations = tokio::spawn(async move {
        for _ in 0..20 {
            rotator.rotate_signing_key(&Actor::program()).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let mut issued = Vec::new();
    for _ in 0..40 {
        let ttl = chrono::Duration::days(1);
        let actor = Actor::program();
        let token = auth::issue_api_token(&issuer, "admin", true, ttl, &actor);
        issued.push(token.await.unwrap());
    }
    rotations.await.unwrap();
    let rows = issuer.list_api_tokens().await.unwrap();
    for (jti, token) in issued {
        let row = rows.iter().find(|r| r.uuid == jti).unwrap();
        if row.revoked.is_none() {
            let answer = server.client(&token).runners_get().send().await;
            assert!(answer.is_ok(), "a live token is refused: {answer:?}");
        }
    }
}
