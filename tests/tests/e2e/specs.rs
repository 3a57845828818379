//! Hardware specs: create, view, list, update, the fallback invariant, and
//! delete.

use futures::future::join_all;
use runners_sdk::types::{JsonNewRunnerSpec, JsonUpdateSpec, Sandbox};
use runners_sdk::{ClientInfo, total_count};
use runners_tests::*;

/// The UUIDs of the specs that are the fallback now.
async fn fallbacks(client: &runners_sdk::Client) -> Vec<String> {
    all_specs(client)
        .await
        .into_iter()
        .filter(|s| s.fallback.is_some())
        .map(|s| s.slug)
        .collect()
}

fn set_fallback(fallback: bool) -> JsonUpdateSpec {
    JsonUpdateSpec {
        fallback: Some(fallback),
        ..Default::default()
    }
}

fn set_archived(archived: bool) -> JsonUpdateSpec {
    JsonUpdateSpec {
        archived: Some(archived),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_view_list_and_update_a_spec() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mut body = new_spec("Big Box #1");
    body.sandbox = Some(Sandbox::Firecracker);
    body.network = true;
    let spec = create_spec(&admin, body).await;
    assert_eq!(spec.slug, "big-box-1");
    assert_eq!((spec.cpu, spec.memory, spec.disk), (4, 16 << 30, 100 << 30));
    assert_eq!(spec.sandbox, Some(Sandbox::Firecracker));
    assert!(spec.network && spec.fallback.is_none() && spec.archived.is_none());

    for by in [spec.slug.clone(), spec.uuid.to_string()] {
        let viewed = admin.spec_get().spec(by.as_str()).send().await.unwrap();
        assert_eq!(viewed.into_inner(), spec);
    }
    // The same name again: a generated slug with a suffix.
    let twin = create_spec(&admin, new_spec("Big Box #1")).await;
    assert!(twin.slug.starts_with("big-box-1-"), "{}", twin.slug);

    let page = admin.specs_get().search("BOX").send().await.unwrap();
    assert_eq!(total_count(&page), Some(2));
    assert_eq!(page.into_inner().len(), 2);

    let renamed = patch_spec(
        &admin,
        &spec.slug,
        JsonUpdateSpec {
            name: Some("Bigger".parse().unwrap()),
            slug: Some("bigger".parse().unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        (renamed.name.as_str(), renamed.slug.as_str()),
        ("Bigger", "bigger")
    );
    assert!(renamed.modified > spec.modified);

    // A taken slug, given: 409 on create and on update.
    let mut taken = new_spec("x");
    taken.slug = Some("bigger".parse().unwrap());
    failure(admin.specs_post().body(taken).send().await)
        .assert(409, "Conflict")
        .mentions("bigger");
    let to_taken = JsonUpdateSpec {
        slug: Some("bigger".parse().unwrap()),
        ..Default::default()
    };
    failure(patch_spec(&admin, &twin.slug, to_taken).await).assert(409, "Conflict");
    failure(admin.spec_get().spec("no-such-spec").send().await)
        .assert(404, "NotFound")
        .mentions("no-such-spec");
}

#[tokio::test]
async fn bad_specs_are_400_naming_the_field_and_rule() {
    let server = TestServer::start().await;
    let http = server.admin();
    let cases = [
        (r#""cpu": 0"#, "cpu"),
        (r#""cpu": 2147483648"#, "cpu"),
        (r#""memory": 0"#, "memory"),
        (r#""memory": 9223372036854775808"#, "memory"),
        (r#""disk": -1"#, "disk"),
        (r#""architecture": "riscv64""#, "architecture"),
        (r#""os": "plan9""#, "os"),
        (r#""sandbox": "docker""#, "sandbox"),
        (r#""name": " padded""#, "name"),
        (r#""slug": "Not A Slug""#, "slug"),
        (r#""colour": "red""#, "colour"),
    ];
    for (change, field) in cases {
        let mut body = serde_json::json!({
            "name": "ok", "architecture": "x86_64", "os": "linux",
            "cpu": 1, "memory": 1, "disk": 1
        });
        let patch: serde_json::Value = serde_json::from_str(&format!("{{{change}}}")).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = http
            .client()
            .post(format!("{}/v0/specs", server.url))
            .bearer_auth(&server.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{change}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "InvalidRequest", "{change}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(field), "{change}: {message}");
    }
    assert!(all_specs(&http).await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn at_most_one_fallback_spec_at_any_time() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mut a = new_spec("a");
    a.fallback = true;
    let a = create_spec(&admin, a).await;
    assert!(a.fallback.is_some());
    let mut b = new_spec("b");
    b.fallback = true;
    create_spec(&admin, b).await;
    assert_eq!(fallbacks(&admin).await, ["b"], "creating b cleared a");

    patch_spec(&admin, "a", set_fallback(true)).await.unwrap();
    assert_eq!(fallbacks(&admin).await, ["a"], "patching a cleared b");
    let again = patch_spec(&admin, "a", set_fallback(true)).await.unwrap();
    let first = all_specs(&admin).await.into_iter().find(|s| s.slug == "a");
    assert_eq!(
        again.into_inner().fallback,
        first.unwrap().fallback,
        "kept its time"
    );

    // Archiving clears the fallback; unarchiving does not restore it.
    patch_spec(&admin, "a", set_archived(true)).await.unwrap();
    assert!(fallbacks(&admin).await.is_empty());
    patch_spec(&admin, "a", set_archived(false)).await.unwrap();
    assert!(fallbacks(&admin).await.is_empty());

    // An archived spec cannot become the fallback.
    patch_spec(&admin, "b", set_archived(true)).await.unwrap();
    failure(patch_spec(&admin, "b", set_fallback(true)).await)
        .assert(409, "Conflict")
        .mentions("archived");

    // Both at once: archived, and no fallback anywhere.
    patch_spec(&admin, "a", set_fallback(true)).await.unwrap();
    let both = JsonUpdateSpec {
        fallback: Some(true),
        archived: Some(true),
        ..Default::default()
    };
    let c = create_spec(&admin, new_spec("c")).await;
    let archived = patch_spec(&admin, &c.slug, both)
        .await
        .unwrap()
        .into_inner();
    assert!(archived.archived.is_some() && archived.fallback.is_none());
    assert!(fallbacks(&admin).await.is_empty());

    patch_spec(&admin, "a", set_fallback(true)).await.unwrap();
    patch_spec(&admin, "a", set_fallback(false)).await.unwrap();
    assert!(fallbacks(&admin).await.is_empty());
}

#[tokio::test]
async fn parallel_fallback_patches_leave_exactly_one() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mut slugs = Vec::new();
    for i in 0..8 {
        slugs.push(create_spec(&admin, new_spec(&format!("s{i}"))).await.slug);
    }
    let patches = (0..32).map(|i| patch_spec(&admin, &slugs[i % 8], set_fallback(true)));
    for answer in join_all(patches).await {
        assert_eq!(answer.unwrap().status(), 200);
    }
    assert_eq!(fallbacks(&admin).await.len(), 1);
}

#[tokio::test]
async fn delete_is_204_and_409_while_a_runner_has_the_spec() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let used = create_spec(&admin, new_spec("used")).await;
    let unused = create_spec(&admin, new_spec("unused")).await;
    let (runner, _) = create(&admin, "Holder", None).await;
    admin
        .runner_specs_post()
        .runner(runner.slug.as_str())
        .body(JsonNewRunnerSpec {
            spec: used.slug.parse().unwrap(),
        })
        .send()
        .await
        .unwrap();
    // Archived, the runner still has it.
    archive(&admin, &runner.slug, true).await;
    failure(admin.spec_delete().spec(used.slug.as_str()).send().await)
        .assert(409, "Conflict")
        .mentions("holder");

    let deleted = admin
        .spec_delete()
        .spec(unused.uuid.to_string())
        .send()
        .await;
    assert_eq!(deleted.unwrap().status(), 204);
    failure(admin.spec_get().spec(unused.slug.as_str()).send().await).assert(404, "NotFound");
    failure(admin.spec_delete().spec(unused.slug.as_str()).send().await).assert(404, "NotFound");

    admin
        .runner_spec_delete()
        .runner(runner.slug.as_str())
        .spec(used.slug.as_str())
        .send()
        .await
        .unwrap();
    let deleted = admin.spec_delete().spec(used.slug.as_str()).send().await;
    assert_eq!(deleted.unwrap().status(), 204);
}
