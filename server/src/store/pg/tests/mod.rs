//! The PostgreSQL engine against a real PostgreSQL (`RUNNERS_TEST_PG`, a
//! URL to a database whose user may create databases: `.ci/postgres --
//! cargo test …` gives one). Each test makes a fresh database and drops it.
//! Without the variable each test says, loudly, that it was skipped.
//!
//! The store's results are compared with the SQLite store's for the same
//! calls: same pages, same order, same totals, same errors.
//!
//! One file a topic: migrations.rs (the schema's versions), runners.rs
//! (lists, slugs, keys, updates, import), tokens.rs (signing key, API
//! tokens), specs.rs (specs, the fallback, a runner's specs), claims.rs
//! (the queue's order, each job claimed once), jobs.rs (a job's life),
//! replicas.rs (events, leases, channels), connection.rs (TLS, a frozen or
//! down database) with relay.rs (the relay that freezes or cuts it),
//! projects.rs (projects and keys), runs.rs (runs and reports), submit.rs
//! (their races, and `migrate` copying them), registry_keys.rs (the keys
//! that sign registry tokens). This file holds what they share.

use tokio_postgres::NoTls;
use tokio_postgres::types::{FromSqlOwned, ToSql};
use uuid::Uuid;

use super::PgStore;
use crate::store::model::{
    Actor, KeyedRunner, NewJob, NewRunner, NewSpec, RunnerChannel, RunnerKeyHash, RunnerRef,
    SpecRef, SpecRow,
};
use crate::store::operations::{ClaimOps, RunnerOps, RunnerSpecOps, SpecOps};
use crate::store::{Store, StoreError};
use crate::validate::{Direction, ListQuery, Ref, Sort};

/// The same call on both engines, each awaited: (SQLite's answer,
/// PostgreSQL's). The arguments are evaluated once for each.
macro_rules! both {
    ($lite:expr, $pg:expr, $method:ident $(::<$t:ty>)? ($($arg:expr),* $(,)?)) => {
        (
            $lite.$method$(::<$t>)?($($arg),*).await,
            $pg.$method$(::<$t>)?($($arg),*).await,
        )
    };
}

/// Both engines' answers to one call, each unwrapped.
fn unwrap_both<A, B>((a, b): (Result<A, StoreError>, Result<B, StoreError>)) -> (A, B) {
    (a.unwrap(), b.unwrap())
}

mod claims;
mod connection;
mod jobs;
mod migrations;
mod projects;
mod registry_keys;
mod relay;
mod replicas;
mod runners;
mod runs;
mod specs;
mod submit;
mod tokens;

/// A fresh, empty database on the test server, or `None` (having said so)
/// without `RUNNERS_TEST_PG`.
struct TestDb {
    admin: tokio_postgres::Config,
    name: String,
    config: tokio_postgres::Config,
}

impl TestDb {
    async fn new(test: &str) -> Option<Self> {
        let Ok(url) = std::env::var("RUNNERS_TEST_PG") else {
            eprintln!(
                "SKIPPED: set RUNNERS_TEST_PG to run {test} against PostgreSQL \
                 (`.ci/postgres -- cargo test -p runners-server --lib store::pg`)"
            );
            return None;
        };
        let admin: tokio_postgres::Config = url.parse().expect("RUNNERS_TEST_PG is a URL");
        let name = format!("t_{}", Uuid::new_v4().simple());
        let client = connect(&admin).await;
        // A locale whose order is not bytes' (ICU's en-US: "elan" < "Élan" <
        // "zebra" < "Zebra"), so that the tests see the schema keep SQLite's
        // order by itself; plain where PostgreSQL has no ICU.
        let icu = format!(
            "CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' \
             TEMPLATE template0"
        );
        if client.batch_execute(&icu).await.is_err() {
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        }
        let mut config = admin.clone();
        config.dbname(&name);
        Some(Self {
            admin,
            name,
            config,
        })
    }

    /// A store on this database (a pool of its own: a replica).
    async fn store(&self) -> PgStore {
        PgStore::open_config(self.config.clone()).await.unwrap()
    }

    /// `n` stores on this database, as `n` replicas.
    async fn stores(&self, n: usize) -> Vec<PgStore> {
        let mut stores = Vec::new();
        for _ in 0..n {
            stores.push(self.store().await);
        }
        stores
    }

    async fn drop(self) {
        let client = connect(&self.admin).await;
        client
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("runners.db")).unwrap();
    (dir, store)
}

/// Runs the test `name` on a fresh database, then drops the database (the
/// test's stores and clients are dropped by then: `test` has returned);
/// without `RUNNERS_TEST_PG`, says that it was skipped.
async fn on_db(name: &str, test: impl AsyncFnOnce(&TestDb)) {
    let Some(db) = TestDb::new(name).await else {
        return;
    };
    test(&db).await;
    db.drop().await;
}

/// Runs the test `name`, which compares the engines, on a fresh database
/// with a store on it and a fresh SQLite store, as [`on_db`].
async fn on_engines(name: &str, test: impl AsyncFnOnce(&TestDb, PgStore, Store)) {
    on_db(name, async |db| {
        let (_dir, lite) = sqlite();
        test(db, db.store().await, lite).await;
    })
    .await;
}

/// The rows `sql` selects, each read by `read`, in their order.
async fn rows<T>(
    client: &tokio_postgres::Client,
    sql: &str,
    read: impl Fn(&tokio_postgres::Row) -> T,
) -> Vec<T> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(read)
        .collect()
}

/// The first column of the rows `sql` selects, in their order.
async fn column<T: FromSqlOwned>(client: &tokio_postgres::Client, sql: &str) -> Vec<T> {
    rows(client, sql, |r| r.get(0)).await
}

/// The one value the one row of `sql` holds (a count, an id).
async fn one<T: FromSqlOwned>(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> T {
    client.query_one(sql, params).await.unwrap().get(0)
}

/// The actions of the audit trails in the order written: SQLite's, and
/// those of `db` (PostgreSQL's).
async fn audit_actions(lite: &Store, db: &TestDb) -> (Vec<String>, Vec<String>) {
    let lite_actions = lite
        .audit(None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    let client = connect(&db.config).await;
    let pg_actions = column(&client, "SELECT action FROM audit ORDER BY id").await;
    (lite_actions, pg_actions)
}

/// A runner by slug.
fn runner(slug: &str) -> RunnerRef {
    RunnerRef::from(Ref::Slug(slug.to_owned()))
}

/// A spec by slug.
fn spec(slug: &str) -> SpecRef {
    SpecRef::from(Ref::Slug(slug.to_owned()))
}

fn key(n: u8) -> RunnerKeyHash {
    RunnerKeyHash([n; 32])
}

fn new_runner(name: &str, slug: Option<&str>) -> NewRunner {
    NewRunner {
        name: name.to_owned().try_into().unwrap(),
        slug: slug.map(|s| s.to_owned().try_into().unwrap()),
    }
}

fn query(
    sort: Sort,
    direction: Direction,
    per_page: u32,
    page: u32,
    name: Option<&str>,
    search: Option<&str>,
) -> ListQuery {
    ListQuery {
        sort,
        direction,
        per_page,
        page,
        name: name.map(str::to_owned),
        search: search.map(str::to_lowercase),
        archived: false,
        status: None,
    }
}

fn new_spec(name: &str, slug: Option<&str>, fallback: bool) -> NewSpec {
    NewSpec {
        name: name.to_owned().try_into().unwrap(),
        slug: slug.map(|s| s.to_owned().try_into().unwrap()),
        architecture: crate::store::model::Architecture::X86_64,
        os: crate::store::model::OperatingSystem::Linux,
        cpu: 4u32.try_into().unwrap(),
        memory: (8u64 << 30).try_into().unwrap(),
        disk: (9_223_372_036_854_775_807u64).try_into().unwrap(),
        network: fallback,
        sandbox: fallback.then_some(crate::store::model::Sandbox::Firecracker),
        fallback,
    }
}

/// Creates the same specs (name, fallback; slugs made from the names) and
/// runners (name, slug, key, the slugs of its specs) on both engines, in
/// this order: the specs, then each runner and its specs.
async fn create_alike(
    lite: &Store,
    pg: &PgStore,
    specs: &[(&str, bool)],
    runners: &[(&str, &str, u8, &[&str])],
) {
    let actor = Actor::program();
    for &(name, fallback) in specs {
        unwrap_both(both!(
            lite,
            pg,
            create_spec(new_spec(name, None, fallback), &actor)
        ));
    }
    for &(name, slug, k, specs) in runners {
        unwrap_both(both!(
            lite,
            pg,
            create_runner((new_runner(name, Some(slug)), key(k)), &actor)
        ));
        for s in specs {
            unwrap_both(both!(
                lite,
                pg,
                add_runner_spec((runner(slug), spec(s)), &actor)
            ));
        }
    }
}

/// Runner `k`'s row found by its key on each engine (SQLite's, then
/// PostgreSQL's), with its channel recorded open since [`ch`].
async fn with_channels(lite: &Store, pg: &PgStore, k: u8) -> (KeyedRunner, KeyedRunner) {
    let (l, p) = unwrap_both(both!(lite, pg, runner_by_key_hash(key(k))));
    let (l, p) = (l.unwrap(), p.unwrap());
    lite.set_channel(
        RunnerChannel {
            runner: l.id,
            since: ch(),
        },
        true,
    )
    .await
    .unwrap();
    pg.set_channel(
        RunnerChannel {
            runner: p.id,
            since: ch(),
        },
        true,
    )
    .await
    .unwrap();
    (l, p)
}

/// What of a spec is the same on both engines.
fn spec_shape(s: &SpecRow) -> String {
    format!(
        "{} {} {:?} {:?} {} {} {} {} {:?} fallback={} archived={}",
        s.name,
        s.slug,
        s.architecture,
        s.os,
        s.cpu,
        s.memory,
        s.disk,
        s.network,
        s.sandbox,
        s.fallback.is_some(),
        s.archived.is_some()
    )
}

fn new_job(on: Option<&str>, priority: i32, n: u64) -> NewJob {
    NewJob {
        spec: on.map(spec),
        config: serde_json::json!({"n": n, "cmd": ["bench"], "env": {"A": "1"}}),
        timeout: 3600,
        priority,
    }
}

/// A signing secret's bytes, to compare.
fn secret_bytes(s: &crate::store::SigningSecret) -> Vec<u8> {
    s.expose().to_vec()
}

/// When the tests' runners' channels opened: a claim is made for a channel
/// that is the runner's recorded one.
fn ch() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}
