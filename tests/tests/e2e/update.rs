//! Updating, archiving and unarchiving runners.

use runners_sdk::types::JsonUpdateRunner;
use runners_tests::*;

#[tokio::test]
async fn patch_changes_name_and_slug_and_bumps_modified() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, _) = create(&admin, "Old", None).await;
    let unchanged = admin
        .runner_patch()
        .runner(runner.slug.as_str())
        .body(JsonUpdateRunner::default())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, runner, "an empty patch changes nothing");
    let updated = admin
        .runner_patch()
        .runner(runner.slug.as_str())
        .body(JsonUpdateRunner {
            name: Some("New".parse().unwrap()),
            slug: Some("new-slug".parse().unwrap()),
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
    assert_eq!(view(&admin, "new-slug").await, updated);
    failure(admin.runner_get().runner("old").send().await).assert(404, "NotFound");
}

#[tokio::test]
async fn patch_to_a_taken_slug_is_409_and_invalid_fields_are_400() {
    let server = TestServer::start().await;
    let admin = server.admin();
    create(&admin, "One", None).await;
    let (two, _) = create(&admin, "Two", None).await;
    let to_one = JsonUpdateRunner {
        slug: Some("one".parse().unwrap()),
        ..Default::default()
    };
    failure(admin.runner_patch().runner("two").body(to_one).send().await)
        .assert(409, "Conflict")
        .mentions("one");
    server
        .refused("PATCH", "/v0/runners/two", Some(r#"{"name": " x"}"#))
        .await
        .assert(400, "InvalidRequest")
        .mentions("name");
    server
        .refused("PATCH", "/v0/runners/two", Some(r#"{"slug": "Bad Slug"}"#))
        .await
        .assert(400, "InvalidRequest")
        .mentions("slug");
    let after = view(&admin, "two").await;
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
    assert_eq!(view(&admin, "a").await.archived, Some(stamp));

    assert_eq!(archive(&admin, "a", false).await.archived, None);
    let (active, _) = list_all(&admin, false).await;
    assert_eq!(slugs(&active), ["a", "b"]);
}
