//! The specs of a runner: add, list, remove, and `specs` on every runner.

use runners_sdk::types::{self, JsonNewRunnerSpec, JsonSpec};
use runners_sdk::{Client, Error, ResponseValue};
use runners_tests::*;

/// Adds `spec` to `runner` (each by slug or UUID).
async fn add_spec(
    client: &Client,
    runner: &str,
    spec: &str,
) -> Result<ResponseValue<JsonSpec>, Error<types::Error>> {
    let body = JsonNewRunnerSpec {
        spec: spec.parse().unwrap(),
    };
    client
        .runner_specs_post()
        .runner(runner)
        .body(body)
        .send()
        .await
}

/// Removes `spec` from `runner`.
async fn remove_spec(
    client: &Client,
    runner: &str,
    spec: &str,
) -> Result<ResponseValue<()>, Error<types::Error>> {
    client
        .runner_spec_delete()
        .runner(runner)
        .spec(spec)
        .send()
        .await
}

#[tokio::test]
async fn specs_are_added_listed_and_removed_in_order() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, _) = create(&admin, "Rack", None).await;
    assert!(runner.specs.is_empty(), "`specs` is [] when none");
    let small = create_spec(&admin, new_spec("small")).await;
    let large = create_spec(&admin, new_spec("large")).await;

    // By slug, then by UUID: 201 with the spec.
    let added = add_spec(&admin, &runner.slug, "small").await.unwrap();
    assert_eq!(added.status(), 201);
    assert_eq!(added.into_inner(), small);
    let added = add_spec(&admin, &runner.uuid.to_string(), &large.uuid.to_string())
        .await
        .unwrap();
    assert_eq!(added.into_inner().uuid, large.uuid);

    // In the order added (not by name), on the spec list, the view and the list.
    let listed = admin
        .runner_specs_get()
        .runner(runner.slug.as_str())
        .send()
        .await;
    let listed: Vec<_> = listed
        .unwrap()
        .into_inner()
        .into_iter()
        .map(|s| s.uuid)
        .collect();
    assert_eq!(listed, [small.uuid, large.uuid]);
    let viewed = view(&admin, &runner.slug).await;
    assert_eq!(viewed.specs, [small.uuid, large.uuid]);
    let (page, _) = list_all(&admin, false).await;
    assert_eq!(page[0].specs, [small.uuid, large.uuid]);

    // Twice: 409. Unknown spec or runner: 404.
    failure(add_spec(&admin, &runner.slug, "small").await)
        .assert(409, "Conflict")
        .mentions("small");
    failure(add_spec(&admin, &runner.slug, "nope").await)
        .assert(404, "NotFound")
        .mentions("nope");
    failure(admin.runner_specs_get().runner("nobody").send().await).assert(404, "NotFound");
    let path = format!("/v0/runners/{}/specs", runner.slug);
    server
        .refused("POST", &path, Some(r#"{"spec": "Not A Slug"}"#))
        .await
        .assert(400, "InvalidRequest")
        .mentions("spec");

    // Remove: 204, then 404 as the runner no longer has it.
    let removed = remove_spec(&admin, &runner.slug, "small").await.unwrap();
    assert_eq!(removed.status(), 204);
    failure(remove_spec(&admin, &runner.slug, "small").await)
        .assert(404, "NotFound")
        .mentions("does not have");
    let viewed = view(&admin, &runner.slug).await;
    assert_eq!(viewed.specs, [large.uuid]);
}
