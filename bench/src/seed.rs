//! The registry the benchmark measures: seeded through the store (one
//! transaction, no HTTP), and read back as the wire's runners.

use std::path::Path;
use std::time::Instant;

use runners_sdk::{MAX_PER_PAGE, walk_pages};
use runners_server::Store;
use runners_server::auth;
use runners_server::store::Actor;
use runners_server::types::JsonRunner;
use runners_server::validate::{Direction, ListQuery, Sort};

use crate::HEARTBEAT_RUNNERS;

/// Every runner of the store, oldest first.
pub(crate) async fn all_runners(store: &Store) -> anyhow::Result<Vec<JsonRunner>> {
    let (runners, _) = walk_pages(1, MAX_PER_PAGE, |page, per_page| async move {
        let query = ListQuery {
            sort: Sort::Created,
            direction: Direction::Asc,
            per_page,
            page,
            name: None,
            search: None,
            archived: true,
            status: None,
        };
        let (batch, total) = store.list_runners(query).await?;
        anyhow::Ok((
            batch.into_iter().map(JsonRunner::from).collect(),
            Some(total),
        ))
    })
    .await?;
    Ok(runners)
}

pub(crate) struct Seeded {
    pub(crate) admin: String,
    pub(crate) runner_tokens: Vec<String>,
    pub(crate) runners: Vec<JsonRunner>,
}

pub(crate) fn slug(i: usize) -> String {
    format!("bench-runner-{i:06}")
}

/// Seeds `db` (a SQLite file or a PostgreSQL URL) with `size` runners
/// through the store, and an admin token.
pub(crate) async fn seed(db: &Path, size: usize) -> anyhow::Result<Seeded> {
    let store = Store::open_db(db, runners_server::store::WRITE_QUEUE_DEFAULT).await?;
    let ttl = chrono::Duration::days(1);
    let (_, admin) = auth::issue_api_token(&store, "bench", true, ttl, &Actor::program()).await?;
    let runner_tokens: Vec<String> = (0..HEARTBEAT_RUNNERS)
        .map(|_| auth::new_runner_key())
        .collect();
    let started = Instant::now();
    let rows = (0..size)
        .map(|i| {
            let hash = match runner_tokens.get(i) {
                Some(token) => auth::hash_runner_key(token),
                None => auth::hash_runner_key(&auth::new_runner_key()),
            };
            (format!("bench runner {i:06}"), slug(i), hash)
        })
        .collect();
    store.import_runners(rows).await?;
    let seeded_in = started.elapsed();
    let runners = all_runners(&store).await?;
    println!(
        "\n== {size} runners: seeded through the store in {:.2} s ({:.0} runners/s)",
        seeded_in.as_secs_f64(),
        size as f64 / seeded_in.as_secs_f64()
    );
    Ok(Seeded {
        admin,
        runner_tokens,
        runners,
    })
}
