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
    let bytes = server.database_bytes().await;
    for secret in &secrets {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "a secret is in the database file");
    }
}

/// One admin write of the random sequences below. Targets are named by the
/// slugs their names give (`alpha`, `beta`, `gamma`), so that some exist,
/// some are archived or gone, and some never were.
#[derive(Clone, Debug)]
enum Op {
    CreateRunner(usize),
    PatchRunner {
        runner: usize,
        name: Option<usize>,
        archived: Option<bool>,
    },
    RotateKey(usize),
    CreateSpec {
        name: usize,
        fallback: bool,
    },
    PatchSpec {
        spec: usize,
        name: Option<usize>,
        archived: Option<bool>,
        fallback: Option<bool>,
    },
    AddSpec(usize, usize),
    RemoveSpec(usize, usize),
    DeleteSpec(usize),
    /// `token create --user NAME [--admin]`: may create or promote a user.
    Token {
        user: usize,
        admin: bool,
    },
}

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

fn ops() -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
    use proptest::prelude::*;
    let n = || 0..NAMES.len();
    let op = prop_oneof![
        n().prop_map(Op::CreateRunner),
        (
            n(),
            proptest::option::of(n()),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(runner, name, archived)| Op::PatchRunner {
                runner,
                name,
                archived
            }),
        n().prop_map(Op::RotateKey),
        (n(), any::<bool>()).prop_map(|(name, fallback)| Op::CreateSpec { name, fallback }),
        (
            n(),
            proptest::option::of(n()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(spec, name, archived, fallback)| Op::PatchSpec {
                spec,
                name,
                archived,
                fallback
            }),
        (n(), n()).prop_map(|(r, s)| Op::AddSpec(r, s)),
        (n(), n()).prop_map(|(r, s)| Op::RemoveSpec(r, s)),
        n().prop_map(Op::DeleteSpec),
        (0..2usize, any::<bool>()).prop_map(|(user, admin)| Op::Token { user, admin }),
    ];
    proptest::collection::vec(op, 1..14)
}

/// Every row of every table an admin write can change (all but the audit
/// trail and derived tables: counts, search indexes), by table and row id,
/// with the UUID its audit row names as target.
type Snapshot = std::collections::BTreeMap<(String, i64), (Option<String>, String)>;

async fn snapshot(server: &TestServer) -> (Snapshot, i64) {
    let tables = [
        ("users", "uuid"),
        ("api_tokens", "uuid"),
        ("signing_key", "NULL"),
        ("runners", "uuid"),
        ("specs", "uuid"),
        // Adding or removing a spec is recorded on the runner.
        (
            "runner_specs",
            "(SELECT r.uuid FROM runners r WHERE r.id = runner_id)",
        ),
    ];
    let mut rows = Snapshot::new();
    for (table, target) in tables {
        // The whole row as one text, in the engine's own dialect.
        let sql = if server.on_postgres() {
            format!("SELECT t.id, {target}, row_to_json(t) FROM {table} t")
        } else {
            let columns = server
                .sql_rows(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .await;
            let quoted: Vec<String> = columns
                .iter()
                .map(|c| format!("quote({})", c[0].as_deref().unwrap()))
                .collect();
            let quoted = quoted.join(", ");
            format!("SELECT rowid, {target}, json_array({quoted}) FROM {table}")
        };
        for row in server.sql_rows(&sql).await {
            let id = row[0].as_deref().unwrap().parse().unwrap();
            let whole = row[2].clone().unwrap();
            rows.insert((table.to_owned(), id), (row[1].clone(), whole));
        }
    }
    let last = server
        .sql_rows("SELECT coalesce(max(id), 0) FROM audit")
        .await;
    (rows, last[0][0].as_deref().unwrap().parse().unwrap())
}

/// The targets of the audit rows after `after`.
async fn audited_since(server: &TestServer, after: i64) -> Vec<Option<String>> {
    let sql = format!("SELECT target_uuid FROM audit WHERE id > {after} ORDER BY id");
    let rows = server.sql_rows(&sql).await;
    rows.into_iter().map(|mut row| row.remove(0)).collect()
}

async fn apply(server: &TestServer, http: &reqwest::Client, op: &Op) -> u16 {
    use serde_json::{Value, json};
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{}{path}", server.url))
            .bearer_auth(&server.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let patch = |name: &Option<usize>, archived: &Option<bool>| {
        let mut body = json!({});
        if let Some(name) = name {
            body["name"] = json!(NAMES[*name]);
        }
        if let Some(archived) = archived {
            body["archived"] = json!(archived);
        }
        body
    };
    use reqwest::Method;
    match op {
        Op::CreateRunner(name) => {
            let body = json!({ "name": NAMES[*name] });
            send(Method::POST, "/v0/runners".into(), Some(body)).await
        }
        Op::PatchRunner {
            runner,
            name,
            archived,
        } => {
            let path = format!("/v0/runners/{}", NAMES[*runner]);
            send(Method::PATCH, path, Some(patch(name, archived))).await
        }
        Op::RotateKey(runner) => {
            let path = format!("/v0/runners/{}/key", NAMES[*runner]);
            send(Method::POST, path, None).await
        }
        Op::CreateSpec { name, fallback } => {
            let mut body = serde_json::to_value(new_spec(NAMES[*name])).unwrap();
            body["fallback"] = json!(fallback);
            send(Method::POST, "/v0/specs".into(), Some(body)).await
        }
        Op::PatchSpec {
            spec,
            name,
            archived,
            fallback,
        } => {
            let mut body = patch(name, archived);
            if let Some(fallback) = fallback {
                body["fallback"] = json!(fallback);
            }
            let path = format!("/v0/specs/{}", NAMES[*spec]);
            send(Method::PATCH, path, Some(body)).await
        }
        Op::AddSpec(runner, spec) => {
            let path = format!("/v0/runners/{}/specs", NAMES[*runner]);
            let body = json!({ "spec": NAMES[*spec] });
            send(Method::POST, path, Some(body)).await
        }
        Op::RemoveSpec(runner, spec) => {
            let path = format!("/v0/runners/{}/specs/{}", NAMES[*runner], NAMES[*spec]);
            send(Method::DELETE, path, None).await
        }
        Op::DeleteSpec(spec) => {
            let path = format!("/v0/specs/{}", NAMES[*spec]);
            send(Method::DELETE, path, None).await
        }
        Op::Token { user, admin } => {
            let user = ["bob", "carol"][*user];
            server
                .api_token(user, *admin, chrono::Duration::days(1))
                .await;
            201
        }
    }
}

/// Around each of a random sequence of admin writes (no-ops, rejected ones,
/// archive and fallback in every combination, promotions), the database
/// changed exactly when audit rows were added, and those rows name every
/// item whose rows changed.
#[test]
fn every_changed_row_is_covered_by_an_audit_row_and_a_no_op_records_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 24,
        ..Default::default()
    });
    runner
        .run(&ops(), |ops| {
            runtime.block_on(async {
                let server = TestServer::start().await;
                let http = reqwest::Client::new();
                for op in &ops {
                    let (before, last_audit) = snapshot(&server).await;
                    let status = apply(&server, &http, op).await;
                    proptest::prop_assert!(status < 500, "{op:?}: {status}");
                    let (after, _) = snapshot(&server).await;
                    let audited = audited_since(&server, last_audit).await;
                    let changed: Vec<(&(String, i64), Option<String>)> = before
                        .keys()
                        .chain(after.keys())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .filter(|key| before.get(*key) != after.get(*key))
                        .map(|key| {
                            let (target, _) = after.get(key).or(before.get(key)).unwrap();
                            (key, target.clone())
                        })
                        .collect();
                    proptest::prop_assert_eq!(
                        changed.is_empty(),
                        audited.is_empty(),
                        "{:?} ({}): changed {:?}, audited {:?}",
                        op,
                        status,
                        changed,
                        audited
                    );
                    for (row, target) in &changed {
                        proptest::prop_assert!(
                            audited.contains(target),
                            "{:?} ({}): row {:?} of {:?} changed with no audit row; audited {:?}",
                            op,
                            status,
                            row,
                            target,
                            audited
                        );
                    }
                }
                Ok(())
            })
        })
        .unwrap();
}

/// `token create --user bob --admin` on an existing non-admin records the
/// promotion itself; a second token for the same admin records only the
/// token.
#[tokio::test]
async fn a_promotion_to_admin_is_recorded_as_such() {
    let server = TestServer::start().await;
    let day = chrono::Duration::days(1);
    let (first, _) = server.api_token("bob", false, day).await;
    let (second, _) = server.api_token("bob", true, day).await;
    let (third, _) = server.api_token("bob", true, day).await;
    let rows = server.store().audit(None, None).await.unwrap();
    let bob: Vec<(&str, serde_json::Value)> = rows
        .iter()
        .skip(2) // the bootstrap admin and its token
        .map(|r| (r.action.as_str(), r.changes.clone()))
        .collect();
    assert_eq!(
        bob,
        [
            (
                "user.create",
                serde_json::json!({"name": "bob", "admin": false})
            ),
            ("token.create", rows[3].changes.clone()),
            ("user.promote", serde_json::json!({"admin": true})),
            ("token.create", rows[5].changes.clone()),
            ("token.create", rows[6].changes.clone()),
        ]
    );
    let tokens: Vec<Option<String>> = [3, 5, 6].map(|i| rows[i].target_uuid.clone()).into();
    let issued: Vec<Option<String>> = [first, second, third].map(|t| Some(t.to_string())).into();
    assert_eq!(tokens, issued);
    assert_eq!(rows[4].target_slug.as_deref(), Some("bob"));
}
