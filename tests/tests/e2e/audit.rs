//! The audit trail: one row per successful admin write, none for a rejected
//! one, and never a secret.

use runners_sdk::types::{JsonNewRunnerSpec, JsonUpdateRunner, JsonUpdateSpec};
use runners_tests::*;

#[tokio::test]
async fn every_admin_write_has_one_audit_row_and_rejected_ones_none() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, key) = create(&admin, "Audited", None).await;
    let mut secrets = vec![server.admin_token.clone(), key];
    let rename = JsonUpdateRunner {
        name: Some("Audited II".parse().unwrap()),
        ..Default::default()
    };
    admin
        .runner_patch()
        .runner("audited")
        .body(rename)
        .send()
        .await
        .unwrap();
    let rotated = admin.runner_key_post().runner("audited").send().await;
    secrets.push(rotated.unwrap().into_inner().key);
    #[allow(deprecated)]
    let rotated = admin.runner_token_post().runner("audited").send().await;
    secrets.push(rotated.unwrap().into_inner().key);
    create_spec(&admin, new_spec("Box")).await;
    let archive_spec = JsonUpdateSpec {
        archived: Some(true),
        ..Default::default()
    };
    patch_spec(&admin, "box", archive_spec).await.unwrap();
    let add = JsonNewRunnerSpec {
        spec: "box".parse().unwrap(),
    };
    let runner_specs = admin.runner_specs_post().runner("audited").body(add);
    runner_specs.send().await.unwrap();
    let remove = admin.runner_spec_delete().runner("audited").spec("box");
    remove.send().await.unwrap();
    admin.spec_delete().spec("box").send().await.unwrap();
    archive(&admin, "audited", true).await;

    // Rejected: a taken slug, a bad name, no credentials, an archived
    // runner's rotation, an unknown spec, a no-op heartbeat (not an admin
    // write at all).
    failure(
        admin
            .runners_post()
            .body(new_runner("x", Some("audited")))
            .send()
            .await,
    );
    server
        .refused("POST", "/v0/runners", Some(r#"{"name": " x"}"#))
        .await;
    failure(
        server
            .anonymous()
            .runners_post()
            .body(new_runner("y", None))
            .send()
            .await,
    );
    failure(admin.runner_key_post().runner("audited").send().await);
    failure(admin.spec_delete().spec("nope").send().await);

    let store = server.store();
    let rows = store.audit(None, None).await.unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            // The bootstrap admin and its token, by the program.
            "user.create",
            "token.create",
            "runner.create",
            "runner.update",
            "runner.key.rotate",
            "runner.key.rotate",
            "spec.create",
            "spec.update",
            "runner.spec.add",
            "runner.spec.remove",
            "spec.delete",
            "runner.update",
        ]
    );
    assert!(
        rows[..2].iter().all(|r| r.user.is_none()),
        "the program's own"
    );
    for row in &rows[2..] {
        assert_eq!(row.user.as_deref(), Some("admin"), "{row:?}");
        assert!(row.token.is_some(), "{row:?}");
    }
    assert_eq!(rows[2].target_uuid, Some(runner.uuid.to_string()));
    assert_eq!(rows[3].changes["name"], "Audited II");
    assert!(rows[3].changes.get("slug").is_none(), "only what changed");
    assert!(rows[11].changes["archived"].is_string());

    // Filtered by runner (by its slug, or its UUID), and by time.
    let about = store.audit(None, Some("audited".into())).await;
    assert_eq!(about.unwrap().len(), 7);
    let by_uuid = store.audit(None, Some(runner.uuid.to_string())).await;
    assert_eq!(by_uuid.unwrap().len(), 7);
    let later = store.audit(Some(rows[6].time), None).await;
    assert_eq!(later.unwrap().len(), 6);

    // No secret anywhere in the file, the audit trail included.
    let bytes = server.database_bytes();
    for secret in &secrets {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "a secret is in the database file");
    }
}
