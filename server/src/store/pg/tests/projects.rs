//! Projects (create, list, update, delete) and project and user keys
//! (create, list, rename, revoke, found by their hash) against SQLite's,
//! compared whole as `runs.rs` compares ([`norm`]).

use chrono::Duration;
use uuid::Uuid;

use super::runs::{new_project, norm, project, same, t0};
use super::{audit_actions, key, on_engines, query, unwrap_both};
use crate::store::Store;
use crate::store::model::{
    Actor, KeyOwner, KeyQuery, KeyRef, KeyRename, NewKey, ProjectChanges, Projects, Visibility,
};
use crate::store::operations::{ItemOps, KeyOps, ProjectOps, TokenOps};
use crate::validate::{Direction, Ref, Sort};

fn key_query(revoked: bool, name: Option<&str>, search: Option<&str>) -> KeyQuery {
    KeyQuery {
        name: name.map(str::to_owned),
        search: search.map(str::to_owned),
        revoked,
        descending: false,
        per_page: 255,
        page: 1,
    }
}

/// Projects made, listed, updated and deleted alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_match_sqlite() {
    on_engines("projects_match_sqlite", async |db, pg, lite| {
        let actor = Actor::program();
        let (a, b) = unwrap_both(both!(lite, pg, organization()));
        assert_eq!(norm(&a), norm(&b));
        for (name, slug) in [
            ("Alpha", None),
            ("alpha", Some("alpha-lower")),
            ("Ünïcödé Bench", None),
            ("50% off", None),
            ("Zeta", Some("zeta")),
        ] {
            same(
                both!(lite, pg, create_project(new_project(name, slug), &actor)),
                name,
            );
        }
        // A slug taken: 409; a generated one taken: its random suffix.
        same(
            both!(
                lite,
                pg,
                create_project(new_project("x", Some("zeta")), &actor)
            ),
            "taken",
        );
        let (a, b) = unwrap_both(both!(
            lite,
            pg,
            create_project(new_project("Zeta", None), &actor)
        ));
        assert!(a.slug.starts_with("zeta-") && b.slug.starts_with("zeta-"));
        let suffixed = (a.slug, b.slug);
        for sort in [Sort::Name, Sort::Created] {
            for direction in [Direction::Asc, Direction::Desc] {
                for search in [
                    None,
                    Some("alpha"),
                    Some("ünï"),
                    Some("%"),
                    Some("zeta"),
                    Some("a"),
                ] {
                    for (per_page, page) in [(255, 1), (2, 2), (2, 9)] {
                        let q = query(sort, direction, per_page, page, None, search);
                        let (a, b) = unwrap_both(both!(lite, pg, list_projects(q.clone())));
                        let a = norm(&a).replace(&suffixed.0, "zeta-S");
                        let b = norm(&b).replace(&suffixed.1, "zeta-S");
                        assert_eq!(a, b, "{q:?}");
                    }
                }
            }
        }
        // Updates: name, slug, URL removed, visibility; a slug taken; none.
        let change = ProjectChanges {
            name: Some("Alpha Prime".to_owned().try_into().unwrap()),
            slug: Some("prime".to_owned().try_into().unwrap()),
            url: Some(None),
            visibility: Some(Visibility::Private),
            ..ProjectChanges::default()
        };
        for (slug, change) in [
            ("alpha", change),
            (
                "prime",
                ProjectChanges {
                    slug: Some("zeta".to_owned().try_into().unwrap()),
                    ..ProjectChanges::default()
                },
            ),
            ("prime", ProjectChanges::default()),
            ("nowhere", ProjectChanges::default()),
        ] {
            same(
                both!(
                    lite,
                    pg,
                    update::<Projects>(project(slug), change.clone(), &actor)
                ),
                slug,
            );
        }
        same(both!(lite, pg, item::<Projects>(&project("prime"))), "item");
        same(
            both!(lite, pg, delete_project(project("prime"), &actor)),
            "delete",
        );
        same(
            both!(lite, pg, delete_project(project("prime"), &actor)),
            "again",
        );
        same(both!(lite, pg, item::<Projects>(&project("prime"))), "gone");
        same(both!(lite, pg, user(Ref::Slug("nobody".into()))), "no user");
        let (lite_actions, pg_actions) = audit_actions(&lite, db).await;
        assert_eq!(pg_actions, lite_actions);
    })
    .await;
}

/// A user `name` on both engines (made by issuing it an API token): its
/// UUID on SQLite and on PostgreSQL.
pub(super) async fn user_on_both(lite: &Store, pg: &super::PgStore, name: &str) -> (Uuid, Uuid) {
    let new = || crate::store::model::NewApiToken {
        user_name: name.to_owned(),
        admin: false,
        issued: crate::store::now(),
        expires: crate::store::now() + Duration::days(1),
        sign: Box::new(|_: &[u8], _: Uuid, _: Uuid| String::new()),
    };
    lite.issue_api_token(new(), &Actor::program())
        .await
        .unwrap();
    pg.issue_api_token(new(), &Actor::program()).await.unwrap();
    let by = Ref::Slug(name.to_owned());
    let (a, b) = unwrap_both(both!(lite, pg, user(by.clone())));
    (a.uuid, b.uuid)
}

/// Project keys and user keys made, listed, renamed, revoked and found by
/// their hash alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_match_sqlite() {
    on_engines("keys_match_sqlite", async |db, pg, lite| {
        let actor = Actor::program();
        let (lp, pp) = unwrap_both(both!(
            lite,
            pg,
            create_project(new_project("Keyed", None), &actor)
        ));
        let (lu, pu) = user_on_both(&lite, &pg, "alice").await;
        let owners = [
            (KeyOwner::Project(lp.uuid), KeyOwner::Project(pp.uuid)),
            (KeyOwner::User(lu), KeyOwner::User(pu)),
        ];
        let expires = t0() + Duration::days(90);
        let mut keys = Vec::new();
        for (i, name) in ["CI key", "ci KEY", "Ünïcödé", "deploy", "deploy"]
            .iter()
            .enumerate()
        {
            for (o, &(lo, po)) in owners.iter().enumerate() {
                let new = |owner| NewKey {
                    owner,
                    name: name.to_string().try_into().unwrap(),
                    hash: key(u8::try_from(i * 2 + o).unwrap()),
                    created: t0(),
                    expires,
                };
                let (a, b) = (
                    lite.create_key(new(lo), &actor).await,
                    pg.create_key(new(po), &actor).await,
                );
                let (a, b) = (a.unwrap(), b.unwrap());
                assert_eq!(norm(&a), norm(&b));
                keys.push((lo, a.uuid, po, b.uuid));
            }
        }
        // A hash taken: an error on both.
        let dup = |owner| NewKey {
            owner,
            name: "dup".to_owned().try_into().unwrap(),
            hash: key(0),
            created: t0(),
            expires,
        };
        assert!(lite.create_key(dup(owners[0].0), &actor).await.is_err());
        assert!(pg.create_key(dup(owners[0].1), &actor).await.is_err());
        // Rename (to the same name: nothing), revoke (twice: the first time
        // kept), another owner's key: not found.
        let (lo, lk, po, pk) = keys[2];
        let name = |n: &str| n.to_owned().try_into().unwrap();
        let kref = |owner, uuid| KeyRef { owner, uuid };
        let rename = |owner, uuid, to: &str| KeyRename {
            key: kref(owner, uuid),
            name: name(to),
        };
        same(
            (
                lite.rename_key(rename(lo, lk, "renamed"), &actor).await,
                pg.rename_key(rename(po, pk, "renamed"), &actor).await,
            ),
            "rename",
        );
        same(
            (
                lite.rename_key(rename(lo, lk, "renamed"), &actor).await,
                pg.rename_key(rename(po, pk, "renamed"), &actor).await,
            ),
            "same name",
        );
        let (lo2, lk2, po2, pk2) = keys[5];
        same(
            (
                lite.revoke_key(kref(lo2, lk2), &actor).await,
                pg.revoke_key(kref(po2, pk2), &actor).await,
            ),
            "revoke",
        );
        same(
            (
                lite.revoke_key(kref(lo2, lk2), &actor).await,
                pg.revoke_key(kref(po2, pk2), &actor).await,
            ),
            "revoke again",
        );
        same(
            (lite.key(kref(lo2, lk)).await, pg.key(kref(po2, pk)).await),
            "not the owner's",
        );
        same(
            (
                lite.rename_key(rename(lo2, lk, "x"), &actor).await,
                pg.rename_key(rename(po2, pk, "x"), &actor).await,
            ),
            "rename not the owner's",
        );
        same(
            (lite.key(kref(lo2, lk2)).await, pg.key(kref(po2, pk2)).await),
            "revoked key",
        );
        for (l, p) in owners {
            for q in [
                key_query(false, None, None),
                key_query(true, None, None),
                key_query(true, Some("deploy"), None),
                key_query(false, None, Some("key")),
                key_query(true, None, Some("ÜNÏ")),
                key_query(true, None, Some("%")),
                key_query(true, Some("deploy"), Some("plo")),
                KeyQuery {
                    descending: true,
                    per_page: 2,
                    page: 2,
                    ..key_query(true, None, None)
                },
                KeyQuery {
                    per_page: 1,
                    page: 2,
                    ..key_query(true, None, Some("ci"))
                },
                KeyQuery {
                    per_page: 2,
                    page: 9,
                    ..key_query(true, None, None)
                },
                KeyQuery {
                    per_page: 2,
                    page: 9,
                    ..key_query(true, None, Some("y"))
                },
            ] {
                same(
                    (
                        lite.list_keys(l, q.clone()).await,
                        pg.list_keys(p, q.clone()).await,
                    ),
                    &format!("{q:?}"),
                );
            }
        }
        // A search by a piece of a key's own UUID finds it on each engine.
        let (lo, lk, po, pk) = keys[4];
        let piece = |u: Uuid| u.to_string()[24..].to_uppercase();
        let (a, b) = (
            lite.list_keys(lo, key_query(false, None, Some(&piece(lk))))
                .await
                .unwrap(),
            pg.list_keys(po, key_query(false, None, Some(&piece(pk))))
                .await
                .unwrap(),
        );
        assert_eq!((a.1, b.1), (1, 1));
        assert_eq!(norm(&a), norm(&b));
        for k in [0u8, 1, 5, 99] {
            same(both!(lite, pg, key_holder(key(k))), &format!("key {k}"));
        }
        let (lite_actions, pg_actions) = audit_actions(&lite, db).await;
        assert_eq!(pg_actions, lite_actions);
    })
    .await;
}
