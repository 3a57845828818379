//! The database a `--db` value names, and how it may be shown.

use std::path::{Path, PathBuf};

/// The database a `--db` value names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbName {
    /// A SQLite file: a path, or `sqlite://PATH`.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`, in any case;
    /// here with its scheme in lower case, and no surrounding spaces).
    Postgres(String),
}

impl DbName {
    /// Reads a `--db` value. A value that is a URL of another kind
    /// (`mysql://…`, `postgres:host` without `//`), or a PostgreSQL
    /// connection string in libpq's `key=value` form, is refused rather
    /// than taken for a file name (which would start a new, empty registry
    /// named after it); the error never repeats the value, which may hold
    /// a password.
    pub fn parse(db: &Path) -> anyhow::Result<Self> {
        let Some(text) = db.to_str() else {
            return Ok(Self::Sqlite(db.to_owned()));
        };
        let trimmed = text.trim();
        let lower = trimmed.to_ascii_lowercase();
        for scheme in ["postgres://", "postgresql://"] {
            if lower.starts_with(scheme) {
                return Ok(Self::Postgres(format!(
                    "{scheme}{}",
                    &trimmed[scheme.len()..]
                )));
            }
        }
        if lower.starts_with("sqlite://") {
            return Ok(Self::Sqlite(PathBuf::from(&trimmed["sqlite://".len()..])));
        }
        // A scheme whose `://` lost a character.
        let mangled = ["sqlite:", "postgres//", "postgresql//"];
        if let Some(near) = mangled.iter().find(|m| lower.starts_with(*m)) {
            let near = near.trim_end_matches(['/', ':']);
            anyhow::bail!(
                "the database starts like a {near}:// URL but is not one: give a file path, \
                 sqlite://PATH, or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            );
        }
        const USE: &str = "give a file path, sqlite://PATH, or \
                           postgres://USER:PASSWORD@HOST:PORT/DATABASE";
        if let Some((scheme, _)) = trimmed.split_once(':')
            && (trimmed.contains("://")
                || scheme.eq_ignore_ascii_case("postgres")
                || scheme.eq_ignore_ascii_case("postgresql"))
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            anyhow::bail!(
                "the database is a URL of a kind this server does not take ({scheme}:…): {USE}"
            );
        }
        let libpq = [
            "host", "hostaddr", "port", "dbname", "user", "password", "sslmode",
        ];
        if trimmed.split_whitespace().any(|word| {
            word.split_once('=')
                .is_some_and(|(key, _)| libpq.contains(&key.to_ascii_lowercase().as_str()))
        }) {
            anyhow::bail!(
                "the database looks like a PostgreSQL key=value connection string, which this \
                 server does not take: {USE}"
            );
        }
        Ok(Self::Sqlite(db.to_owned()))
    }
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &Path) -> bool {
    matches!(DbName::parse(db), Ok(DbName::Postgres(_)))
}

/// `db` as it may be shown (logged, printed): a PostgreSQL URL without its
/// password, wherever it was written (`user:PASSWORD@`, `?password=`).
pub fn db_shown(db: &Path) -> String {
    let url = match DbName::parse(db) {
        Ok(DbName::Postgres(url)) => url,
        Ok(DbName::Sqlite(_)) => return db.display().to_string(),
        // Refused (not shown: it may hold a password).
        Err(_) => return "(a database value that is refused)".to_owned(),
    };
    let Some(mut url) = url::Url::parse(&url).ok() else {
        return "postgres://(a URL that does not parse)".to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("REDACTED"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "REDACTED".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn passwords_are_never_shown() {
        for (db, shown) in [
            ("runners.db", "runners.db"),
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:REDACTED@h:5432/db",
            ),
            (
                "postgresql://u@h/db?password=secret&sslmode=require",
                "postgresql://u@h/db?password=REDACTED&sslmode=require",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            // Any case, and spaces around: still PostgreSQL.
            (" POSTGRES://u:secret@h/db", "postgres://u:REDACTED@h/db"),
            // Refused values are not shown at all.
            ("postgres:u:secret@h", "(a database value that is refused)"),
            (
                "host=h password=secret dbname=d",
                "(a database value that is refused)",
            ),
        ] {
            assert_eq!(super::db_shown(Path::new(db)), shown);
        }
    }

    /// A value that is neither a path nor a URL this server takes is
    /// refused, never taken for a file name, and the refusal does not
    /// repeat it.
    #[test]
    fn a_mistyped_database_is_refused_not_made_a_file() {
        use super::DbName;
        let parse = |db: &str| DbName::parse(Path::new(db));
        for (db, engine) in [
            ("runners.db", DbName::Sqlite("runners.db".into())),
            (
                "./a=b/runners.db",
                DbName::Sqlite("./a=b/runners.db".into()),
            ),
            ("sqlite:///tmp/r.db", DbName::Sqlite("/tmp/r.db".into())),
            ("postgres://h/d", DbName::Postgres("postgres://h/d".into())),
            (
                "PostgreSQL://h/d",
                DbName::Postgres("postgresql://h/d".into()),
            ),
        ] {
            assert_eq!(parse(db).unwrap(), engine, "{db}");
        }
        for db in [
            "postgres:u:S3cret@h",
            "postgres//u:S3cret@h/d",
            "sqlite:u:S3cret@h",
            "postgress://u:S3cret@h/d",
            "pg://u:S3cret@h/d",
            "mysql://u:S3cret@h/d",
            "host=h password=S3cret dbname=d",
            "dbname=d user=u password=S3cret",
        ] {
            let refused = format!("{:#}", parse(db).unwrap_err());
            assert!(!refused.contains("S3cret"), "{db}: {refused}");
            assert!(refused.contains("postgres://USER"), "{db}: {refused}");
        }
    }
}
