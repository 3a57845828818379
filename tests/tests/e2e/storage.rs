//! Storage: restarts, and no secret in the database file.

use chrono::Duration;
use runners_tests::*;

#[tokio::test]
async fn data_survives_a_restart_on_the_same_file() {
    let mut server = TestServer::start().await;
    let (runner, token) = create(&server.admin(), "Durable", None).await;
    archive(&server.admin(), &runner.slug, true).await;
    archive(&server.admin(), &runner.slug, false).await;
    let before = view(&server.admin(), &runner.slug).await;
    server.restart().await;
    let after = view(&server.admin(), &runner.slug).await;
    assert_eq!(after, before);
    // Both kinds of token still work: the signing key lives in the database.
    beat(&server, &token, &runner.slug).await.unwrap();
}

#[tokio::test]
async fn no_token_is_stored_in_clear() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, token) = create(&admin, "Secret", None).await;
    let rotated = admin
        .runner_token_post()
        .runner(runner.slug.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    let (_, api_token) = server.api_token("ops", true, Duration::days(1)).await;
    let bytes = server.database_bytes().await;
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for secret in [
        token.as_str(),
        rotated.key.as_str(),
        server.admin_token.as_str(),
        api_token.as_str(),
    ] {
        assert!(
            !contains(secret.as_bytes()),
            "a token is in the database file"
        );
        // Not even its random part.
        let tail = &secret[secret.len() - 32..];
        assert!(
            !contains(tail.as_bytes()),
            "part of a token is in the database file"
        );
    }
    // What is stored is the SHA-256 of the runner token (a slug is
    // `[a-z0-9-]`, safe to quote).
    let sql = format!(
        "SELECT token_hash FROM runners WHERE slug = '{}'",
        runner.slug
    );
    let rows = server.sql_rows(&sql).await;
    let stored = rows[0][0].as_deref().expect("a hash");
    // PostgreSQL shows `bytea` as `\x` and hex.
    let stored = stored.trim_start_matches("\\x");
    let hash = runners_server::auth::hash_runner_key(&rotated.key);
    let expected: String = hash.0.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(stored, expected);
}
