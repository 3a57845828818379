//! The registry's side of the token service: what distribution's
//! configuration needs (`registry-config`), and the registry keys'
//! rotation and retirement (`key rotate --registry`, `key retire
//! --registry`).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use runners_server::auth::{REGISTRY_ISSUER, REGISTRY_SERVICE};
use runners_server::store::{Actor, NewRegistryKey};

use crate::args::DbArg;
use crate::commands::open_store;

/// How long after a rotation the previous key's last tokens may still be
/// in use with the default token lifetime (600 s) and the registry's 60 s
/// of leeway.
const DEFAULT_TOKENS_OUTLIVE: chrono::Duration = chrono::Duration::seconds(660);

/// The server's database, which must exist: a command that made a fresh
/// one (a mistyped `--db`) would print a bundle no server signs with.
async fn existing_store(db: &DbArg) -> anyhow::Result<runners_server::Store> {
    if !runners_server::store::is_postgres_url(&db.db) && !db.db.exists() {
        anyhow::bail!(
            "no database at {}: point --db (or RUNNERS_DB) at the server's database",
            db.db.display()
        );
    }
    open_store(&db.db).await
}

/// Writes the bundle of every registry key not retired to `bundle`, and
/// prints the `auth` block that names it.
pub(crate) async fn config(db: DbArg, server_url: &str, bundle: &Path) -> anyhow::Result<()> {
    let store = existing_store(&db).await?;
    let keys = store.registry_keys().await?;
    let pem: String = keys.iter().map(|k| k.certificate_pem()).collect();
    std::fs::write(bundle, pem)
        .with_context(|| format!("cannot write the bundle to {}", bundle.display()))?;
    let path = std::path::absolute(bundle).unwrap_or_else(|_| bundle.to_owned());
    let yaml = |text: &str| serde_json::to_string(text).expect("a string serializes");
    out!("auth:");
    out!("  token:");
    out!(
        "    realm: {}",
        yaml(&format!("{server_url}/v0/auth/oci/token"))
    );
    out!("    service: {}", yaml(REGISTRY_SERVICE));
    out!("    issuer: {}", yaml(REGISTRY_ISSUER));
    out!("    rootcertbundle: {}", yaml(&path.to_string_lossy()));
    say!(
        "wrote {} certificate(s) to {}: restart the registry to read them (it reads its \
         bundle only at start)",
        keys.len(),
        path.display()
    );
    Ok(())
}

/// `key rotate --registry`: a new registry key signs from now on.
pub(crate) async fn rotate(db: DbArg) -> anyhow::Result<()> {
    let store = existing_store(&db).await?;
    let new = NewRegistryKey::generate().context("cannot make a registry key")?;
    let kid = new.kid.clone();
    store.rotate_registry_key(new, &Actor::program()).await?;
    say!(
        "rotated the registry key: new registry tokens are signed with it (a running server \
         within 1 s). Write the bundle again (`runners-server registry-config`) and restart the \
         registry now: until then it refuses the new tokens. Once the previous key's tokens \
         have expired (the token TTL and 60 s more), run `runners-server key retire --registry`, \
         write the bundle and restart the registry again. The new key's ID:"
    );
    out!("{kid}");
    Ok(())
}

/// `key retire --registry`: every registry key but the newest leaves the
/// bundle.
pub(crate) async fn retire(db: DbArg) -> anyhow::Result<()> {
    let store = existing_store(&db).await?;
    let keys = store.registry_keys().await?;
    if let Some(newest) = keys.first().filter(|_| keys.len() > 1) {
        let age = chrono::Utc::now() - newest.created;
        if age < DEFAULT_TOKENS_OUTLIVE {
            say!(
                "warning: the newest key is {} s old: tokens the previous key signed in the \
                 last 600 s (the default token lifetime) and 60 s of leeway may still be in use, \
                 and are refused once the registry restarts without it",
                age.num_seconds()
            );
        }
    }
    let retired = store.retire_registry_keys(&Actor::program()).await?;
    if retired.is_empty() {
        say!("no registry key to retire: only the newest is left; the bundle is unchanged");
        return Ok(());
    }
    for kid in &retired {
        out!("{kid}");
    }
    say!(
        "retired {} registry key(s): write the bundle again (`runners-server registry-config`) \
         and restart the registry, which then refuses the tokens they signed",
        retired.len()
    );
    Ok(())
}
