//! The signing key, users and API tokens, against SQLite's.

use chrono::Duration;
use uuid::Uuid;

use super::{audit_actions, on_engines, secret_bytes};
use crate::store::StoreError;
use crate::store::model::{Actor, NewApiToken};
use crate::store::operations::TokenOps;

fn sign() -> crate::store::Sign {
    Box::new(|secret: &[u8], user: Uuid, jti: Uuid| format!("{}.{user}.{jti}", secret.len()))
}

/// The signing key, users and API tokens behave as on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_match_sqlite() {
    on_engines("tokens_match_sqlite", async |db, pg, lite| {
        let actor = Actor::program();
        let issued = crate::store::now();
        let expires = issued + Duration::days(30);

        assert!(!pg.has_admin().await.unwrap());
        assert_eq!(pg.signing_secret().await.unwrap().generation, 1);
        assert_eq!(
            secret_bytes(&pg.signing_secret().await.unwrap()).len(),
            crate::store::SIGNING_KEY_BYTES
        );

        let new = |user: &str, admin| NewApiToken {
            user_name: user.to_owned(),
            admin,
            issued,
            expires,
            sign: sign(),
        };
        let mut jtis = Vec::new();
        let mut lite_jtis = Vec::new();
        for (user, admin) in [("admin", true), ("ci", false), ("ci", true), ("ops", false)] {
            let (jti, token) = pg.issue_api_token(new(user, admin), &actor).await.unwrap();
            assert!(token.ends_with(&jti.to_string()));
            let (lite_jti, _) = lite
                .issue_api_token(new(user, admin), &actor)
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
        let view =
            |t: &crate::store::ApiTokenRow| (t.user_name.clone(), t.admin, t.created, t.expires);
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
        let (lite_actions, pg_actions) = audit_actions(&lite, db).await;
        assert_eq!(pg_actions, lite_actions);
    })
    .await;
}
