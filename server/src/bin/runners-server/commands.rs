//! The commands that work on the database directly (while a server runs
//! or not).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use runners_server::auth::{self, DEFAULT_API_TOKEN_TTL_DAYS};
use runners_server::store::Actor;
use runners_server::{Store, validate};

use crate::args::{DbArg, TokenCommand};

pub(crate) async fn rotate_key(db: DbArg) -> anyhow::Result<()> {
    let store = open_store(&db.db).await?;
    let revoked = store.rotate_signing_key(&Actor::program()).await?;
    let ttl = chrono::Duration::days(DEFAULT_API_TOKEN_TTL_DAYS);
    let (_, token) = auth::issue_api_token(&store, "admin", true, ttl, &Actor::program()).await?;
    say!(
        "rotated the signing key: {revoked} API token(s) revoked (a running server refuses \
         them within 1 s). The new API token of user `admin`, shown this once:"
    );
    out!("{token}");
    Ok(())
}

pub(crate) async fn audit(
    db: DbArg,
    since: Option<chrono::DateTime<chrono::Utc>>,
    runner: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let store = open_store(&db.db).await?;
    let rows = store.audit(since, runner).await?;
    if !json {
        out!("TIME\tUSER\tTOKEN\tACTION\tTARGET\tCHANGES");
    }
    for row in rows {
        if json {
            out!("{}", serde_json::to_string(&row)?);
        } else {
            let dash = || "-".to_owned();
            out!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                row.time.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                row.user.unwrap_or_else(dash),
                row.token.unwrap_or_else(dash),
                row.action,
                row.target_slug.or(row.target_uuid).unwrap_or_else(dash),
                row.changes
            );
        }
    }
    Ok(())
}

/// `migrate --from PATH --to postgres://…`: the rows copied, per table, on
/// stdout.
pub(crate) async fn migrate(from: PathBuf, to: String) -> anyhow::Result<()> {
    let shown = runners_server::store::db_shown(std::path::Path::new(&to));
    // No server may write to the file while it is migrated and copied.
    let _lock = runners_server::store::sqlite::files::lock(&from)?;
    let copied = runners_server::store::migrate::migrate(&from, &to).await?;
    out!("TABLE\tROWS");
    for (table, rows) in &copied.tables {
        out!("{table}\t{rows}");
    }
    say!(
        "copied {} into {shown}: start runners-server with --db on it",
        from.display()
    );
    Ok(())
}

/// Opens the database for a `token` command, saying on stderr if its files
/// had to be made owner-only.
pub(crate) async fn open_store(db: &std::path::Path) -> anyhow::Result<Store> {
    let store = Store::open_db(db, runners_server::store::WRITE_QUEUE_DEFAULT).await?;
    for file in store.tightened() {
        say!(
            "made {} owner-only (0600): it holds the signing secret",
            file.display()
        );
    }
    Ok(store)
}

pub(crate) async fn token_command(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            user,
            admin,
            days,
            db,
        } => {
            validate::name("--user", &user)?;
            let store = open_store(&db.db).await?;
            let ttl = chrono::Duration::days(days);
            let (_, token) =
                auth::issue_api_token(&store, &user, admin, ttl, &Actor::program()).await?;
            out!("{token}");
        }
        TokenCommand::List { db } => {
            let store = open_store(&db.db).await?;
            out!("UUID\tUSER\tADMIN\tCREATED\tEXPIRES\tREVOKED");
            for t in store.list_api_tokens().await? {
                let time =
                    |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
                out!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.uuid,
                    t.user_name,
                    t.admin,
                    time(t.created),
                    time(t.expires),
                    t.revoked.map(time).unwrap_or_else(|| "-".into())
                );
            }
        }
        TokenCommand::Revoke { token, db } => {
            let store = open_store(&db.db).await?;
            store.revoke_api_token(token, &Actor::program()).await?;
            say!("revoked API token {token}; a running server refuses it within 1 s");
        }
    }
    Ok(())
}
