//! Runners against SQLite's: lists (every sort, filter, search and page),
//! slugs given and generated, keys and their rotation, updates and
//! heartbeats, the audit trail; racing creates of one slug; the bulk
//! import.

use chrono::Duration;
use uuid::Uuid;

use super::{
    connect, create_alike, key, new_runner, on_db, on_engines, query, rows, runner, unwrap_both,
};
use crate::store::StoreError;
use crate::store::model::{
    Actor, AuditQuery, RunnerChanges, RunnerKeyHash, RunnerRef, RunnerRow, Runners,
};
use crate::store::operations::{AuditOps, ItemOps, RunnerOps};
use crate::validate::{Direction, Sort};

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
    on_engines("runners_match_sqlite", async |db, pg, lite| {
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
            let (a, b) = unwrap_both(both!(
                lite,
                pg,
                create_runner((new_runner(name, *slug), k), &actor)
            ));
            assert_eq!(shape(&a), shape(&b), "{name}");
            assert_eq!(b.specs, Vec::<Uuid>::new());
            // Found again by slug and by UUID, unchanged.
            let by_slug = pg.item(&runner(&b.slug)).await.unwrap();
            assert_eq!(by_slug, b);
            assert_eq!(pg.item(&RunnerRef::from(b.uuid)).await.unwrap(), b);
        }

        // A given slug that is taken: 409 on both.
        let (a, b) = both!(
            lite,
            pg,
            create_runner((new_runner("again", Some("dup-a")), key(200)), &actor)
        );
        for result in [a, b] {
            assert!(
                matches!(&result, Err(StoreError::SlugTaken { slug, .. }) if slug == "dup-a"),
                "{result:?}"
            );
        }
        // A generated slug that is taken gets a suffix on both.
        let (a, b) = unwrap_both(both!(
            lite,
            pg,
            create_runner((new_runner("Zebra", None), key(201)), &actor)
        ));
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
                            let ((lite_page, lite_total), (pg_page, pg_total)) =
                                unwrap_both(both!(lite, pg, list_runners(q.clone())));
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
        let r = runner("dup-a");
        let uuid = pg
            .rotate_runner_key((r.clone(), key(250)), &actor)
            .await
            .unwrap();
        assert!(pg.runner_by_key_hash(key(12)).await.unwrap().is_none());
        assert_eq!(
            pg.runner_by_key_hash(key(250)).await.unwrap().unwrap().uuid,
            uuid
        );
        let missing = pg
            .rotate_runner_key((runner("nobody"), key(251)), &actor)
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );

        // The audit trail has a row per create and rotation, in the writes'
        // transactions (a refused create left none).
        let client = connect(&db.config).await;
        let sql = "SELECT action, count(*) FROM audit GROUP BY action ORDER BY action";
        let rows: Vec<(String, i64)> = rows(&client, sql, |r| (r.get(0), r.get(1))).await;
        let created = i64::try_from(runners.len() + 1).unwrap();
        assert_eq!(
            rows,
            vec![
                ("runner.create".to_owned(), created),
                ("runner.key.rotate".to_owned(), 1)
            ]
        );
    })
    .await;
}

/// Racing creates of one slug across connections: exactly one wins, the
/// others are told the slug is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_of_one_slug() {
    on_db("racing_creates_of_one_slug", async |db| {
        // Separate stores: separate pools, as separate replicas.
        let stores = db.stores(4).await;
        let results = futures::future::join_all((0..32u8).map(|i| {
            let store = stores[usize::from(i) % stores.len()].clone();
            async move {
                store
                    .create_runner(
                        (new_runner("Racer", Some("racer")), key(i)),
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
                    .create_runner((new_runner("Racer", None), key(100 + i)), &Actor::program())
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
    })
    .await;
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
    on_engines("runner_updates_match_sqlite", async |db, pg, lite| {
        let actor = Actor::program();
        let runners: &[(&str, &str, u8, &[&str])] = &[
            ("one", "one", 0, &[]),
            ("two", "two", 1, &[]),
            ("three", "three", 2, &[]),
        ];
        create_alike(&lite, &pg, &[], runners).await;
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
            let (a, b) = both!(
                lite,
                pg,
                update::<Runners>(runner(target), changes.clone(), &actor)
            );
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
                let ((lite_page, lite_total), (pg_page, pg_total)) =
                    unwrap_both(both!(lite, pg, list_runners(q.clone())));
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
        unwrap_both(both!(
            lite,
            pg,
            rotate_runner_key((runner("three"), key(10)), &actor)
        ));
        assert!(pg.heartbeat(&third).await.unwrap().is_none());
        // Rotating an archived runner: 409 on both.
        let (a, b) = both!(
            lite,
            pg,
            rotate_runner_key((runner("two"), key(11)), &actor)
        );
        assert!(matches!(a, Err(StoreError::RunnerArchived(_))), "{a:?}");
        assert!(matches!(b, Err(StoreError::RunnerArchived(_))), "{b:?}");

        let client = connect(&db.config).await;
        let sql = "SELECT action, changes FROM audit WHERE action = 'runner.update' ORDER BY id";
        let pg_trail: Vec<(String, serde_json::Value)> =
            rows(&client, sql, |r| (r.get(0), r.get(1))).await;
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
        let view = |rows: Vec<crate::store::AuditRow>| {
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
        let audit = async |q| pg.audit(q).await.unwrap().0;
        for runner in ["uno", "one", "two", "three", "nobody"] {
            let a = view(lite.audit(None, Some(runner.to_owned())).await.unwrap());
            let b = view(audit(AuditQuery::new(None, Some(runner.to_owned()))).await);
            assert_eq!(a, b, "{runner}");
        }
        assert_eq!(
            view(lite.audit(None, None).await.unwrap()),
            view(audit(AuditQuery::new(None, None)).await)
        );
        let later = crate::store::now() + Duration::seconds(1);
        assert!(audit(AuditQuery::new(Some(later), None)).await.is_empty());
        let earlier = crate::store::now() - Duration::hours(1);
        assert_eq!(
            audit(AuditQuery::new(Some(earlier), None)).await.len(),
            lite.audit(Some(earlier), None).await.unwrap().len()
        );
        let uuid = pg.item(&runner("uno")).await.unwrap().uuid.to_string();
        assert_eq!(
            view(audit(AuditQuery::new(None, Some(uuid))).await),
            view(audit(AuditQuery::new(None, Some("uno".into()))).await)
        );
        // A page, newest first, of one action's rows (and a prefix of
        // actions): the same on both engines, with the same total.
        for action in ["runner.update", "runner", "runner.spec", "run"] {
            let q = AuditQuery {
                action: Some(action.to_owned()),
                newest_first: true,
                page: Some((2, 2)),
                ..AuditQuery::default()
            };
            let (a, a_total) = lite.audit_page(q.clone()).await.unwrap();
            let (b, b_total) = pg.audit(q).await.unwrap();
            assert_eq!((view(a), a_total), (view(b), b_total), "{action}");
        }
        let q = |action: &str| AuditQuery {
            action: Some(action.to_owned()),
            ..AuditQuery::default()
        };
        let (rows, total) = pg.audit(q("runner")).await.unwrap();
        assert!(total >= 3 && rows.len() as u64 == total, "{total}");
        assert!(rows.iter().all(|r| r.action.starts_with("runner.")));
        assert_eq!(
            pg.audit(q("run")).await.unwrap().1,
            0,
            "not a prefix of runner."
        );
    })
    .await;
}

/// A bulk import inserts every runner or none (a taken slug: nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_all_or_nothing() {
    on_db("import_is_all_or_nothing", async |db| {
        let pg = db.store().await;
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
    })
    .await;
}

fn slugs_of(rows: &[RunnerRow]) -> Vec<&str> {
    rows.iter().map(|r| r.slug.as_str()).collect()
}
