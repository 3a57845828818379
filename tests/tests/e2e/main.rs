//! End-to-end tests: each starts the real server on 127.0.0.1:0 with a fresh
//! SQLite file and drives it through the generated SDK (and, for requests the
//! typed SDK cannot express, through the SDK's own HTTP client).

mod hostile;

use std::collections::HashSet;

use chrono::Duration;
use runners_sdk::types::{JsonDirection, JsonNewRunner, JsonRunner, JsonUpdateRunner, RunnersSort};
use runners_sdk::{Client, ClientInfo, Error, ResponseValue, total_count, types};
use runners_tests::{TestServer, failure};
use uuid::Uuid;

const RUNNER_TOKEN_PREFIX: &str = "bencher_runner_";

fn new_runner(name: &str, slug: Option<&str>) -> JsonNewRunner {
    JsonNewRunner {
        name: name.into(),
        slug: slug.map(Into::into),
    }
}

async fn create(client: &Client, name: &str, slug: Option<&str>) -> (JsonRunner, String) {
    let created = client
        .runners_post()
        .body(new_runner(name, slug))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = created.into_inner();
    let runner = client
        .runner_get()
        .runner(created.uuid.to_string())
        .send()
        .await
        .unwrap()
        .into_inner();
    (runner, created.token)
}

async fn archive(client: &Client, runner: &str, archived: bool) -> JsonRunner {
    client
        .runner_patch()
        .runner(runner)
        .body(JsonUpdateRunner {
            archived: Some(archived),
            name: None,
            slug: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner()
}

/// A heartbeat of `runner` sent with `token`.
async fn beat(
    server: &TestServer,
    token: &str,
    runner: &str,
) -> Result<ResponseValue<JsonRunner>, Error<types::Error>> {
    server
        .client(token)
        .runner_heartbeat_post()
        .runner(runner)
        .send()
        .await
}

fn slugs(runners: &[JsonRunner]) -> Vec<&str> {
    runners.iter().map(|r| r.slug.as_str()).collect()
}

fn assert_runner_token(token: &str) {
    let hex = token
        .strip_prefix(RUNNER_TOKEN_PREFIX)
        .expect("runner token prefix");
    assert_eq!(hex.len(), 64, "{token}");
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{token}"
    );
}

// ---- server endpoints ----

#[tokio::test]
async fn version_is_public_semver() {
    let server = TestServer::start().await;
    let version = server
        .anonymous()
        .server_version_get()
        .send()
        .await
        .unwrap()
        .into_inner();
    let parts: Vec<u64> = version
        .version
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(parts.len(), 3, "{}", version.version);
}

#[tokio::test]
async fn spec_endpoint_serves_the_checked_in_openapi_json() {
    let server = TestServer::start().await;
    let served = server
        .anonymous()
        .server_spec_get()
        .send()
        .await
        .unwrap()
        .into_inner();
    // Read when the test runs, not when it is built: `EXPECTORATE=overwrite`
    // rewrites the file in the same `cargo test` run.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(served, file);
}

// ---- create and view ----

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
    assert_runner_token(&created.token);

    let by_uuid = admin
        .runner_get()
        .runner(created.uuid.to_string())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_uuid.uuid, created.uuid);
    assert_eq!(by_uuid.name, "Bare metal 1");
    assert_eq!(by_uuid.slug, "bare-metal-1");
    assert_eq!(by_uuid.archived, None);
    assert_eq!(by_uuid.last_heartbeat, None);
    assert_eq!(by_uuid.created, by_uuid.modified);
    let by_slug = admin
        .runner_get()
        .runner("bare-metal-1")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_slug, by_uuid);
    // The upper-case form of the UUID names the same runner.
    let upper = created.uuid.to_string().to_uppercase();
    assert_eq!(
        admin
            .runner_get()
            .runner(upper)
            .send()
            .await
            .unwrap()
            .into_inner(),
        by_uuid
    );
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
        failure(
            admin
                .runners_post()
                .body(new_runner(name, None))
                .send()
                .await,
        )
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
        failure(
            admin
                .runners_post()
                .body(new_runner("Runner", Some(slug)))
                .send()
                .await,
        )
        .assert(400, "InvalidRequest")
        .mentions("slug");
    }
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
    failure(admin.runner_get().runner("Not_A_Slug").send().await)
        .assert(400, "InvalidRequest")
        .mentions("runner");
}

// ---- malformed requests ----

#[tokio::test]
async fn malformed_bodies_are_400_with_an_error_code() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let http = admin.client();
    let url = format!("{}/v0/runners", admin.baseurl());
    let cases = [
        ("{", "unable to parse JSON body"),
        ("{\"name\": 5}", "name"),
        ("{}", "name"),
        ("{\"name\": \"ok\", \"nmae\": \"typo\"}", "nmae"),
        ("[]", "unable to parse JSON body"),
    ];
    for (body, needle) in cases {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "InvalidRequest", "{body}: {error}");
        assert!(error["request_id"].is_string());
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{body}: {error}"
        );
    }
    // Over the body limit: 413; not JSON: 415. Both keep the error shape.
    let too_big = format!("{{\"name\": \"{}\"}}", "x".repeat(2000));
    for (content_type, body, status) in [
        ("application/json", too_big.as_str(), 413),
        ("text/plain", "{\"name\": \"x\"}", 415),
        ("application/x-www-form-urlencoded", "name=x", 415),
    ] {
        let response = http
            .post(&url)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{content_type}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "InvalidRequest", "{error}");
    }
    let (_, total) = list_all(&admin, true).await;
    assert_eq!(total, 0, "nothing was stored");
}

#[tokio::test]
async fn bad_list_queries_are_400_naming_the_parameter() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let http = admin.client();
    for (query, param) in [
        ("sort=size", "sort"),
        ("direction=up", "direction"),
        ("per_page=0", "per_page"),
        ("per_page=256", "per_page"),
        ("per_page=ten", "per_page"),
        ("page=0", "page"),
        ("page=99999999999", "page"),
        ("archived=maybe", "archived"),
        ("per-page=5", "per-page"),
    ] {
        let url = format!("{}/v0/runners?{query}", admin.baseurl());
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "InvalidRequest", "{query}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(param),
            "{query}: {error}"
        );
    }
    // The SDK's typed parameters reach the same checks (it refuses 0 itself).
    failure(admin.runners_get().per_page(256u32).send().await)
        .assert(400, "InvalidRequest")
        .mentions("per_page")
        .mentions("1 to 255");
}

// ---- authentication and authorization ----

/// Every admin endpoint, against a runner that may or may not exist.
async fn admin_endpoint_failures(client: &Client, runner: &str) -> Vec<runners_tests::ApiFailure> {
    vec![
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
    let (_, expired) = server.api_token("admin", true, Duration::seconds(-10));
    failure(server.client(&expired).runners_get().send().await)
        .assert(401, "Unauthorized")
        .mentions("expired");
}

#[tokio::test]
async fn a_revoked_token_is_401_within_the_cache_bound() {
    let server = TestServer::start().await;
    let (jti, token) = server.api_token("ops", true, Duration::days(1));
    let client = server.client(&token);
    client.runners_get().send().await.unwrap();
    server.store().revoke_api_token(jti).unwrap();
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
    let (_, token) = server.api_token("viewer", false, Duration::days(1));
    let client = server.client(&token);
    for path in [runner.slug.as_str(), "does-not-exist"] {
        for f in admin_endpoint_failures(&client, path).await {
            f.assert(403, "Forbidden").mentions("admin");
        }
    }
    // `token create --admin` on the same user promotes it.
    let (_, token) = server.api_token("viewer", true, Duration::days(1));
    server.client(&token).runners_get().send().await.unwrap();
}

// ---- listing ----

async fn list_all(client: &Client, archived: bool) -> (Vec<JsonRunner>, u64) {
    let page = client
        .runners_get()
        .archived(archived)
        .per_page(255u32)
        .send()
        .await
        .unwrap();
    let total = total_count(&page).expect("X-Total-Count");
    (page.into_inner(), total)
}

#[tokio::test]
async fn list_defaults_to_8_sorted_by_name_with_the_total_count() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for i in (0..10).rev() {
        create(&admin, &format!("runner {i:02}"), None).await;
    }
    let page = admin.runners_get().send().await.unwrap();
    assert_eq!(total_count(&page), Some(10));
    let runners = page.into_inner();
    assert_eq!(runners.len(), 8);
    let expected: Vec<String> = (0..8).map(|i| format!("runner-{i:02}")).collect();
    assert_eq!(slugs(&runners), expected);
}

#[tokio::test]
async fn pages_come_in_order_without_repeats_or_gaps() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for i in 0..20 {
        // Many equal names: the order must still be total (ties by slug).
        create(&admin, &format!("shared {}", i % 3), None).await;
    }
    let (everything, _) = list_all(&admin, false).await;
    let mut paged = Vec::new();
    for page in 1..=7u32 {
        let response = admin
            .runners_get()
            .per_page(3u32)
            .page(page)
            .send()
            .await
            .unwrap();
        assert_eq!(total_count(&response), Some(20));
        paged.extend(response.into_inner());
    }
    assert_eq!(paged, everything);
    let past_end = admin
        .runners_get()
        .per_page(3u32)
        .page(8u32)
        .send()
        .await
        .unwrap();
    assert_eq!(past_end.status(), 200);
    assert_eq!(total_count(&past_end), Some(20));
    assert!(past_end.into_inner().is_empty());
    let far = admin
        .runners_get()
        .page(u32::MAX)
        .per_page(255u32)
        .send()
        .await
        .unwrap();
    assert!(far.into_inner().is_empty());
}

#[tokio::test]
async fn sort_by_name_and_by_created_in_both_directions() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for (name, slug) in [("b", "b-2"), ("c", "c"), ("a", "a"), ("b", "b-1")] {
        create(&admin, name, Some(slug)).await;
    }
    let list = |sort, direction| {
        let admin = admin.clone();
        async move {
            let runners = admin
                .runners_get()
                .sort(sort)
                .direction(direction)
                .send()
                .await
                .unwrap();
            slugs(&runners.into_inner())
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(RunnersSort::Name, JsonDirection::Asc).await,
        ["a", "b-1", "b-2", "c"]
    );
    assert_eq!(
        list(RunnersSort::Name, JsonDirection::Desc).await,
        ["c", "b-2", "b-1", "a"]
    );
    assert_eq!(
        list(RunnersSort::Created, JsonDirection::Asc).await,
        ["b-2", "c", "a", "b-1"]
    );
    assert_eq!(
        list(RunnersSort::Created, JsonDirection::Desc).await,
        ["b-1", "a", "c", "b-2"]
    );
}

#[tokio::test]
async fn name_filter_is_exact_and_counts_only_matches() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for name in ["gpu", "gpu", "GPU", "gpu 2"] {
        create(&admin, name, None).await;
    }
    let page = admin
        .runners_get()
        .name("gpu")
        .per_page(1u32)
        .send()
        .await
        .unwrap();
    assert_eq!(total_count(&page), Some(2));
    assert_eq!(page.into_inner().len(), 1);
}

#[tokio::test]
async fn search_is_case_insensitive_literal_and_matches_uuids() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (ampere, _) = create(&admin, "Ampere Altra", Some("arm-box")).await;
    create(&admin, "100% CPU", Some("full")).await;
    create(&admin, "a_b", Some("underscore")).await;
    create(&admin, "aXb", Some("no-underscore")).await;
    create(&admin, "ÉCOLE runner", Some("ecole")).await;
    let search = |text: String| {
        let admin = admin.clone();
        async move {
            let page = admin.runners_get().search(text).send().await.unwrap();
            let total = total_count(&page).unwrap();
            let mut found: Vec<String> = page.into_inner().into_iter().map(|r| r.slug).collect();
            found.sort();
            assert_eq!(total as usize, found.len());
            found
        }
    };
    assert_eq!(search("ampere".into()).await, ["arm-box"]);
    assert_eq!(search("ALTRA".into()).await, ["arm-box"]);
    assert_eq!(search("arm-b".into()).await, ["arm-box"]);
    assert_eq!(search("%".into()).await, ["full"]);
    assert_eq!(search("a_b".into()).await, ["underscore"]);
    assert_eq!(search("école".into()).await, ["ecole"]);
    let fragment = ampere.uuid.to_string()[9..18].to_uppercase();
    assert_eq!(search(fragment).await, ["arm-box"]);
    assert!(search("nothing-like-this".into()).await.is_empty());
}

// ---- update and archive ----

#[tokio::test]
async fn patch_changes_name_and_slug_and_bumps_modified() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, _) = create(&admin, "Old", None).await;
    let unchanged = admin
        .runner_patch()
        .runner(&runner.slug)
        .body(JsonUpdateRunner::default())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, runner, "an empty patch changes nothing");
    let updated = admin
        .runner_patch()
        .runner(&runner.slug)
        .body(JsonUpdateRunner {
            name: Some("New".into()),
            slug: Some("new-slug".into()),
            archived: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.name.as_str(), updated.slug.as_str()),
        ("New", "new-slug")
    );
    assert_eq!(
        (updated.uuid, updated.created),
        (runner.uuid, runner.created)
    );
    assert!(updated.modified > runner.modified);
    assert_eq!(
        admin
            .runner_get()
            .runner("new-slug")
            .send()
            .await
            .unwrap()
            .into_inner(),
        updated
    );
    failure(admin.runner_get().runner("old").send().await).assert(404, "NotFound");
}

#[tokio::test]
async fn patch_to_a_taken_slug_is_409_and_invalid_fields_are_400() {
    let server = TestServer::start().await;
    let admin = server.admin();
    create(&admin, "One", None).await;
    let (two, _) = create(&admin, "Two", None).await;
    let patch = |name: Option<&str>, slug: Option<&str>| JsonUpdateRunner {
        name: name.map(Into::into),
        slug: slug.map(Into::into),
        archived: None,
    };
    failure(
        admin
            .runner_patch()
            .runner("two")
            .body(patch(None, Some("one")))
            .send()
            .await,
    )
    .assert(409, "Conflict")
    .mentions("one");
    failure(
        admin
            .runner_patch()
            .runner("two")
            .body(patch(Some(" x"), None))
            .send()
            .await,
    )
    .assert(400, "InvalidRequest")
    .mentions("name");
    failure(
        admin
            .runner_patch()
            .runner("two")
            .body(patch(None, Some("Bad Slug")))
            .send()
            .await,
    )
    .assert(400, "InvalidRequest")
    .mentions("slug");
    let after = admin
        .runner_get()
        .runner("two")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, two, "rejected patches changed nothing");
}

#[tokio::test]
async fn archive_and_unarchive_control_listing() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (a, _) = create(&admin, "a", None).await;
    create(&admin, "b", None).await;

    let archived = archive(&admin, "a", true).await;
    let stamp = archived.archived.expect("archive stamps the time");
    assert!(archived.modified > a.modified);
    // Archiving again keeps the first stamp.
    assert_eq!(archive(&admin, "a", true).await.archived, Some(stamp));

    let (active, total) = list_all(&admin, false).await;
    assert_eq!((slugs(&active), total), (vec!["b"], 1));
    let (all, total) = list_all(&admin, true).await;
    assert_eq!((slugs(&all), total), (vec!["a", "b"], 2));
    // An archived runner can still be viewed.
    assert_eq!(
        admin
            .runner_get()
            .runner("a")
            .send()
            .await
            .unwrap()
            .into_inner()
            .archived,
        Some(stamp)
    );

    assert_eq!(archive(&admin, "a", false).await.archived, None);
    let (active, _) = list_all(&admin, false).await;
    assert_eq!(slugs(&active), ["a", "b"]);
}

// ---- runner tokens ----

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
    let viewed = server
        .admin()
        .runner_get()
        .runner(&runner.slug)
        .send()
        .await
        .unwrap();
    assert_eq!(viewed.into_inner().last_heartbeat, second.last_heartbeat);
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
            .runner(&mine.slug)
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
        .runner(&runner.slug)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 201);
    let rotated = rotated.into_inner();
    assert_eq!(rotated.uuid, runner.uuid);
    assert_runner_token(&rotated.token);
    assert_ne!(rotated.token, old);

    failure(beat(&server, &old, &runner.slug).await).assert(401, "Unauthorized");
    beat(&server, &rotated.token, &runner.slug).await.unwrap();
}

#[tokio::test]
async fn rotating_an_archived_runner_is_409() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, token) = create(&admin, "Archived", None).await;
    archive(&admin, &runner.slug, true).await;
    failure(admin.runner_token_post().runner(&runner.slug).send().await)
        .assert(409, "Conflict")
        .mentions("archived");
    archive(&admin, &runner.slug, false).await;
    // The failed rotation left the old token in place.
    beat(&server, &token, &runner.slug).await.unwrap();
}

// ---- Bencher CLI compatibility ----

#[tokio::test]
async fn bencher_cli_style_requests_work() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, _) = create(&admin, "Cli", None).await;
    // Bencher's CLI checks the version first, then sends the rotation POST
    // with no body and no Content-Length: written here byte for byte.
    let http = reqwest::Client::new();
    let version = http
        .get(format!("{}/v0/server/version", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), 200);
    let host = server.url.trim_start_matches("http://").to_owned();
    let request = format!(
        "POST /v0/runners/{}/token HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n",
        runner.slug, server.admin_token
    );
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 201 "), "{response}");
    let body: serde_json::Value =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["uuid"], runner.uuid.to_string());
    assert_runner_token(body["token"].as_str().unwrap());
    // The API token is JWT-shaped: three base64url parts.
    let parts: Vec<&str> = server.admin_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }));
}

// ---- storage ----

#[tokio::test]
async fn data_survives_a_restart_on_the_same_file() {
    let mut server = TestServer::start().await;
    let (runner, token) = create(&server.admin(), "Durable", None).await;
    archive(&server.admin(), &runner.slug, true).await;
    archive(&server.admin(), &runner.slug, false).await;
    let before = server
        .admin()
        .runner_get()
        .runner(&runner.slug)
        .send()
        .await
        .unwrap()
        .into_inner();
    server.restart().await;
    let after = server
        .admin()
        .runner_get()
        .runner(&runner.slug)
        .send()
        .await
        .unwrap()
        .into_inner();
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
        .runner(&runner.slug)
        .send()
        .await
        .unwrap()
        .into_inner();
    let (_, api_token) = server.api_token("ops", true, Duration::days(1));
    let bytes = server.database_bytes();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for secret in [
        token.as_str(),
        rotated.token.as_str(),
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
    // What is stored is the SHA-256 of the runner token.
    let conn = rusqlite::Connection::open(server.db_path()).unwrap();
    let hash: Vec<u8> = conn
        .query_row(
            "SELECT token_hash FROM runners WHERE slug = ?",
            [&runner.slug],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        hash,
        runners_server::auth::hash_runner_token(&rotated.token)
    );
}
