//! The PostgreSQL engine against a real PostgreSQL (`RUNNERS_TEST_PG`, a
//! URL to a database whose user may create databases: `.ci/postgres --
//! cargo test …` gives one). Each test makes a fresh database and drops it.
//! Without the variable each test says, loudly, that it was skipped.
//!
//! The store's results are compared with the SQLite store's for the same
//! calls: same pages, same order, same totals, same errors.

use chrono::Duration;
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::super::model::NewApiToken;
use super::super::model::{
    Actor, JobRow, NewJob, NewRunner, NewSpec, RunnerChanges, RunnerId, RunnerKeyHash, RunnerRef,
    RunnerRow, Runners, SpecChanges, SpecRef, SpecRow, Specs,
};
use super::super::operations::{
    AuditOps, ClaimOps, ItemOps, JobOps, RunnerOps, RunnerSpecOps, SpecOps, TokenOps,
};
use super::super::rules::Claimant;
use super::super::{Store, StoreError};
use super::{PgStore, schema};
use crate::validate::{Direction, ListQuery, Ref, Sort};

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

/// Two replicas (here: eight tasks, each with its own connection) migrating
/// one new database at once all succeed; the schema is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_migrations_all_succeed() {
    let Some(db) = TestDb::new("racing_migrations_all_succeed").await else {
        return;
    };
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
    let versions: Vec<i32> = client
        .query("SELECT version FROM runners_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Each version applied once.
    let all: Vec<i32> = schema::MIGRATIONS.iter().map(|&(v, _)| v).collect();
    assert_eq!(versions, all);
    // And stores opening at once (migrate + signing key) agree on one key.
    let stores = futures::future::join_all((0..4).map(|_| PgStore::open_config(db.config.clone())))
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
    drop(client);
    db.drop().await;
}

/// A database from a newer server is refused, untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_is_refused() {
    let Some(db) = TestDb::new("newer_schema_is_refused").await else {
        return;
    };
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
    drop(client);
    db.drop().await;
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

/// What of a runner is the same on both engines (its UUID and times are
/// not).
fn shape(r: &RunnerRow) -> (String, String, usize, bool, String) {
    (
        r.name.clone(),
        r.slug.clone(),
        r.specs.len(),
        r.archived.is_some(),
        format!("{:?}", r.status),
    )
}

/// Runners created alike on SQLite and PostgreSQL list alike: every sort,
/// direction, page, name filter and search (wildcards taken literally,
/// case folded, non-ASCII), with the same totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_match_sqlite() {
    let Some(db) = TestDb::new("runners_match_sqlite").await else {
        return;
    };
    let pg = PgStore::open_config(db.config.clone()).await.unwrap();
    let (_dir, lite) = sqlite();
    let actor = Actor::program();
    // Names whose byte order differs from a locale's (case, accents,
    // punctuation), duplicates with explicit slugs, wildcards.
    let runners: &[(&str, Option<&str>)] = &[
        ("bare metal 1", None),
        ("Bare metal 2", None),
        ("Zebra", None),
        ("zebra", Some("zebra-lower")),
        ("Élan", None),
        ("elan", Some("elan-plain")),
        ("50% off", None),
        ("a_b", None),
        ("ab", None),
        ("_lead", Some("lead")),
        ("Ünïcödé ÅÄÖ", None),
        ("dup", Some("dup-b")),
        ("dup", Some("dup-a")),
        ("dup", Some("dup-c")),
        ("x86 box", None),
        ("BOX x86", None),
    ];
    for (i, (name, slug)) in runners.iter().enumerate() {
        let k = key(u8::try_from(i).unwrap());
        let a = lite
            .create_runner(new_runner(name, *slug), k, &actor)
            .await
            .unwrap();
        let b = pg
            .create_runner(new_runner(name, *slug), k, &actor)
            .await
            .unwrap();
        assert_eq!(shape(&a), shape(&b), "{name}");
        assert_eq!(b.specs, Vec::<Uuid>::new());
        // Found again by slug and by UUID, unchanged.
        let by_slug = pg
            .item(&RunnerRef::from(Ref::Slug(b.slug.clone())))
            .await
            .unwrap();
        assert_eq!(by_slug, b);
        assert_eq!(pg.item(&RunnerRef::from(b.uuid)).await.unwrap(), b);
    }

    // A given slug that is taken: 409 on both.
    for result in [
        lite.create_runner(new_runner("again", Some("dup-a")), key(200), &actor)
            .await,
        pg.create_runner(new_runner("again", Some("dup-a")), key(200), &actor)
            .await,
    ] {
        assert!(
            matches!(&result, Err(StoreError::SlugTaken { slug, .. }) if slug == "dup-a"),
            "{result:?}"
        );
    }
    // A generated slug that is taken gets a suffix on both.
    let a = lite
        .create_runner(new_runner("Zebra", None), key(201), &actor)
        .await
        .unwrap();
    let b = pg
        .create_runner(new_runner("Zebra", None), key(201), &actor)
        .await
        .unwrap();
    assert!(a.slug.starts_with("zebra-") && b.slug.starts_with("zebra-"));
    assert_ne!(b.slug, "zebra");
    // Its random suffix differs between the engines: out of the comparison.
    let odd = (a.slug.clone(), b.slug.clone());

    let searches = [
        None,
        Some("bare"),
        Some("BARE"),
        Some("%"),
        Some("_"),
        Some("a_b"),
        Some("50%"),
        Some("é"),
        Some("élan"),
        Some("ÅÄÖ"),
        Some("x86"),
        Some("dup-"),
        Some("zz"),
        // One char: a scan on both (no letter of a UUID's hex: their UUIDs
        // differ).
        Some("n"),
    ];
    let mut compared = 0;
    for sort in [Sort::Name, Sort::Created] {
        for direction in [Direction::Asc, Direction::Desc] {
            for search in searches {
                for name in [None, Some("dup"), Some("Zebra")] {
                    for (per_page, page) in
                        [(8, 1), (3, 1), (3, 2), (3, 4), (5, 3), (255, 1), (8, 9)]
                    {
                        let q = query(sort, direction, per_page, page, name, search);
                        let (lite_page, lite_total) = lite.list_runners(q.clone()).await.unwrap();
                        let (pg_page, pg_total) = pg.list_runners(q.clone()).await.unwrap();
                        let strip = |rows: &[RunnerRow], own: &str| {
                            rows.iter()
                                .map(|r| {
                                    let mut s = shape(r);
                                    if s.1 == own {
                                        s.1 = "zebra-<random>".into();
                                    }
                                    s
                                })
                                .collect::<Vec<_>>()
                        };
                        assert_eq!(lite_total, pg_total, "{q:?}");
                        assert_eq!(strip(&lite_page, &odd.0), strip(&pg_page, &odd.1), "{q:?}");
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 1000);

    // Keys: found by hash; after a rotation only the new one works.
    for (i, (_, _)) in runners.iter().enumerate() {
        let k = key(u8::try_from(i).unwrap());
        let found = pg.runner_by_key_hash(k).await.unwrap().expect("key works");
        assert!(!found.archived);
        let lite_found = lite.runner_by_key_hash(k).await.unwrap().unwrap();
        assert_eq!(found.slug, lite_found.slug);
    }
    let r = RunnerRef::from(Ref::Slug("dup-a".into()));
    let uuid = pg
        .rotate_runner_key(r.clone(), key(250), &actor)
        .await
        .unwrap();
    assert!(pg.runner_by_key_hash(key(12)).await.unwrap().is_none());
    assert_eq!(
        pg.runner_by_key_hash(key(250)).await.unwrap().unwrap().uuid,
        uuid
    );
    let missing = pg
        .rotate_runner_key(
            RunnerRef::from(Ref::Slug("nobody".into())),
            key(251),
            &actor,
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    // The audit trail has a row per create and rotation, in the writes'
    // transactions (a refused create left none).
    let client = connect(&db.config).await;
    let rows: Vec<(String, i64)> = client
        .query(
            "SELECT action, count(*) FROM audit GROUP BY action ORDER BY action",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let created = i64::try_from(runners.len() + 1).unwrap();
    assert_eq!(
        rows,
        vec![
            ("runner.create".to_owned(), created),
            ("runner.key.rotate".to_owned(), 1)
        ]
    );
    drop((pg, client));
    db.drop().await;
}

/// Racing creates of one slug across connections: exactly one wins, the
/// others are told the slug is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_of_one_slug() {
    let Some(db) = TestDb::new("racing_creates_of_one_slug").await else {
        return;
    };
    // Separate stores: separate pools, as separate replicas.
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(PgStore::open_config(db.config.clone()).await.unwrap());
    }
    let results = futures::future::join_all((0..32u8).map(|i| {
        let store = stores[usize::from(i) % stores.len()].clone();
        async move {
            store
                .create_runner(
                    new_runner("Racer", Some("racer")),
                    key(i),
                    &Actor::program(),
                )
                .await
        }
    }))
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::SlugTaken { .. })))
        .count();
    assert_eq!((won, taken), (1, 31), "{results:?}");
    // Generated slugs racing: every create succeeds, each slug once.
    let results = futures::future::join_all((0..32u8).map(|i| {
        let store = stores[usize::from(i) % stores.len()].clone();
        async move {
            store
                .create_runner(new_runner("Racer", None), key(100 + i), &Actor::program())
                .await
                .unwrap()
                .slug
        }
    }))
    .await;
    let mut slugs = results.clone();
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 32);
    drop(stores);
    db.drop().await;
}

fn sign() -> super::super::Sign {
    Box::new(|secret: &[u8], user: Uuid, jti: Uuid| format!("{}.{user}.{jti}", secret.len()))
}

/// The signing key, users and API tokens behave as on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_match_sqlite() {
    let Some(db) = TestDb::new("tokens_match_sqlite").await else {
        return;
    };
    let pg = PgStore::open_config(db.config.clone()).await.unwrap();
    let (_dir, lite) = sqlite();
    let actor = Actor::program();
    let issued = super::super::now();
    let expires = issued + Duration::days(30);

    assert!(!pg.has_admin().await.unwrap());
    assert_eq!(pg.signing_secret().await.unwrap().generation, 1);
    assert_eq!(
        secret_bytes(&pg.signing_secret().await.unwrap()).len(),
        super::super::SIGNING_KEY_BYTES
    );

    let mut jtis = Vec::new();
    let mut lite_jtis = Vec::new();
    for (user, admin) in [("admin", true), ("ci", false), ("ci", true), ("ops", false)] {
        let (jti, token) = pg
            .issue_api_token(
                NewApiToken {
                    user_name: user.to_owned(),
                    admin,
                    issued,
                    expires,
                },
                &actor,
                sign(),
            )
            .await
            .unwrap();
        assert!(token.ends_with(&jti.to_string()));
        let (lite_jti, _) = lite
            .issue_api_token(
                NewApiToken {
                    user_name: user.to_owned(),
                    admin,
                    issued,
                    expires,
                },
                &actor,
                sign(),
            )
            .await
            .unwrap();
        lite_jtis.push(lite_jti);
        let p = pg.token_principal(jti).await.unwrap().unwrap();
        assert_eq!((p.user_name.as_str(), p.revoked), (user, false));
        jtis.push(jti);
    }
    assert!(pg.has_admin().await.unwrap());
    // `ci` was promoted by its second token.
    let principal = pg.token_principal(jtis[1]).await.unwrap().unwrap();
    assert!(principal.admin);
    assert!(pg.token_principal(Uuid::new_v4()).await.unwrap().is_none());

    // Twice: the second is a no-op, recorded as on SQLite.
    for _ in 0..2 {
        pg.revoke_api_token(jtis[3], &actor).await.unwrap();
        lite.revoke_api_token(lite_jtis[3], &actor).await.unwrap();
    }
    let missing = pg.revoke_api_token(Uuid::new_v4(), &actor).await;
    assert!(matches!(missing, Err(StoreError::ApiTokenNotFound(_))));
    assert!(pg.token_principal(jtis[3]).await.unwrap().unwrap().revoked);

    let listed = pg.list_api_tokens().await.unwrap();
    assert_eq!(listed.iter().map(|t| t.uuid).collect::<Vec<_>>(), jtis);
    let lite_listed = lite.list_api_tokens().await.unwrap();
    let view = |t: &super::super::ApiTokenRow| (t.user_name.clone(), t.admin, t.created, t.expires);
    assert_eq!(
        listed.iter().map(view).collect::<Vec<_>>(),
        lite_listed.iter().map(view).collect::<Vec<_>>()
    );

    // Rotation: a new secret, generation 2, every live token revoked.
    let before = pg.signing_secret().await.unwrap();
    assert_eq!(pg.rotate_signing_key(&actor).await.unwrap(), 3);
    assert_eq!(lite.rotate_signing_key(&actor).await.unwrap(), 3);
    let after = pg.signing_secret().await.unwrap();
    assert_eq!(after.generation, 2);
    assert_ne!(secret_bytes(&after), secret_bytes(&before));
    for jti in &jtis {
        assert!(pg.token_principal(*jti).await.unwrap().unwrap().revoked);
    }

    // The audit trail holds the same actions in the same order.
    let lite_actions: Vec<String> = lite
        .audit(None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    let client = connect(&db.config).await;
    let pg_actions: Vec<String> = client
        .query("SELECT action FROM audit ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(pg_actions, lite_actions);
    drop((pg, client));
    db.drop().await;
}

/// A rotation through one replica reaches another replica's listener (a
/// NOTIFY in the write's transaction, a LISTEN connection per process),
/// and a rolled-back write sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_other_replicas() {
    let Some(db) = TestDb::new("events_reach_other_replicas").await else {
        return;
    };
    let a = PgStore::open_config(db.config.clone()).await.unwrap();
    let (heard, mut hear) = tokio::sync::mpsc::unbounded_channel();
    let listening = super::events::listen(
        &db.config,
        &super::tls(&mut db.config.clone()).unwrap(),
        std::sync::Arc::new(move |e: super::super::events::Event| {
            let _ = heard.send(e);
        }),
    )
    .await
    .unwrap();
    let actor = Actor::program();
    let runner = a
        .create_runner(new_runner("Far", None), key(1), &actor)
        .await
        .unwrap();
    // Refused (not found): rolled back, nothing sent.
    let _ = a
        .rotate_runner_key(RunnerRef::from(Ref::Slug("nobody".into())), key(3), &actor)
        .await
        .unwrap_err();
    let started = std::time::Instant::now();
    a.rotate_runner_key(RunnerRef::from(runner.uuid), key(2), &actor)
        .await
        .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(1), hear.recv())
        .await
        .expect("heard within 1 s")
        .unwrap();
    assert_eq!(
        event,
        super::super::events::Event::RunnerRevoked {
            runner: runner.uuid
        }
    );
    eprintln!(
        "event heard {:?} after the rotation began",
        started.elapsed()
    );
    assert!(hear.try_recv().is_err(), "one event, once");
    drop((listening, a));
    db.drop().await;
}

fn change(name: Option<&str>, slug: Option<&str>, archived: Option<bool>) -> RunnerChanges {
    RunnerChanges {
        name: name.map(|n| n.to_owned().try_into().unwrap()),
        slug: slug.map(|s| s.to_owned().try_into().unwrap()),
        archived,
    }
}

/// Updates (rename, new slug, archive, archive again, unarchive, a taken
/// slug, no change) and heartbeats give what SQLite gives; the archived
/// filter and its counts agree after each step; the audit trails match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_updates_match_sqlite() {
    let Some(db) = TestDb::new("runner_updates_match_sqlite").await else {
        return;
    };
    let pg = PgStore::open_config(db.config.clone()).await.unwrap();
    let (_dir, lite) = sqlite();
    let actor = Actor::program();
    for (i, slug) in ["one", "two", "three"].iter().enumerate() {
        let k = key(u8::try_from(i).unwrap());
        lite.create_runner(new_runner(slug, Some(slug)), k, &actor)
            .await
            .unwrap();
        pg.create_runner(new_runner(slug, Some(slug)), k, &actor)
            .await
            .unwrap();
    }
    let slug_ref = |s: &str| RunnerRef::from(Ref::Slug(s.to_owned()));
    let steps: Vec<(&str, RunnerChanges)> = vec![
        ("one", change(Some("One renamed"), None, None)),
        ("one", change(None, Some("uno"), None)),
        ("uno", change(None, None, Some(true))),
        ("uno", change(None, None, Some(true))),
        ("two", change(None, None, Some(true))),
        ("uno", change(None, None, Some(false))),
        ("uno", change(None, Some("three"), None)),
        ("three", change(Some("three"), Some("three"), Some(false))),
        ("nobody", change(Some("x"), None, None)),
    ];
    let mut archived_stamp = None;
    for (target, changes) in steps {
        let a = lite
            .update::<Runners>(slug_ref(target), changes.clone(), &actor)
            .await;
        let b = pg.update(slug_ref(target), changes, &actor).await;
        match (&a, &b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(shape(a), shape(b), "{target}");
                assert_eq!(a.archived.is_some(), b.archived.is_some());
                // Archiving an archived runner keeps its first stamp.
                if target == "uno" && b.archived.is_some() {
                    assert!(archived_stamp.is_none_or(|s| s == b.archived.unwrap()));
                    archived_stamp = b.archived;
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{target}"),
            _ => panic!("{target}: SQLite {a:?}, PostgreSQL {b:?}"),
        }
        for archived in [false, true] {
            let mut q = query(Sort::Name, Direction::Asc, 8, 1, None, None);
            q.archived = archived;
            let (lite_page, lite_total) = lite.list_runners(q.clone()).await.unwrap();
            let (pg_page, pg_total) = pg.list_runners(q.clone()).await.unwrap();
            assert_eq!(lite_total, pg_total, "{q:?}");
            assert_eq!(
                lite_page.iter().map(shape).collect::<Vec<_>>(),
                pg_page.iter().map(shape).collect::<Vec<_>>()
            );
        }
    }

    // Heartbeats: with the runner's key while active; not once archived
    // ("two"), nor with a key rotated away.
    let keyed = pg.runner_by_key_hash(key(0)).await.unwrap().unwrap();
    let beat = pg.heartbeat(&keyed).await.unwrap().expect("active runner");
    assert!(beat.last_heartbeat.is_some());
    let archived = pg.runner_by_key_hash(key(1)).await.unwrap().unwrap();
    assert!(archived.archived);
    assert!(pg.heartbeat(&archived).await.unwrap().is_none());
    // ("uno" could not take the slug "three": the third runner kept it.)
    let third = pg.runner_by_key_hash(key(2)).await.unwrap().unwrap();
    assert_eq!(third.slug, "three");
    pg.rotate_runner_key(slug_ref("three"), key(10), &actor)
        .await
        .unwrap();
    lite.rotate_runner_key(slug_ref("three"), key(10), &actor)
        .await
        .unwrap();
    assert!(pg.heartbeat(&third).await.unwrap().is_none());
    // Rotating an archived runner: 409 on both.
    let a = lite
        .rotate_runner_key(slug_ref("two"), key(11), &actor)
        .await;
    let b = pg.rotate_runner_key(slug_ref("two"), key(11), &actor).await;
    assert!(matches!(a, Err(StoreError::RunnerArchived(_))), "{a:?}");
    assert!(matches!(b, Err(StoreError::RunnerArchived(_))), "{b:?}");

    let client = connect(&db.config).await;
    let pg_trail: Vec<(String, serde_json::Value)> = client
        .query(
            "SELECT action, changes FROM audit WHERE action = 'runner.update' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let lite_trail: Vec<(String, serde_json::Value)> = lite
        .audit(None, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "runner.update")
        .map(|r| (r.action, r.changes))
        .collect();
    // Archive stamps differ between the engines: compare the fields named.
    let fields = |trail: &[(String, serde_json::Value)]| {
        trail
            .iter()
            .map(|(_, c)| c.as_object().unwrap().keys().cloned().collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert_eq!(fields(&pg_trail), fields(&lite_trail));
    // `audit --runner` by slug (current or past) and by UUID, and --since.
    let view = |rows: Vec<super::super::AuditRow>| {
        rows.into_iter()
            .map(|r| {
                (
                    r.action,
                    r.target_slug,
                    r.user,
                    r.changes.as_object().map(|c| c.len()),
                )
            })
            .collect::<Vec<_>>()
    };
    for runner in ["uno", "one", "two", "three", "nobody"] {
        let a = view(lite.audit(None, Some(runner.to_owned())).await.unwrap());
        let b = view(pg.audit(None, Some(runner.to_owned())).await.unwrap());
        assert_eq!(a, b, "{runner}");
    }
    assert_eq!(
        view(lite.audit(None, None).await.unwrap()),
        view(pg.audit(None, None).await.unwrap())
    );
    let later = super::super::now() + Duration::seconds(1);
    assert!(pg.audit(Some(later), None).await.unwrap().is_empty());
    let earlier = super::super::now() - Duration::hours(1);
    assert_eq!(
        pg.audit(Some(earlier), None).await.unwrap().len(),
        lite.audit(Some(earlier), None).await.unwrap().len()
    );
    let uuid = pg.item(&slug_ref("uno")).await.unwrap().uuid.to_string();
    assert_eq!(
        view(pg.audit(None, Some(uuid)).await.unwrap()),
        view(pg.audit(None, Some("uno".into())).await.unwrap())
    );
    drop((pg, client));
    db.drop().await;
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

fn spec_change(fallback: Option<bool>, archived: Option<bool>) -> SpecChanges {
    SpecChanges {
        fallback,
        archived,
        ..SpecChanges::default()
    }
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

/// Specs, the fallback's moves and the specs of runners give what SQLite
/// gives, step by step; the audit trails have the same actions in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_match_sqlite() {
    let Some(db) = TestDb::new("specs_match_sqlite").await else {
        return;
    };
    let pg = PgStore::open_config(db.config.clone()).await.unwrap();
    let (_dir, lite) = sqlite();
    let actor = Actor::program();
    let spec = |s: &str| SpecRef::from(Ref::Slug(s.to_owned()));
    let runner = |s: &str| RunnerRef::from(Ref::Slug(s.to_owned()));
    for (name, slug, fallback) in [
        ("Small", None, false),
        ("Big box", Some("big"), true),
        ("Arm", None, true),
        ("small", Some("small-2"), false),
    ] {
        let a = lite
            .create_spec(new_spec(name, slug, fallback), &actor)
            .await
            .unwrap();
        let b = pg
            .create_spec(new_spec(name, slug, fallback), &actor)
            .await
            .unwrap();
        assert_eq!(spec_shape(&a), spec_shape(&b));
    }
    let taken = pg
        .create_spec(new_spec("x", Some("big"), false), &actor)
        .await;
    assert!(
        matches!(taken, Err(StoreError::SlugTaken { .. })),
        "{taken:?}"
    );

    let all = |archived: bool| {
        let mut q = query(Sort::Name, Direction::Asc, 255, 1, None, None);
        q.archived = archived;
        q
    };
    let compare = async |step: &str| {
        for archived in [false, true] {
            let (a, at) = lite.list_specs(all(archived)).await.unwrap();
            let (b, bt) = pg.list_specs(all(archived)).await.unwrap();
            assert_eq!(at, bt, "{step}");
            assert_eq!(
                a.iter().map(spec_shape).collect::<Vec<_>>(),
                b.iter().map(spec_shape).collect::<Vec<_>>(),
                "{step}"
            );
            assert!(b.iter().filter(|s| s.fallback.is_some()).count() <= 1);
        }
    };
    compare("created").await;
    let steps: Vec<(&str, SpecChanges)> = vec![
        ("small", spec_change(Some(true), None)),
        ("small", spec_change(Some(true), None)),
        ("big", spec_change(Some(true), Some(true))),
        ("big", spec_change(Some(true), None)),
        ("big", spec_change(None, Some(false))),
        ("small", spec_change(None, Some(true))),
        ("arm", spec_change(Some(false), None)),
        ("arm", spec_change(Some(true), None)),
        ("arm", spec_change(Some(false), None)),
        ("nothing", spec_change(Some(true), None)),
    ];
    for (target, changes) in steps {
        let a = lite
            .update::<Specs>(spec(target), changes.clone(), &actor)
            .await;
        let b = pg.update(spec(target), changes, &actor).await;
        match (&a, &b) {
            (Ok(a), Ok(b)) => assert_eq!(spec_shape(a), spec_shape(b), "{target}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{target}"),
            _ => panic!("{target}: SQLite {a:?}, PostgreSQL {b:?}"),
        }
        compare(target).await;
    }

    // The specs of a runner, in the order added.
    for store_is_pg in [false, true] {
        let k = key(1);
        if store_is_pg {
            pg.create_runner(new_runner("R", Some("r")), k, &actor)
                .await
                .unwrap();
        } else {
            lite.create_runner(new_runner("R", Some("r")), k, &actor)
                .await
                .unwrap();
        }
    }
    for (op, s) in [
        ("add", "arm"),
        ("add", "big"),
        ("add", "arm"),
        ("add", "none"),
        ("remove", "small-2"),
        ("add", "small-2"),
        ("remove", "arm"),
        ("add", "arm"),
    ] {
        let (a, b) = match op {
            "add" => (
                lite.add_runner_spec(runner("r"), spec(s), &actor)
                    .await
                    .map(|s| spec_shape(&s)),
                pg.add_runner_spec(runner("r"), spec(s), &actor)
                    .await
                    .map(|s| spec_shape(&s)),
            ),
            _ => (
                lite.remove_runner_spec(runner("r"), spec(s), &actor)
                    .await
                    .map(|()| String::new()),
                pg.remove_runner_spec(runner("r"), spec(s), &actor)
                    .await
                    .map(|()| String::new()),
            ),
        };
        match (&a, &b) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("{op} {s}: SQLite {a:?}, PostgreSQL {b:?}"),
        }
        let a = lite.runner_specs(&runner("r")).await.unwrap();
        let b = pg.runner_specs(&runner("r")).await.unwrap();
        assert_eq!(
            a.iter().map(spec_shape).collect::<Vec<_>>(),
            b.iter().map(spec_shape).collect::<Vec<_>>()
        );
        // The runner's row lists the same specs in the same order.
        let row = pg.item(&runner("r")).await.unwrap();
        assert_eq!(row.specs, b.iter().map(|s| s.uuid).collect::<Vec<_>>());
    }

    // Deleting: in use (409, naming the runner), unused (gone), unknown.
    for s in ["big", "small", "small", "small-2"] {
        let a = lite.delete_spec(spec(s), &actor).await;
        let b = pg.delete_spec(spec(s), &actor).await;
        assert_eq!(
            a.as_ref().map_err(ToString::to_string),
            b.as_ref().map_err(ToString::to_string),
            "{s}"
        );
    }
    compare("deleted").await;

    let lite_actions: Vec<String> = lite
        .audit(None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    let client = connect(&db.config).await;
    let pg_actions: Vec<String> = client
        .query("SELECT action FROM audit ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(pg_actions, lite_actions);
    drop((pg, client));
    db.drop().await;
}

/// Racing PATCHes making different specs the fallback, over four pools (as
/// four replicas): every one succeeds, and one spec is the fallback after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_fallbacks_leave_one() {
    let Some(db) = TestDb::new("racing_fallbacks_leave_one").await else {
        return;
    };
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(PgStore::open_config(db.config.clone()).await.unwrap());
    }
    let actor = Actor::program();
    for i in 0..16 {
        stores[0]
            .create_spec(new_spec(&format!("S{i}"), None, i % 5 == 0), &actor)
            .await
            .unwrap();
    }
    for round in 0..3 {
        let results = futures::future::join_all((0..16).map(|i| {
            let store = stores[i % 4].clone();
            async move {
                let target = SpecRef::from(Ref::Slug(format!("s{i}")));
                if round == 1 && i % 3 == 0 {
                    store
                        .create_spec(
                            new_spec(&format!("New {round} {i}"), None, true),
                            &Actor::program(),
                        )
                        .await
                        .map(drop)
                } else {
                    store
                        .update(target, spec_change(Some(true), None), &Actor::program())
                        .await
                        .map(drop)
                }
            }
        }))
        .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let client = connect(&db.config).await;
        let fallbacks: i64 = client
            .query_one("SELECT count(*) FROM specs WHERE fallback IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(fallbacks, 1, "round {round}");
    }
    drop(stores);
    db.drop().await;
}

fn new_job(spec: Option<&str>, priority: i32, n: u64) -> NewJob {
    NewJob {
        spec: spec.map(|s| SpecRef::from(Ref::Slug(s.to_owned()))),
        config: serde_json::json!({"n": n, "cmd": ["bench"], "env": {"A": "1"}}),
        timeout: 3600,
        priority,
    }
}

/// Jobs created alike are claimed in the same order on both engines
/// (higher priority first, then older; only a runner's specs), with the
/// same rows; a revoked key claims nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_match_sqlite() {
    let Some(db) = TestDb::new("claims_match_sqlite").await else {
        return;
    };
    let pg = PgStore::open_config(db.config.clone()).await.unwrap();
    let (_dir, lite) = sqlite();
    let actor = Actor::program();
    let spec = |s: &str| SpecRef::from(Ref::Slug(s.to_owned()));
    let runner = |s: &str| RunnerRef::from(Ref::Slug(s.to_owned()));
    // No fallback yet: a job without a spec is refused on both.
    let a = lite.create_job(new_job(None, 0, 0), &actor).await;
    let b = pg.create_job(new_job(None, 0, 0), &actor).await;
    assert!(matches!(a, Err(StoreError::NoFallbackSpec)), "{a:?}");
    assert!(matches!(b, Err(StoreError::NoFallbackSpec)), "{b:?}");
    for (name, fallback) in [("Linux", true), ("Other", false), ("Third", false)] {
        lite.create_spec(new_spec(name, None, fallback), &actor)
            .await
            .unwrap();
        pg.create_spec(new_spec(name, None, fallback), &actor)
            .await
            .unwrap();
    }
    lite.create_runner(new_runner("R", Some("r")), key(1), &actor)
        .await
        .unwrap();
    pg.create_runner(new_runner("R", Some("r")), key(1), &actor)
        .await
        .unwrap();
    for s in ["linux", "third"] {
        lite.add_runner_spec(runner("r"), spec(s), &actor)
            .await
            .unwrap();
        pg.add_runner_spec(runner("r"), spec(s), &actor)
            .await
            .unwrap();
    }
    let jobs = [
        (None, 0),
        (Some("other"), 9),
        (Some("linux"), 1),
        (Some("third"), 5),
        (None, 5),
        (Some("linux"), -3),
        (Some("third"), 1),
    ];
    for (n, (s, priority)) in jobs.iter().enumerate() {
        let n = u64::try_from(n).unwrap();
        let a = lite
            .create_job(new_job(*s, *priority, n), &actor)
            .await
            .unwrap();
        let b = pg
            .create_job(new_job(*s, *priority, n), &actor)
            .await
            .unwrap();
        assert_eq!(
            (a.status, &a.config, a.priority, a.timeout),
            (b.status, &b.config, b.priority, b.timeout)
        );
        assert_eq!(spec_shape(&a.spec), spec_shape(&b.spec));
        assert_eq!(pg.job(b.uuid).await.unwrap(), b);
    }
    let lite_keyed = lite.runner_by_key_hash(key(1)).await.unwrap().unwrap();
    let pg_keyed = pg.runner_by_key_hash(key(1)).await.unwrap().unwrap();
    lite.set_channel(lite_keyed.id, ch(), true).await.unwrap();
    pg.set_channel(pg_keyed.id, ch(), true).await.unwrap();
    let mut order = Vec::new();
    loop {
        let a = lite
            .claim_job(Claimant {
                runner: lite_keyed.id,
                key_hash: key(1),
                channel: ch(),
                seen: Some(None),
            })
            .await
            .unwrap();
        let b = pg
            .claim_job(Claimant {
                runner: pg_keyed.id,
                key_hash: key(1),
                channel: ch(),
                seen: Some(None),
            })
            .await
            .unwrap();
        assert_eq!(a.specs.len(), b.specs.len());
        let (a, b) = (a.job.map(|c| c.job), b.job.map(|c| c.job));
        assert_eq!(
            a.as_ref().map(|j| (&j.config, j.status)),
            b.as_ref().map(|j| (&j.config, j.status))
        );
        let Some(b) = b else { break };
        assert_eq!(b.runner, Some(pg_keyed.uuid));
        assert!(b.claimed.is_some());
        order.push(b.config["n"].as_u64().unwrap());
    }
    // "other" (n = 1) is not the runner's spec.
    assert_eq!(order, vec![3, 4, 2, 6, 0, 5]);
    // A rotated key claims nothing: the runner is revoked.
    pg.rotate_runner_key(runner("r"), key(2), &actor)
        .await
        .unwrap();
    let revoked = pg
        .claim_job(Claimant {
            runner: pg_keyed.id,
            key_hash: key(1),
            channel: ch(),
            seen: None,
        })
        .await;
    assert!(
        matches!(revoked, Err(StoreError::RunnerRevoked)),
        "{revoked:?}"
    );
    drop(pg);
    db.drop().await;
}

/// 32 runners over four pools (as four replicas) race for 200 jobs: each
/// job is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_exactly_once() {
    let Some(db) = TestDb::new("racing_claims_exactly_once").await else {
        return;
    };
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(PgStore::open_config(db.config.clone()).await.unwrap());
    }
    let actor = Actor::program();
    let pg = &stores[0];
    pg.create_spec(new_spec("Linux", None, true), &actor)
        .await
        .unwrap();
    let mut runners = Vec::new();
    for i in 0..32u8 {
        let r = pg
            .create_runner(new_runner(&format!("R{i}"), None), key(i), &actor)
            .await
            .unwrap();
        pg.add_runner_spec(
            RunnerRef::from(r.uuid),
            SpecRef::from(Ref::Slug("linux".into())),
            &actor,
        )
        .await
        .unwrap();
        runners.push(pg.runner_by_key_hash(key(i)).await.unwrap().unwrap().id);
    }
    for n in 0..200u64 {
        pg.create_job(new_job(None, i32::try_from(n % 7).unwrap(), n), &actor)
            .await
            .unwrap();
    }
    let claimed = futures::future::join_all(runners.iter().enumerate().map(|(i, &id)| {
        let store = stores[i % 4].clone();
        let k = key(u8::try_from(i).unwrap());
        tokio::spawn(async move {
            let mut mine = Vec::new();
            store.set_channel(id, ch(), true).await.unwrap();
            while let Some(c) = store
                .claim_job(Claimant {
                    runner: id,
                    key_hash: k,
                    channel: ch(),
                    seen: None,
                })
                .await
                .unwrap()
                .job
            {
                mine.push(c.job.uuid);
            }
            mine
        })
    }))
    .await;
    let mut all: Vec<Uuid> = claimed.into_iter().flat_map(|r| r.unwrap()).collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!((total, all.len()), (200, 200));
    let client = connect(&db.config).await;
    let pending: i64 = client
        .query_one("SELECT count(*) FROM jobs WHERE status = 'pending'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 0);
    drop((stores, client));
    db.drop().await;
}

/// A job's life on both engines, step by step: reports (running,
/// heartbeat, completed twice, failed after completed, canceled), cancels
/// (pending, claimed, ended), release, fail, the timeout rules, the lists
/// with every filter, the active jobs and the audit trail: the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_lifecycle_matches_sqlite() {
    use super::super::model::JobReport;
    use super::super::rules::Timeouts;
    let Some(db) = TestDb::new("job_lifecycle_matches_sqlite").await else {
        return;
    };
    let pg = PgStore::open_config(db.config.clone()).await.unwrap();
    let (_dir, lite) = sqlite();
    let actor = Actor::program();
    let spec = |s: &str| SpecRef::from(Ref::Slug(s.to_owned()));
    let runner = |s: &str| RunnerRef::from(Ref::Slug(s.to_owned()));
    for (name, fallback) in [("Linux", true), ("Other", false)] {
        lite.create_spec(new_spec(name, None, fallback), &actor)
            .await
            .unwrap();
        pg.create_spec(new_spec(name, None, fallback), &actor)
            .await
            .unwrap();
    }
    for (slug, k) in [("r", 1), ("s", 2)] {
        lite.create_runner(new_runner(slug, Some(slug)), key(k), &actor)
            .await
            .unwrap();
        pg.create_runner(new_runner(slug, Some(slug)), key(k), &actor)
            .await
            .unwrap();
        lite.add_runner_spec(runner(slug), spec("linux"), &actor)
            .await
            .unwrap();
        pg.add_runner_spec(runner(slug), spec("linux"), &actor)
            .await
            .unwrap();
    }
    let mut lite_jobs = Vec::new();
    let mut pg_jobs = Vec::new();
    for n in 0..8u64 {
        let s = if n == 7 { Some("other") } else { None };
        lite_jobs.push(
            lite.create_job(new_job(s, 0, n), &actor)
                .await
                .unwrap()
                .uuid,
        );
        pg_jobs.push(pg.create_job(new_job(s, 0, n), &actor).await.unwrap().uuid);
    }
    let (lr, pr) = (
        lite.runner_by_key_hash(key(1)).await.unwrap().unwrap(),
        pg.runner_by_key_hash(key(1)).await.unwrap().unwrap(),
    );
    let (ls, ps) = (
        lite.runner_by_key_hash(key(2)).await.unwrap().unwrap(),
        pg.runner_by_key_hash(key(2)).await.unwrap().unwrap(),
    );
    for (l, p) in [(&lr, &pr), (&ls, &ps)] {
        lite.set_channel(l.id, ch(), true).await.unwrap();
        pg.set_channel(p.id, ch(), true).await.unwrap();
    }
    // r claims jobs 0, 1, 2; s claims 3.
    let mut lite_claimed = Vec::new();
    let mut pg_claimed = Vec::new();
    for (l, p, k) in [(&lr, &pr, 1), (&lr, &pr, 1), (&lr, &pr, 1), (&ls, &ps, 2)] {
        lite_claimed.push(
            lite.claim_job(Claimant {
                runner: l.id,
                key_hash: key(k),
                channel: ch(),
                seen: None,
            })
            .await
            .unwrap()
            .job
            .unwrap(),
        );
        pg_claimed.push(
            pg.claim_job(Claimant {
                runner: p.id,
                key_hash: key(k),
                channel: ch(),
                seen: None,
            })
            .await
            .unwrap()
            .job
            .unwrap(),
        );
    }
    let timeouts = Timeouts {
        heartbeat: std::time::Duration::from_secs(90),
        grace: std::time::Duration::from_secs(60),
    };
    let output = serde_json::json!({"results": ["{\"bench\": {}}"]});
    let failed = serde_json::json!({"results": [], "error": "boom"});
    let reports = [
        (0, JobReport::Running),
        (0, JobReport::Heartbeat),
        (0, JobReport::Completed(output.clone())),
        (0, JobReport::Completed(output.clone())),
        (0, JobReport::Failed(failed.clone())),
        (1, JobReport::Heartbeat),
        (1, JobReport::Failed(failed.clone())),
        (1, JobReport::Completed(output.clone())),
        (2, JobReport::Canceled),
        (2, JobReport::Running),
        (3, JobReport::Running),
    ];
    for (i, report) in reports {
        let a = lite
            .report_job(lr.id, lite_claimed[i].job.uuid, report.clone(), timeouts)
            .await;
        let b = pg
            .report_job(pr.id, pg_claimed[i].job.uuid, report.clone(), timeouts)
            .await;
        assert_eq!(
            a.as_ref().map_err(|e| e
                .to_string()
                .replace(&lite_claimed[i].job.uuid.to_string(), "J")),
            b.as_ref().map_err(|e| e
                .to_string()
                .replace(&pg_claimed[i].job.uuid.to_string(), "J")),
            "job {i}: {report:?}"
        );
    }
    // Cancels: pending (4), claimed by s (3), ended (0).
    for i in [4usize, 3, 0] {
        let a = lite
            .cancel_job(lite_jobs[i], &actor)
            .await
            .map(|j| (j.status, j.output));
        let b = pg
            .cancel_job(pg_jobs[i], &actor)
            .await
            .map(|j| (j.status, j.output));
        assert_eq!(
            a.map_err(|e| e.to_string().replace(&lite_jobs[i].to_string(), "J")),
            b.map_err(|e| e.to_string().replace(&pg_jobs[i].to_string(), "J")),
            "cancel {i}"
        );
    }
    // Job 5: claimed by r then released; claimed again and failed; job 6
    // claimed and expired by a zero heartbeat timeout.
    let l5 = lite
        .claim_job(Claimant {
            runner: lr.id,
            key_hash: key(1),
            channel: ch(),
            seen: None,
        })
        .await
        .unwrap()
        .job
        .unwrap();
    let p5 = pg
        .claim_job(Claimant {
            runner: pr.id,
            key_hash: key(1),
            channel: ch(),
            seen: None,
        })
        .await
        .unwrap()
        .job
        .unwrap();
    lite.release_job(l5.id, lr.id).await.unwrap();
    pg.release_job(p5.id, pr.id).await.unwrap();
    let l5 = lite
        .claim_job(Claimant {
            runner: lr.id,
            key_hash: key(1),
            channel: ch(),
            seen: None,
        })
        .await
        .unwrap()
        .job
        .unwrap();
    let p5 = pg
        .claim_job(Claimant {
            runner: pr.id,
            key_hash: key(1),
            channel: ch(),
            seen: None,
        })
        .await
        .unwrap()
        .job
        .unwrap();
    assert_eq!(l5.job.config, p5.job.config);
    assert_eq!(
        lite.fail_job(l5.id, "runner revoked").await.unwrap(),
        pg.fail_job(p5.id, "runner revoked").await.unwrap()
    );
    let l6 = lite
        .claim_job(Claimant {
            runner: lr.id,
            key_hash: key(1),
            channel: ch(),
            seen: None,
        })
        .await
        .unwrap()
        .job
        .unwrap();
    let p6 = pg
        .claim_job(Claimant {
            runner: pr.id,
            key_hash: key(1),
            channel: ch(),
            seen: None,
        })
        .await
        .unwrap()
        .job
        .unwrap();
    let soon = Timeouts {
        heartbeat: std::time::Duration::ZERO,
        grace: std::time::Duration::ZERO,
    };
    assert_eq!(
        lite.expire_job(l6.id, timeouts)
            .await
            .map(|e| matches!(e, super::super::rules::Expiry::NotBefore(_)))
            .unwrap(),
        pg.expire_job(p6.id, timeouts)
            .await
            .map(|e| matches!(e, super::super::rules::Expiry::NotBefore(_)))
            .unwrap(),
    );
    assert_eq!(
        lite.expire_job(l6.id, soon).await.unwrap(),
        pg.expire_job(p6.id, soon).await.unwrap()
    );
    assert_eq!(
        lite.active_jobs().await.unwrap().len(),
        pg.active_jobs().await.unwrap().len()
    );

    // Every list: statuses, runner, spec, direction, pages.
    let view = |jobs: &[JobRow]| {
        jobs.iter()
            .map(|j| {
                (
                    j.config["n"].as_u64(),
                    j.status,
                    j.output.clone(),
                    j.priority,
                )
            })
            .collect::<Vec<_>>()
    };
    for statuses in [
        vec![],
        vec!["pending".to_owned()],
        vec!["completed".into(), "canceled".into(), "failed".into()],
    ] {
        for (runner_filter, spec_filter) in [
            (None, None),
            (Some("r"), None),
            (None, Some("other")),
            (Some("s"), Some("linux")),
        ] {
            for direction in [Direction::Asc, Direction::Desc] {
                for (per_page, page) in [(8, 1), (3, 2), (3, 9)] {
                    let q = crate::validate::JobListQuery {
                        statuses: statuses.clone(),
                        runner: runner_filter.map(|s: &str| Ref::Slug(s.into())),
                        spec: spec_filter.map(|s: &str| Ref::Slug(s.into())),
                        direction,
                        per_page,
                        page,
                    };
                    let (a, at) = lite.list_jobs(None, q.clone()).await.unwrap();
                    let (b, bt) = pg.list_jobs(None, q.clone()).await.unwrap();
                    assert_eq!((at, view(&a)), (bt, view(&b)), "{q:?}");
                }
            }
        }
    }
    let a = lite
        .list_jobs(
            Some(runner("r")),
            crate::validate::JobListQuery {
                statuses: vec![],
                runner: None,
                spec: None,
                direction: Direction::Asc,
                per_page: 255,
                page: 1,
            },
        )
        .await
        .unwrap();
    let b = pg
        .list_jobs(
            Some(runner("r")),
            crate::validate::JobListQuery {
                statuses: vec![],
                runner: None,
                spec: None,
                direction: Direction::Asc,
                per_page: 255,
                page: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!((a.1, view(&a.0)), (b.1, view(&b.0)));

    let lite_actions: Vec<String> = lite
        .audit(None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    let client = connect(&db.config).await;
    let pg_actions: Vec<String> = client
        .query("SELECT action FROM audit ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(pg_actions, lite_actions);
    drop((pg, client));
    db.drop().await;
}

/// A bulk import inserts every runner or none (a taken slug: nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_all_or_nothing() {
    let Some(db) = TestDb::new("import_is_all_or_nothing").await else {
        return;
    };
    let pg = PgStore::open_config(db.config.clone()).await.unwrap();
    let batch = |slugs: &[&str], k: u8| {
        slugs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.to_uppercase(),
                    (*s).to_owned(),
                    key(k + u8::try_from(i).unwrap()),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pg.import_runners(batch(&["a", "b", "c"], 0)).await.unwrap(),
        3
    );
    let again = pg.import_runners(batch(&["d", "b"], 10)).await;
    assert!(
        matches!(&again, Err(StoreError::SlugTaken { slug, .. }) if slug == "b"),
        "{again:?}"
    );
    // Given twice in one import: refused too, naming it.
    let twice = pg.import_runners(batch(&["e", "f", "e"], 20)).await;
    assert!(
        matches!(&twice, Err(StoreError::SlugTaken { slug, .. }) if slug == "e"),
        "{twice:?}"
    );
    let (rows, total) = pg
        .list_runners(query(Sort::Name, Direction::Asc, 8, 1, None, None))
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(slugs_of(&rows), ["a", "b", "c"]);
    // Over several statements (1,000 rows each), the count kept right.
    let many: Vec<_> = (0..2500u32)
        .map(|i| {
            let mut hash = [0xb0; 32];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            (
                format!("Bulk {i}"),
                format!("bulk-{i}"),
                RunnerKeyHash(hash),
            )
        })
        .collect();
    assert_eq!(pg.import_runners(many).await.unwrap(), 2500);
    let (_, total) = pg
        .list_runners(query(Sort::Name, Direction::Asc, 8, 1, None, None))
        .await
        .unwrap();
    assert_eq!(total, 2503);
    drop(pg);
    db.drop().await;
}

fn slugs_of(rows: &[RunnerRow]) -> Vec<&str> {
    rows.iter().map(|r| r.slug.as_str()).collect()
}

/// Replica leases: a live replica keeps its runners' channels however long
/// it runs (another replica starting or sweeping leaves them), a channel
/// no live lease holds is cleared when a replica starts, one whose replica
/// stopped renewing (killed: no clean shutdown) is cleared by another
/// within the lapse and a sweep, and a clean shutdown clears its own at once.
#[tokio::test]
async fn leases_keep_live_channels_and_clear_lapsed_ones() {
    use super::replicas::{LAPSE, RENEW};
    let Some(db) = TestDb::new("leases_keep_live_channels_and_clear_lapsed_ones").await else {
        return;
    };
    let (a, b) = (
        PgStore::open_config(db.config.clone()).await.unwrap(),
        PgStore::open_config(db.config.clone()).await.unwrap(),
    );
    let actor = Actor::program();
    let on_a = a.create_runner(new_runner("On A", None), key(1), &actor);
    let on_a = on_a.await.unwrap();
    let on_b = a.create_runner(new_runner("On B", None), key(2), &actor);
    let on_b = on_b.await.unwrap();
    let left = a.create_runner(new_runner("Left", None), key(3), &actor);
    let left = left.await.unwrap();
    let sql = connect(&db.config).await;
    let has_channel = async |id: RunnerId| -> bool {
        sql.query_one(
            "SELECT channel IS NOT NULL FROM runners WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
    };
    let mut ids = Vec::new();
    for runner in [&on_a, &on_b, &left] {
        let row = sql
            .query_one("SELECT id FROM runners WHERE uuid = $1", &[&runner.uuid])
            .await;
        ids.push(row.unwrap().get::<_, RunnerId>(0));
    }
    let [on_a, on_b, left] = ids[..] else {
        unreachable!()
    };
    // A channel left by a server that held no lease (before version 8).
    sql.execute("UPDATE runners SET channel = now() WHERE id = $1", &[&left])
        .await
        .unwrap();
    a.hold_lease().await.unwrap();
    assert!(!has_channel(left).await, "a channel no lease holds");
    a.set_channel(on_a, crate::store::now(), true)
        .await
        .unwrap();
    b.hold_lease().await.unwrap();
    b.set_channel(on_b, crate::store::now(), true)
        .await
        .unwrap();
    assert!(has_channel(on_a).await, "B's start left A's channel");
    // Past a lapse, and sweeps on both: both channels stay.
    tokio::time::sleep(LAPSE + RENEW * 6).await;
    assert!(has_channel(on_a).await, "A renews its lease");
    assert!(has_channel(on_b).await, "B renews its lease");
    // A stops renewing, as if killed (no clean shutdown).
    a.pool.close();
    let stopped = std::time::Instant::now();
    while has_channel(on_a).await {
        assert!(
            stopped.elapsed() < LAPSE + RENEW * 7,
            "A's channel not cleared after {:?}",
            stopped.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    eprintln!(
        "a lapsed replica's channel cleared after {:?}",
        stopped.elapsed()
    );
    assert!(
        stopped.elapsed() >= LAPSE - RENEW * 2,
        "not before its lease lapsed"
    );
    assert!(has_channel(on_b).await);
    // A clean shutdown clears its own channel and lease at once.
    b.end_lease().await.unwrap();
    assert!(!has_channel(on_b).await);
    let leases: i64 = sql
        .query_one("SELECT count(*) FROM replicas", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(leases, 0, "A's lapsed lease swept, B's ended");
    drop((a, b, sql));
    db.drop().await;
}

/// `sslmode=require` insists on TLS: against a server without it (the
/// test's), the store refuses to open with an error that says so, rather
/// than falling back to plain text; the default (`prefer`) connects plain.
#[tokio::test]
async fn sslmode_require_insists_on_tls() {
    let Some(db) = TestDb::new("sslmode_require_insists_on_tls").await else {
        return;
    };
    let mut require = db.config.clone();
    require.ssl_mode(tokio_postgres::config::SslMode::Require);
    let refused = PgStore::open_config(require).await.err().expect("refused");
    let message = format!("{refused:#}");
    eprintln!("{message}");
    assert!(message.contains("TLS"), "{message}");
    let mut prefer = db.config.clone();
    prefer.ssl_mode(tokio_postgres::config::SslMode::Prefer);
    let store = PgStore::open_config(prefer).await.expect("plain");
    drop(store);
    db.drop().await;
}

/// A TCP relay to the test's PostgreSQL that a test can freeze (bytes are
/// held, connections stay open: a server stopped with SIGSTOP, or a
/// partition) or cut (connections closed, new ones refused: a server
/// down).
struct Relay {
    port: u16,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

const FLOWING: u8 = 0;
const FROZEN: u8 = 1;
const CUT: u8 = 2;

impl Relay {
    async fn to(upstream: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(FLOWING));
        let shared = std::sync::Arc::clone(&mode);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.load(Relaxed) == CUT {
                    continue;
                }
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                for (mut from, mut to) in [(cr, sw), (sr, cw)].map(|(r, w)| (r, w)) {
                    let mode = std::sync::Arc::clone(&shared);
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0; 16 * 1024];
                        loop {
                            match mode.load(Relaxed) {
                                CUT => return,
                                FROZEN => {
                                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                                    continue;
                                }
                                _ => {}
                            }
                            let read = tokio::time::timeout(
                                std::time::Duration::from_millis(20),
                                from.read(&mut buf),
                            );
                            match read.await {
                                Err(_) => continue,
                                Ok(Ok(0) | Err(_)) => return,
                                Ok(Ok(n)) => {
                                    // Read just before a freeze: held too.
                                    loop {
                                        match mode.load(Relaxed) {
                                            CUT => return,
                                            FROZEN => {
                                                let pause = std::time::Duration::from_millis(20);
                                                tokio::time::sleep(pause).await;
                                            }
                                            _ => break,
                                        }
                                    }
                                    if to.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
            }
        });
        Self { port, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::Relaxed);
    }

    /// A relay to `db`'s server, and the URL of `db` through it.
    async fn before(db: &TestDb) -> (Self, String) {
        let host = match &db.admin.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            #[allow(unreachable_patterns)]
            _ => "127.0.0.1".to_owned(),
        };
        let upstream = format!("{host}:{}", db.admin.get_ports()[0]);
        let upstream = tokio::net::lookup_host(upstream)
            .await
            .unwrap()
            .next()
            .unwrap();
        let relay = Self::to(upstream).await;
        let user = db.admin.get_user().unwrap_or("postgres");
        let url = format!("postgres://{user}@127.0.0.1:{}/{}", relay.port, db.name);
        (relay, url)
    }
}

/// A database that does not answer is 503 (`Unavailable`) after the busy
/// timeout, never a wait without end; one that is down is 503 at once,
/// not a fault (500); and the store works again as soon as it is back,
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_or_down_database_is_unavailable_and_then_recovers() {
    let Some(db) = TestDb::new("a_frozen_or_down_database_is_unavailable_and_then_recovers").await
    else {
        return;
    };
    let (relay, url) = Relay::before(&db).await;
    let store = Store::open_db(std::path::Path::new(&url), 16)
        .await
        .unwrap();
    let list = || store.list_runners(query(Sort::Name, Direction::Asc, 8, 1, None, None));
    assert_eq!(list().await.unwrap().1, 0);

    relay.set(FROZEN);
    let frozen = std::time::Instant::now();
    let answer = list().await;
    let waited = frozen.elapsed();
    assert!(matches!(answer, Err(StoreError::Unavailable)), "{answer:?}");
    assert!(
        waited >= super::OP_TIMEOUT
            && waited < super::OP_TIMEOUT + std::time::Duration::from_secs(2),
        "answered after {waited:?}"
    );
    relay.set(FLOWING);
    assert_eq!(list().await.unwrap().1, 0, "flowing again");

    relay.set(CUT);
    let cut = std::time::Instant::now();
    let answer = list().await;
    assert!(matches!(answer, Err(StoreError::Unavailable)), "{answer:?}");
    assert!(cut.elapsed() < super::OP_TIMEOUT, "{:?}", cut.elapsed());
    relay.set(FLOWING);
    let mut back = list().await;
    // A pooled connection cut under it may fail once more.
    if back.is_err() {
        back = list().await;
    }
    assert_eq!(back.unwrap().1, 0, "up again");
    store.close_writer().await;
    db.drop().await;
}

/// The database's channels of a replica are kept true to those it holds:
/// one whose close could not be written (the database was down) is
/// cleared, one a sweep cleared while the replica was stalled past its
/// lease is recorded again, and one the runner has opened on another
/// replica meanwhile is left to that one; within a sweep (5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_channels_are_reconciled_with_what_it_holds() {
    use super::replicas::RENEW;
    let Some(db) = TestDb::new("a_replicas_channels_are_reconciled_with_what_it_holds").await
    else {
        return;
    };
    let a = PgStore::open_config(db.config.clone()).await.unwrap();
    let actor = Actor::program();
    let sql = connect(&db.config).await;
    let mut ids = Vec::new();
    for (i, name) in ["Unclosed", "Swept", "Moved"].into_iter().enumerate() {
        let k = key(u8::try_from(i).unwrap() + 1);
        let runner = a
            .create_runner(new_runner(name, None), k, &actor)
            .await
            .unwrap();
        let row = sql
            .query_one("SELECT id FROM runners WHERE uuid = $1", &[&runner.uuid])
            .await;
        ids.push(row.unwrap().get::<_, RunnerId>(0));
    }
    let [unclosed, swept, moved] = ids[..] else {
        unreachable!()
    };
    a.hold_lease().await.unwrap();
    let since = crate::store::now();
    for id in [unclosed, swept, moved] {
        a.set_channel(id, since, true).await.unwrap();
    }
    // Closed here, but the write of it lost.
    a.hold_channel(unclosed, since, false);
    // Cleared by another replica's sweep.
    sql.execute(
        "UPDATE runners SET channel = NULL, channel_replica = NULL WHERE id = $1",
        &[&swept],
    )
    .await
    .unwrap();
    // Opened on another replica (alive) since.
    let elsewhere = Uuid::new_v4();
    sql.execute(
        "INSERT INTO replicas (uuid, seen) VALUES ($1, now())",
        &[&elsewhere],
    )
    .await
    .unwrap();
    sql.execute(
        "UPDATE runners SET channel = now(), channel_replica = $2 WHERE id = $1",
        &[&moved, &elsewhere],
    )
    .await
    .unwrap();
    let state = async |id: RunnerId| -> (bool, Option<Uuid>) {
        let row = sql
            .query_one(
                "SELECT channel IS NOT NULL, channel_replica FROM runners WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    tokio::time::sleep(RENEW * 6 + std::time::Duration::from_millis(500)).await;
    assert_eq!(state(unclosed).await, (false, None), "an unwritten close");
    assert_eq!(
        state(swept).await,
        (true, Some(a.replica)),
        "a swept channel"
    );
    assert_eq!(
        state(moved).await,
        (true, Some(elsewhere)),
        "a channel elsewhere"
    );
    drop((a, sql));
    db.drop().await;
}

/// A channel that closes while the database is down (its close cannot be
/// written) is cleared once the database is back, within a sweep: never
/// left `idle` for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_closed_while_the_database_is_down_is_cleared_after() {
    use super::replicas::RENEW;
    let Some(db) =
        TestDb::new("a_channel_closed_while_the_database_is_down_is_cleared_after").await
    else {
        return;
    };
    let (relay, url) = Relay::before(&db).await;
    let a = PgStore::open(&url).await.unwrap();
    let actor = Actor::program();
    let runner = a.create_runner(new_runner("Dropped", None), key(1), &actor);
    let runner = runner.await.unwrap();
    let sql = connect(&db.config).await;
    let id: RunnerId = sql
        .query_one("SELECT id FROM runners WHERE uuid = $1", &[&runner.uuid])
        .await
        .unwrap()
        .get(0);
    a.hold_lease().await.unwrap();
    let since = crate::store::now();
    a.set_channel(id, since, true).await.unwrap();
    relay.set(CUT);
    // As when the database has been down a while: the pool's connections
    // are seen closed, and no new one can be made.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let lost = a.set_channel(id, since, false).await;
    assert!(lost.is_err(), "the close could not be written: {lost:?}");
    relay.set(FLOWING);
    let back = std::time::Instant::now();
    loop {
        let open: bool = sql
            .query_one(
                "SELECT channel IS NOT NULL FROM runners WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        if !open {
            break;
        }
        assert!(
            back.elapsed() < RENEW * 8,
            "still recorded open after {:?}",
            back.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    eprintln!("cleared {:?} after the database came back", back.elapsed());
    drop((a, sql));
    db.drop().await;
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
