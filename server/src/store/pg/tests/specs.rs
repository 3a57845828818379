//! Specs against SQLite's: creates, updates and the fallback's moves, the
//! specs of a runner, deletes, the audit trail; racing fallbacks.

use super::{
    audit_actions, connect, create_alike, new_spec, on_db, on_engines, one, query, runner, spec,
    spec_shape, unwrap_both,
};
use crate::store::StoreError;
use crate::store::model::{Actor, SpecChanges, Specs};
use crate::store::operations::{ItemOps, RunnerSpecOps, SpecOps};
use crate::validate::{Direction, Sort};

fn spec_change(fallback: Option<bool>, archived: Option<bool>) -> SpecChanges {
    SpecChanges {
        fallback,
        archived,
        ..SpecChanges::default()
    }
}

/// Specs, the fallback's moves and the specs of runners give what SQLite
/// gives, step by step; the audit trails have the same actions in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_match_sqlite() {
    on_engines("specs_match_sqlite", async |db, pg, lite| {
        let actor = Actor::program();
        for (name, slug, fallback) in [
            ("Small", None, false),
            ("Big box", Some("big"), true),
            ("Arm", None, true),
            ("small", Some("small-2"), false),
        ] {
            let (a, b) = unwrap_both(both!(
                lite,
                pg,
                create_spec(new_spec(name, slug, fallback), &actor)
            ));
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
                let ((a, at), (b, bt)) = unwrap_both(both!(lite, pg, list_specs(all(archived))));
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
            let (a, b) = both!(
                lite,
                pg,
                update::<Specs>(spec(target), changes.clone(), &actor)
            );
            match (&a, &b) {
                (Ok(a), Ok(b)) => assert_eq!(spec_shape(a), spec_shape(b), "{target}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{target}"),
                _ => panic!("{target}: SQLite {a:?}, PostgreSQL {b:?}"),
            }
            compare(target).await;
        }

        // The specs of a runner, in the order added.
        create_alike(&lite, &pg, &[], &[("R", "r", 1, &[])]).await;
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
                "add" => {
                    let (a, b) = both!(lite, pg, add_runner_spec((runner("r"), spec(s)), &actor));
                    (a.map(|s| spec_shape(&s)), b.map(|s| spec_shape(&s)))
                }
                _ => {
                    let (a, b) =
                        both!(lite, pg, remove_runner_spec((runner("r"), spec(s)), &actor));
                    (a.map(|()| String::new()), b.map(|()| String::new()))
                }
            };
            match (&a, &b) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                _ => panic!("{op} {s}: SQLite {a:?}, PostgreSQL {b:?}"),
            }
            let (a, b) = unwrap_both(both!(lite, pg, runner_specs(&runner("r"))));
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
            let (a, b) = both!(lite, pg, delete_spec(spec(s), &actor));
            assert_eq!(
                a.as_ref().map_err(ToString::to_string),
                b.as_ref().map_err(ToString::to_string),
                "{s}"
            );
        }
        compare("deleted").await;

        let (lite_actions, pg_actions) = audit_actions(&lite, db).await;
        assert_eq!(pg_actions, lite_actions);
    })
    .await;
}

/// Racing PATCHes making different specs the fallback, over four pools (as
/// four replicas): every one succeeds, and one spec is the fallback after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_fallbacks_leave_one() {
    on_db("racing_fallbacks_leave_one", async |db| {
        let stores = db.stores(4).await;
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
                    let target = spec(&format!("s{i}"));
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
            let fallbacks: i64 = one(
                &client,
                "SELECT count(*) FROM specs WHERE fallback IS NOT NULL",
                &[],
            )
            .await;
            assert_eq!(fallbacks, 1, "round {round}");
        }
    })
    .await;
}
