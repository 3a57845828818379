//! Runner tokens: heartbeats and rotation.

use runners_tests::*;

#[tokio::test]
async fn heartbeat_with_the_runner_token_records_the_time() {
    let server = TestServer::start().await;
    let (runner, token) = create(&server.admin(), "Beating", None).await;
    let first = beat(&server, &token, &runner.slug)
        .await
        .unwrap()
        .into_inner();
    let first = first.last_heartbeat.expect("heartbeat recorded");
    let by_uuid = runner.uuid.to_string();
    let second = beat(&server, &token, &by_uuid).await.unwrap().into_inner();
    assert!(second.last_heartbeat.unwrap() >= first);
    let viewed = view(&server.admin(), &runner.slug).await;
    assert_eq!(viewed.last_heartbeat, second.last_heartbeat);
}

#[tokio::test]
async fn a_runner_token_authenticates_only_its_own_active_runner() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (mine, token) = create(&admin, "Mine", None).await;
    let (other, _) = create(&admin, "Other", None).await;
    failure(beat(&server, &token, &other.slug).await)
        .assert(403, "Forbidden")
        .mentions("own runner");
    failure(beat(&server, &token, "no-such-runner").await).assert(403, "Forbidden");
    // Neither an API token nor no token will do.
    failure(beat(&server, &server.admin_token, &mine.slug).await).assert(401, "Unauthorized");
    let anonymous = server.anonymous();
    failure(
        anonymous
            .runner_heartbeat_post()
            .runner(mine.slug.as_str())
            .send()
            .await,
    )
    .assert(401, "Unauthorized");
    // Archived: the token is refused until the runner is unarchived.
    archive(&admin, &mine.slug, true).await;
    failure(beat(&server, &token, &mine.slug).await)
        .assert(401, "Unauthorized")
        .mentions("archived");
    archive(&admin, &mine.slug, false).await;
    beat(&server, &token, &mine.slug).await.unwrap();
}

#[tokio::test]
async fn rotation_returns_a_new_token_and_the_old_one_fails_at_once() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, old) = create(&admin, "Rotating", None).await;
    beat(&server, &old, &runner.slug).await.unwrap();

    let rotated = admin
        .runner_token_post()
        .runner(runner.slug.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 201);
    let rotated = rotated.into_inner();
    assert_eq!(rotated.uuid, runner.uuid);
    assert_runner_key(&rotated.key);
    assert_ne!(rotated.key, old);

    failure(beat(&server, &old, &runner.slug).await).assert(401, "Unauthorized");
    beat(&server, &rotated.key, &runner.slug).await.unwrap();
}

#[tokio::test]
async fn key_rotation_by_key_or_token_answers_both_fields_and_kills_the_old_key() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let created = admin
        .runners_post()
        .body(new_runner("Keyed", None))
        .send()
        .await
        .unwrap()
        .into_inner();
    // v0.6.2 clients read `token`: the same key.
    #[allow(deprecated)]
    let token = created.token.clone();
    assert_eq!(token, created.key);
    assert_runner_key(&created.key);
    let mut live = created.key;
    for by_key in [true, false, true] {
        #[allow(deprecated)]
        let rotated = if by_key {
            admin.runner_key_post().runner("keyed").send().await
        } else {
            admin.runner_token_post().runner("keyed").send().await
        };
        let rotated = rotated.unwrap();
        assert_eq!(rotated.status(), 201);
        let rotated = rotated.into_inner();
        #[allow(deprecated)]
        let token = rotated.token.clone();
        assert_eq!(token, rotated.key);
        assert_runner_key(&rotated.key);
        failure(beat(&server, &live, "keyed").await)
            .assert(401, "Unauthorized")
            .mentions("rotated");
        beat(&server, &rotated.key, "keyed").await.unwrap();
        live = rotated.key;
    }
}

#[tokio::test]
async fn a_key_issued_in_v0_6_2_form_works_until_rotated() {
    let server = TestServer::start().await;
    // A runner as a database of the seed's version holds it: the SHA-256 of
    // a key of 64 hex characters.
    let legacy = format!("bencher_runner_{}", "3f".repeat(32));
    let hash = runners_server::auth::hash_runner_key(&legacy);
    let store = server.store();
    store
        .import_runners(vec![("Legacy".into(), "legacy".into(), hash)])
        .await
        .unwrap();
    let beat_answer = beat(&server, &legacy, "legacy").await.unwrap();
    assert!(beat_answer.into_inner().last_heartbeat.is_some());

    let rotated = server
        .admin()
        .runner_key_post()
        .runner("legacy")
        .send()
        .await;
    let rotated = rotated.unwrap().into_inner();
    assert_runner_key(&rotated.key);
    failure(beat(&server, &legacy, "legacy").await).assert(401, "Unauthorized");
    beat(&server, &rotated.key, "legacy").await.unwrap();
}

#[tokio::test]
async fn rotating_an_archived_runner_is_409() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, token) = create(&admin, "Archived", None).await;
    archive(&admin, &runner.slug, true).await;
    failure(
        admin
            .runner_token_post()
            .runner(runner.slug.as_str())
            .send()
            .await,
    )
    .assert(409, "Conflict")
    .mentions("archived");
    failure(
        admin
            .runner_key_post()
            .runner(runner.slug.as_str())
            .send()
            .await,
    )
    .assert(409, "Conflict")
    .mentions("archived");
    archive(&admin, &runner.slug, false).await;
    // The failed rotation left the old token in place.
    beat(&server, &token, &runner.slug).await.unwrap();
}
