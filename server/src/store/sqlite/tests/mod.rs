//! Store tests that need the schema's history: migrations keep every row,
//! and the trigger-kept counts stay exact. Version 11's rebuild of `jobs`
//! is `v11.rs`.

mod v11;

use rusqlite::params;
use uuid::Uuid;

use super::schema;
use crate::store::model::{Actor, NewRunner, RunnerChanges, RunnerKeyHash, RunnerRef, RunnerRow};
use crate::store::{Store, StoreError};
use crate::validate::{Direction, ListQuery, Ref, Sort};

fn query(archived: bool, search: Option<&str>) -> ListQuery {
    ListQuery {
        sort: Sort::Name,
        direction: Direction::Asc,
        per_page: 255,
        page: 1,
        name: None,
        search: search.map(str::to_owned),
        archived,
        status: None,
    }
}

async fn total(store: &Store, archived: bool, search: Option<&str>) -> u64 {
    store.list_runners(query(archived, search)).await.unwrap().1
}

/// What the list says, and what a full count says, must agree.
async fn assert_counts(store: &Store, active: u64, total_all: u64) {
    assert_eq!(total(store, false, None).await, active);
    assert_eq!(total(store, true, None).await, total_all);
    let counted: (i64, i64) = store
        .sqlite()
        .unwrap()
        .scan(|c| {
            Ok(c.query_row(
                "SELECT count(*) FILTER (WHERE archived IS NULL), count(*) FROM runners",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(counted, (active as i64, total_all as i64));
}

fn archive(archived: bool) -> RunnerChanges {
    RunnerChanges {
        archived: Some(archived),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_version_1_database_migrates_and_counts_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    // A database as version 1 left it, with runners in it.
    let conn = schema::at_version(&path, 1);
    for (i, (name, archived)) in [
        ("Ärger Box", None),
        ("old", Some("2026-01-01T00:00:00.000000Z")),
    ]
    .into_iter()
    .enumerate()
    {
        conn.execute(
            "INSERT INTO runners (uuid, name, slug, token_hash, archived, created, modified)
             VALUES (?, ?, ?, ?, ?, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
            params![
                Uuid::new_v4().to_string(),
                name,
                format!("r{i}"),
                vec![i as u8; 32],
                archived
            ],
        )
        .unwrap();
    }
    drop(conn);

    let store = Store::open(&path).unwrap();
    assert_counts(&store, 1, 2).await;
    // The folded names were filled in: a search is case-insensitive beyond
    // ASCII.
    let found = store
        .list_runners(query(false, Some("ärger")))
        .await
        .unwrap();
    assert_eq!((found.0.len(), found.1), (1, 1));

    let new = NewRunner {
        name: "New One".to_owned().try_into().unwrap(),
        slug: None,
    };
    let created = store
        .create_runner((new, RunnerKeyHash([9; 32])), &Actor::program())
        .await
        .unwrap();
    assert_counts(&store, 2, 3).await;
    let slug = RunnerRef::from(Ref::Slug(created.slug.clone()));
    store
        .update(slug.clone(), archive(true), &Actor::program())
        .await
        .unwrap();
    assert_counts(&store, 1, 3).await;
    // Archiving again changes nothing, and is not counted twice.
    store
        .update(slug.clone(), archive(true), &Actor::program())
        .await
        .unwrap();
    assert_counts(&store, 1, 3).await;
    store
        .update(slug.clone(), archive(false), &Actor::program())
        .await
        .unwrap();
    assert_counts(&store, 2, 3).await;
    // A rename re-folds the searchable name.
    let rename = RunnerChanges {
        name: Some("ÉCLAIR".to_owned().try_into().unwrap()),
        ..Default::default()
    };
    store.update(slug, rename, &Actor::program()).await.unwrap();
    assert_eq!(total(&store, false, Some("éclair")).await, 1);
    assert_eq!(total(&store, false, Some("new one")).await, 0);
}

#[tokio::test]
async fn a_version_2_database_migrates_with_every_runner_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    // A database as the seed's server (schema version 2) left it: runners
    // with keys of v0.6.2's form, one archived.
    let keys: Vec<String> = (0..3)
        .map(|i| format!("bencher_runner_{}", format!("{i:02x}").repeat(32)))
        .collect();
    let conn = schema::at_version(&path, 2);
    for (i, key) in keys.iter().enumerate() {
        conn.execute(
            "INSERT INTO runners (uuid, name, name_folded, slug, token_hash, archived, created,
                                  modified)
             VALUES (?, ?, fold(?2), ?, ?, ?, '2026-01-01T00:00:00.000000Z',
                     '2026-01-01T00:00:00.000000Z')",
            params![
                Uuid::new_v4().to_string(),
                format!("Old {i}"),
                format!("old-{i}"),
                crate::auth::hash_runner_key(key).0.to_vec(),
                (i == 2).then_some("2026-02-01T00:00:00.000000Z"),
            ],
        )
        .unwrap();
    }
    drop(conn);

    let store = Store::open(&path).unwrap();
    assert_counts(&store, 2, 3).await;
    for (i, key) in keys.iter().enumerate() {
        let keyed = store
            .runner_by_key_hash(crate::auth::hash_runner_key(key))
            .await
            .unwrap()
            .expect("the key still finds its runner");
        assert_eq!(keyed.slug, format!("old-{i}"));
        let runner = store
            .item(&RunnerRef::from(Ref::Slug(keyed.slug)))
            .await
            .unwrap();
        assert!(runner.specs.is_empty());
    }
    // Opening again is a no-op.
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_counts(&store, 2, 3).await;
}

/// Every runner of the store, by a plain scan in Rust: what `search` must
/// find, case-insensitively and literally, in name, slug or uuid.
fn scan(all: &[RunnerRow], search: &str) -> Vec<Uuid> {
    let search = search.to_lowercase();
    let mut found: Vec<Uuid> = all
        .iter()
        .filter(|r| {
            r.name.to_lowercase().contains(&search)
                || r.slug.contains(&search)
                || r.uuid.to_string().contains(&search)
        })
        .map(|r| r.uuid)
        .collect();
    found.sort();
    found
}

#[test]
fn search_through_the_index_finds_what_a_scan_finds() {
    use proptest::prelude::*;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Names with non-ASCII letters, case pairs, `%` and `_`, and quotes.
    let alphabet = "aAbBéÉßẞ%_\"' -xyzİıΣσς日本0123";
    let chars: Vec<char> = alphabet.chars().collect();
    let name = proptest::collection::vec(proptest::sample::select(chars.clone()), 1..12)
        .prop_map(|cs| cs.into_iter().collect::<String>())
        .prop_filter("a valid name", |n| crate::validate::name("name", n).is_ok());
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 24,
        ..Default::default()
    });
    let names = proptest::collection::vec(name, 30..60);
    runner
        .run(&names, |names| {
            // A registry of its own for each case: at most 60 runners, so
            // every search's matches fit in one page of 255.
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("search.db")).unwrap();
            let all = runtime.block_on(async {
                for n in &names {
                    let new = NewRunner {
                        name: n.clone().try_into().unwrap(),
                        slug: None,
                    };
                    let key = crate::auth::hash_runner_key(&crate::auth::new_runner_key());
                    store
                        .create_runner((new, key), &Actor::program())
                        .await
                        .unwrap();
                }
                let mut q = query(true, None);
                q.per_page = 255;
                let mut all = Vec::new();
                for page in 1.. {
                    q.page = page;
                    let (batch, _) = store.list_runners(q.clone()).await.unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    all.extend(batch);
                }
                all
            });
            // Searches: pieces of names (any length), of uuids and slugs,
            // and text that is in no name.
            let mut searches: Vec<String> = Vec::new();
            for r in all.iter().rev().take(12) {
                let cs: Vec<char> = r.name.chars().collect();
                for (from, len) in [(0, 1), (0, 3), (1, 4), (2, 2)] {
                    if from + len <= cs.len() {
                        searches.push(cs[from..from + len].iter().collect());
                    }
                }
                searches.push(r.uuid.to_string()[9..22].to_owned());
                searches.push(r.slug.chars().take(5).collect());
            }
            searches.extend(["%", "_", "%_", "\"", "zz\"z", "ÉSS", "σς", "İ"].map(String::from));
            for search in searches {
                let expected = scan(&all, &search);
                let (found, total) = runtime.block_on(async {
                    let mut q = query(true, Some(&search.to_lowercase()));
                    q.per_page = 255;
                    store.list_runners(q).await.unwrap()
                });
                let mut found: Vec<Uuid> = found.into_iter().map(|r| r.uuid).collect();
                found.sort();
                prop_assert_eq!(&found, &expected, "search {:?}", search);
                prop_assert_eq!(total, expected.len() as u64);
                // Past the last page: no row carries the count, still exact.
                let (past, past_total) = runtime.block_on(async {
                    let mut q = query(true, Some(&search.to_lowercase()));
                    q.per_page = 255;
                    q.page = 1000;
                    store.list_runners(q).await.unwrap()
                });
                prop_assert!(past.is_empty());
                prop_assert_eq!(past_total, expected.len() as u64);
            }
            Ok(())
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rejected_write_in_a_group_commit_leaves_the_others_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("group.db")).unwrap();
    let taken = NewRunner {
        name: "Taken".to_owned().try_into().unwrap(),
        slug: Some("taken".to_owned().try_into().unwrap()),
    };
    store
        .create_runner((taken.clone(), RunnerKeyHash([0; 32])), &Actor::program())
        .await
        .unwrap();
    let (writes_before, commits_before) = store.write_stats();
    // 64 creates at once, every 8th with the taken slug.
    let creates = (0..64u8).map(|i| {
        let store = store.clone();
        let new = if i % 8 == 0 {
            taken.clone()
        } else {
            NewRunner {
                name: format!("Group {i}").try_into().unwrap(),
                slug: None,
            }
        };
        async move {
            store
                .create_runner((new, RunnerKeyHash([i + 1; 32])), &Actor::program())
                .await
        }
    });
    let results = futures::future::join_all(creates).await;
    let mut created = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(runner) => created.push(runner),
            Err(StoreError::SlugTaken { slug, .. }) if i % 8 == 0 => assert_eq!(slug, "taken"),
            other => panic!("write {i}: {other:?}"),
        }
    }
    assert_eq!(created.len(), 56);
    for runner in &created {
        let found = store.item(&RunnerRef::from(runner.uuid)).await.unwrap();
        assert_eq!(&found, runner, "an acknowledged write is there");
    }
    assert_counts(&store, 57, 57).await;
    let (writes, commits) = store.write_stats();
    assert_eq!(
        writes - writes_before,
        56,
        "the rejected ones are not counted"
    );
    assert!(
        commits - commits_before < 56,
        "writes that waited together shared commits: {} commits",
        commits - commits_before
    );
}

fn new_runner(name: &str) -> NewRunner {
    NewRunner {
        name: name.to_owned().try_into().unwrap(),
        slug: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writer_is_told_and_every_write_after_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("dead.db")).unwrap();
    store
        .create_runner(
            (new_runner("before"), RunnerKeyHash([1; 32])),
            &Actor::program(),
        )
        .await
        .unwrap();
    let stopped = store.clone();
    let watcher = tokio::spawn(async move { stopped.writer_stopped().await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!watcher.is_finished(), "a live writer is not reported dead");
    assert_eq!(store.readiness().await, Ok(()));
    store.sqlite().unwrap().kill_writer();
    tokio::time::timeout(std::time::Duration::from_secs(5), watcher)
        .await
        .expect("the writer's death is told within 5 s")
        .unwrap();
    let after = store
        .create_runner(
            (new_runner("after"), RunnerKeyHash([2; 32])),
            &Actor::program(),
        )
        .await;
    assert!(
        matches!(after, Err(StoreError::WriterStopped)),
        "a write after the writer died: {after:?}"
    );
    // Reads still work: it is for the process to exit. Not ready.
    assert_eq!(total(&store, true, None).await, 1);
    let ready = store.readiness().await;
    assert!(ready.unwrap_err().contains("writer has stopped"));
}

/// A database file deleted under the server: not ready, saying so.
#[tokio::test]
async fn a_deleted_database_file_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.readiness().await, Ok(()));
    std::fs::remove_file(&path).unwrap();
    let ready = store.readiness().await.unwrap_err();
    assert!(ready.contains("is gone"), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_refuses_at_once_and_each_write_waits_its_own_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let store = Store::open_with(&path, 16).unwrap();
    // Another connection (as another process would) holds the write lock.
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let creates = (0..80u8).map(|i| {
        let store = store.clone();
        async move {
            let result = store
                .create_runner(
                    (new_runner(&format!("q{i}")), RunnerKeyHash([i; 32])),
                    &Actor::program(),
                )
                .await;
            (result, started.elapsed())
        }
    });
    let results = futures::future::join_all(creates).await;
    let (mut busy, mut overloaded) = (Vec::new(), Vec::new());
    for (result, took) in results {
        match result {
            Err(StoreError::Busy) => busy.push(took),
            Err(StoreError::Overloaded) => overloaded.push(took),
            other => panic!("with the lock held elsewhere: {other:?}"),
        }
    }
    // The queue held 16 writes (one more may be with the writer itself).
    assert!(
        (16..=17).contains(&busy.len()),
        "{} writes waited in the queue",
        busy.len()
    );
    let timeout = super::BUSY_TIMEOUT;
    for took in &overloaded {
        assert!(*took < timeout / 5, "refused at once, not after {took:?}");
    }
    for took in &busy {
        assert!(
            *took >= timeout && *took < timeout + std::time::Duration::from_millis(1500),
            "each waited its own busy timeout, not {took:?}"
        );
    }
    holder.execute_batch("ROLLBACK").unwrap();
    // Nothing was written, and writes work again.
    assert_eq!(total(&store, true, None).await, 0);
    store
        .create_runner(
            (new_runner("after"), RunnerKeyHash([200; 32])),
            &Actor::program(),
        )
        .await
        .unwrap();
}

#[test]
fn stored_times_read_back_as_chrono_reads_them() {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let secs = (seed % 300_000_000_000) as i64 - 60_000_000_000;
        let t = chrono::DateTime::from_timestamp(secs, (seed % 1_000_000) as u32 * 1_000).unwrap();
        let text = super::to_text(t);
        let chrono = chrono::DateTime::parse_from_rfc3339(&text)
            .unwrap()
            .to_utc();
        // Years outside 0 to 9999 are not in the stored form: chrono reads them.
        let fast = super::parse_stored_time(&text);
        assert!(fast.is_none_or(|fast| fast == chrono), "{text}");
        assert_eq!(
            fast.is_some(),
            (0..=9999).contains(&chrono::Datelike::year(&t)),
            "{text}"
        );
    }
    for other in [
        "2026-02-30T10:00:00.000000Z",
        "2026-12-02T24:00:00.000000Z",
        "2026-12-02T10:00:00.000000+00:00",
        "2026-12-02T10:00:00Z",
        "2026-12-02 10:00:00.000000Z",
        "2026-12-02T10:00:0x.000000Z",
    ] {
        assert_eq!(super::parse_stored_time(other), None, "{other}");
    }
}

/// The trigram index is brought up to date once a group commit, from the
/// queue its triggers fill (schema version 9). A search never depends on
/// when: rows changed by another writer and still queued are found, and
/// once the store's writer has drained the queue the index holds exactly
/// the table (FTS5's own integrity check against its content).
#[tokio::test]
async fn searches_find_queued_rows_and_the_drained_index_matches_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let store = Store::open(&path).unwrap();
    let create = |name: &str| NewRunner {
        name: name.to_owned().try_into().unwrap(),
        slug: None,
    };
    store
        .create_runner(
            (create("First Runner"), RunnerKeyHash([1; 32])),
            &Actor::program(),
        )
        .await
        .unwrap();
    // Another writer (a raw connection, no group commit): a new runner and
    // a rename, both left in the queue.
    let conn = schema::at_version(&path, schema::MIGRATIONS.len());
    conn.execute(
        "INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
         VALUES (?, 'Queued Runner', 'queued runner', 'queued-runner', ?,
                 '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
        params![Uuid::new_v4().to_string(), vec![2u8; 32]],
    )
    .unwrap();
    conn.execute(
        "UPDATE runners SET name = 'Renamed Runner', name_folded = 'renamed runner'
         WHERE slug = 'first-runner'",
        [],
    )
    .unwrap();
    let queued = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM runners_search_queue", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(
        queued(&conn),
        3,
        "an insert, and a rename's delete and insert"
    );
    let found = |search: &'static str| total(&store, false, Some(search));
    assert_eq!(found("queued runner").await, 1);
    assert_eq!(found("renamed").await, 1);
    assert_eq!(found("first runner").await, 0);
    assert_eq!(found("first-runner").await, 1, "the slug did not change");

    // The store's next write drains the queue in its transaction.
    store
        .create_runner(
            (create("Third Runner"), RunnerKeyHash([3; 32])),
            &Actor::program(),
        )
        .await
        .unwrap();
    assert_eq!(queued(&conn), 0);
    conn.execute(
        "INSERT INTO runners_search (runners_search, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .expect("the index holds exactly the table's names and slugs");
    assert_eq!(found("queued runner").await, 1);
    assert_eq!(found("renamed").await, 1);
    assert_eq!(found("first runner").await, 0);
    assert_eq!(found("unner").await, 3);
    // A search that could be part of a UUID also finds runners by UUID.
    let third = store
        .item(&RunnerRef::from(Ref::Slug("third-runner".to_owned())))
        .await
        .unwrap();
    let piece = third.uuid.to_string()[24..].to_owned();
    assert_eq!(
        store
            .list_runners(query(false, Some(&piece)))
            .await
            .unwrap()
            .1,
        1
    );
}
