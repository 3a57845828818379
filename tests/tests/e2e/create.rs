//! Creating and viewing runners: tokens, slugs, names.

use std::collections::HashSet;

use runners_sdk::types::JsonUpdateRunner;
use runners_sdk::types::{ResourceName, Slug};
use runners_tests::*;
use uuid::Uuid;

#[tokio::test]
async fn create_returns_the_runner_token_once_and_view_by_uuid_or_slug() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let created = admin
        .runners_post()
        .body(new_runner("Bare metal 1", None))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = created.into_inner();
    assert_runner_key(&created.key);

    let by_uuid = view(&admin, &created.uuid.to_string()).await;
    assert_eq!(by_uuid.uuid, created.uuid);
    assert_eq!(by_uuid.name, "Bare metal 1");
    assert_eq!(by_uuid.slug, "bare-metal-1");
    assert_eq!(by_uuid.archived, None);
    assert_eq!(by_uuid.last_heartbeat, None);
    assert_eq!(by_uuid.created, by_uuid.modified);
    let by_slug = view(&admin, "bare-metal-1").await;
    assert_eq!(by_slug, by_uuid);
    // The upper-case form of the UUID names the same runner.
    let upper = created.uuid.to_string().to_uppercase();
    assert_eq!(view(&admin, &upper).await, by_uuid);
}

#[tokio::test]
async fn explicit_slug_is_kept_and_a_taken_one_is_409() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, _) = create(&admin, "Anything", Some("rack-7")).await;
    assert_eq!(runner.slug, "rack-7");
    failure(
        admin
            .runners_post()
            .body(new_runner("Other", Some("rack-7")))
            .send()
            .await,
    )
    .assert(409, "Conflict")
    .mentions("slug");
    let (_, total) = list_all(&admin, false).await;
    assert_eq!(total, 1, "the rejected runner was not stored");
}

#[tokio::test]
async fn generated_slug_collisions_get_a_random_suffix() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mut seen = HashSet::new();
    for _ in 0..5 {
        let (runner, _) = create(&admin, "Same Name", None).await;
        assert!(
            runner.slug == "same-name" || runner.slug.starts_with("same-name-"),
            "{}",
            runner.slug
        );
        assert!(
            seen.insert(runner.slug.clone()),
            "duplicate slug {}",
            runner.slug
        );
    }
    assert!(seen.contains("same-name"));
}

#[tokio::test]
async fn generated_slugs_for_odd_names() {
    let server = TestServer::start().await;
    let admin = server.admin();
    // Nothing slugifiable: `runner-<random>`.
    let (runner, _) = create(&admin, "!!!", None).await;
    assert!(
        runner.slug.starts_with("runner-") && runner.slug.len() > 7,
        "{}",
        runner.slug
    );
    // Transliterated and cut to 64 characters.
    let (runner, _) = create(&admin, "Ünïcødé Rünner", None).await;
    assert_eq!(runner.slug, "unicode-runner");
    let (runner, _) = create(&admin, "long ".repeat(13).trim_end(), None).await;
    assert!(
        runner.slug.len() <= 64 && !runner.slug.ends_with('-'),
        "{}",
        runner.slug
    );
    // A name that slugifies to a UUID never gets a UUID as its slug.
    let uuid = Uuid::new_v4().to_string();
    let (runner, _) = create(&admin, &uuid, None).await;
    assert!(Uuid::try_parse(&runner.slug).is_err(), "{}", runner.slug);
    assert!(runner.slug.starts_with(&uuid));
}

#[tokio::test]
async fn invalid_names_are_400_naming_the_rule() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let long = "x".repeat(65);
    let cases = [
        ("", "1 to 64 bytes"),
        (" leading", "whitespace"),
        ("trailing\t", "whitespace"),
        ("bell\u{7}", "control"),
        ("nul\u{0}", "control"),
        (long.as_str(), "1 to 64 bytes"),
    ];
    for (name, rule) in cases {
        // The SDK's types refuse these before sending; the server too.
        assert!(name.parse::<ResourceName>().is_err(), "{name:?}");
        let body = serde_json::json!({ "name": name }).to_string();
        server
            .refused("POST", "/v0/runners", Some(&body))
            .await
            .assert(400, "InvalidRequest")
            .mentions("name")
            .mentions(rule);
    }
    // 64 bytes of multi-byte characters is the limit, not 64 characters.
    create(&admin, &"é".repeat(32), None).await;
    failure(
        admin
            .runners_post()
            .body(new_runner(&"é".repeat(33), None))
            .send()
            .await,
    )
    .assert(400, "InvalidRequest");
    let (_, total) = list_all(&admin, true).await;
    assert_eq!(total, 1, "no rejected runner was stored");
}

#[tokio::test]
async fn invalid_slugs_are_400_naming_the_rule() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let uuid = Uuid::new_v4().to_string();
    let long = "a".repeat(65);
    for slug in [
        "",
        "Upper",
        "two--hyphens",
        "-edge",
        "under_score",
        "spa ce",
        &long,
        &uuid,
    ] {
        assert!(slug.parse::<Slug>().is_err(), "{slug:?}");
        let body = serde_json::json!({ "name": "Runner", "slug": slug }).to_string();
        server
            .refused("POST", "/v0/runners", Some(&body))
            .await
            .assert(400, "InvalidRequest")
            .mentions("slug");
    }
    let (_, total) = list_all(&admin, true).await;
    assert_eq!(total, 0, "no rejected runner was stored");
}

#[tokio::test]
async fn the_sdk_refuses_a_bad_slug_before_sending_anything() {
    // Nothing listens on port 9 (discard): a request sent would be a
    // communication error, not this.
    let client = runners_sdk::client_with_token("http://127.0.0.1:9", "t").unwrap();
    let refused = client.runner_get().runner("Bad Slug!").send().await;
    assert!(
        matches!(refused, Err(runners_sdk::Error::InvalidRequest(_))),
        "{refused:?}"
    );
    assert!("Bad Slug!".parse::<Slug>().is_err());
    assert!("".parse::<ResourceName>().is_err());
    assert!("x".repeat(65).parse::<ResourceName>().is_err());
}

#[tokio::test]
async fn unknown_runner_is_404_and_a_malformed_path_is_400() {
    let server = TestServer::start().await;
    let admin = server.admin();
    failure(admin.runner_get().runner("no-such-runner").send().await)
        .assert(404, "NotFound")
        .mentions("no-such-runner");
    failure(
        admin
            .runner_get()
            .runner(Uuid::new_v4().to_string())
            .send()
            .await,
    )
    .assert(404, "NotFound");
    failure(
        admin
            .runner_token_post()
            .runner("no-such-runner")
            .send()
            .await,
    )
    .assert(404, "NotFound");
    failure(
        admin
            .runner_patch()
            .runner("no-such-runner")
            .body(JsonUpdateRunner::default())
            .send()
            .await,
    )
    .assert(404, "NotFound");
    server
        .refused("GET", "/v0/runners/Not_A_Slug", None)
        .await
        .assert(400, "InvalidRequest")
        .mentions("slug nor a UUID");
}

#[tokio::test]
async fn created_items_answer_a_location_that_views_them() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let created = admin
        .runners_post()
        .body(new_runner("Located", None))
        .send()
        .await
        .unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let uuid = created.into_inner().uuid;
    assert_eq!(location, format!("/v0/runners/{uuid}"));
    let rotated = admin.runner_key_post().runner("located").send().await;
    assert_eq!(rotated.unwrap().headers()["location"], location.as_str());
    let spec = admin
        .specs_post()
        .body(new_spec("Box"))
        .send()
        .await
        .unwrap();
    let spec_location = spec.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        spec_location,
        format!("/v0/specs/{}", spec.into_inner().uuid)
    );
    // Following them, with the same credentials, views what was created.
    let http = reqwest::Client::new();
    for path in [&location, &spec_location] {
        let viewed = http
            .get(format!("{}{path}", server.url))
            .bearer_auth(&server.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(viewed.status(), 200, "{path}");
    }
}
