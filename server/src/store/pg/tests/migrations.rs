//! The schema's versions: racing migrations, a newer database refused.

use super::{column, connect, on_db, secret_bytes};
use crate::store::operations::TokenOps;
use crate::store::pg::{PgStore, schema};

/// Two replicas (here: eight tasks, each with its own connection) migrating
/// one new database at once all succeed; the schema is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_migrations_all_succeed() {
    on_db("racing_migrations_all_succeed", async |db| {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let config = db.config.clone();
                tokio::spawn(async move {
                    let mut client = connect(&config).await;
                    schema::migrate(&mut client).await
                })
            })
            .collect();
        let mut found = Vec::new();
        for task in tasks {
            found.push(task.await.unwrap().expect("every migration succeeds"));
        }
        found.sort();
        // One found an empty database; every other found it migrated.
        assert_eq!(found[0], 0, "{found:?}");
        assert!(
            found[1..].iter().all(|&v| v == schema::latest()),
            "{found:?}"
        );
        let client = connect(&db.config).await;
        let versions: Vec<i32> = column(
            &client,
            "SELECT version FROM runners_schema ORDER BY version",
        )
        .await;
        // Each version applied once.
        let all: Vec<i32> = schema::MIGRATIONS.iter().map(|&(v, _)| v).collect();
        assert_eq!(versions, all);
        // And stores opening at once (migrate + signing key) agree on one key.
        let stores =
            futures::future::join_all((0..4).map(|_| PgStore::open_config(db.config.clone())))
                .await
                .into_iter()
                .map(|s| s.expect("store opens"))
                .collect::<Vec<_>>();
        let mut secrets = Vec::new();
        for store in &stores {
            secrets.push(secret_bytes(&store.signing_secret().await.unwrap()));
        }
        assert!(secrets.windows(2).all(|w| w[0] == w[1]));
        drop(stores);
    })
    .await;
}

/// A database from a newer server is refused, untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_is_refused() {
    on_db("newer_schema_is_refused", async |db| {
        let mut client = connect(&db.config).await;
        schema::migrate(&mut client).await.unwrap();
        client
            .execute(
                "INSERT INTO runners_schema (version) VALUES ($1)",
                &[&(schema::latest() + 1)],
            )
            .await
            .unwrap();
        let e = schema::migrate(&mut client).await.unwrap_err().to_string();
        assert!(e.contains("newer than this server understands"), "{e}");
    })
    .await;
}
