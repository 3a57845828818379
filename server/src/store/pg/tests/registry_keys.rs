//! The keys that sign registry tokens, against SQLite's: one made at open,
//! the newest first, rotation and retirement with their audit rows.

use super::{audit_actions, on_engines};
use crate::store::model::{Actor, NewRegistryKey, RegistryKeyRow};
use crate::store::operations::RegistryKeyOps;

/// Each key's ID, newest first, and whether the key signs with what it
/// was given (its certificate and private key kept byte for byte).
fn kids(rows: &[RegistryKeyRow]) -> Vec<String> {
    rows.iter().map(|r| r.kid.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_keys_match_sqlite() {
    on_engines("registry_keys_match_sqlite", async |db, pg, lite| {
        let actor = Actor::program();
        // One key at open, a key of its own on each database.
        let first = pg.registry_keys().await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(lite.registry_keys().await.unwrap().len(), 1);
        assert!(first[0].retired.is_none());

        // Nothing to retire yet.
        assert_eq!(
            pg.retire_registry_keys(&actor).await.unwrap(),
            Vec::<String>::new()
        );
        assert!(lite.retire_registry_keys(&actor).await.unwrap().is_empty());

        let (a, b) = (
            NewRegistryKey::generate().unwrap(),
            NewRegistryKey::generate().unwrap(),
        );
        for new in [&a, &b] {
            pg.rotate_registry_key(new.clone(), &actor).await.unwrap();
            lite.rotate_registry_key(new.clone(), &actor).await.unwrap();
        }
        let rows = pg.registry_keys().await.unwrap();
        assert_eq!(
            kids(&rows),
            [b.kid.clone(), a.kid.clone(), first[0].kid.clone()]
        );
        assert_eq!(
            kids(&lite.registry_keys().await.unwrap())[..2],
            kids(&rows)[..2]
        );
        assert_eq!(rows[0].expose(), b.private_key.as_slice());
        assert_eq!(rows[0].certificate, b.certificate);

        // Every key but the newest, once.
        let retired = pg.retire_registry_keys(&actor).await.unwrap();
        assert_eq!(retired.len(), 2);
        assert!(retired.contains(&a.kid) && retired.contains(&first[0].kid));
        assert_eq!(lite.retire_registry_keys(&actor).await.unwrap().len(), 2);
        assert_eq!(kids(&pg.registry_keys().await.unwrap()), [b.kid.as_str()]);
        assert_eq!(kids(&lite.registry_keys().await.unwrap()), [b.kid.as_str()]);

        // A key ID is one key's.
        assert!(pg.rotate_registry_key(b.clone(), &actor).await.is_err());
        assert!(lite.rotate_registry_key(b.clone(), &actor).await.is_err());

        let (lite_actions, pg_actions) = audit_actions(&lite, db).await;
        assert_eq!(lite_actions, pg_actions);
        assert_eq!(
            pg_actions,
            [
                "registry.key.rotate",
                "registry.key.rotate",
                "registry.key.retire"
            ]
        );
    })
    .await;
}
