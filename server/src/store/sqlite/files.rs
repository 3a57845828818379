//! The SQLite database's files on disk: whose they may be, and the lock
//! that keeps a second server off one file.
//!
//! - [`check`]: before the database is created, opened, migrated or made
//!   owner-only, every file of it (the database, its `-wal`, `-shm` and
//!   `.lock`) that exists must belong to the user the process runs as,
//!   reached directly or through a symbolic link. The database holds the
//!   signing secret: written into another user's file, it would be theirs
//!   to read; and another user's database is not this server's to migrate
//!   or `chmod`.
//! - [`lock`]: one process at a time serves (or migrates) a SQLite file:
//!   two servers on one file would each dispatch jobs as if alone. `serve`
//!   and `migrate` hold the lock for their whole life; the `token`, `key`
//!   and `audit` commands work beside a running server and do not take it.
//!   PostgreSQL has no such lock: several replicas may share it.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::store::db_name::DbName;

/// What the lock file's name adds to the database's.
const LOCK_SUFFIX: &str = ".lock";

/// The files of a database at a path: the database, SQLite's two, and the
/// lock.
const FILES: [&str; 4] = ["", "-wal", "-shm", LOCK_SUFFIX];

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the database at `path` really is: SQLite follows a symbolic link
/// to the database and keeps its `-wal` and `-shm` beside the file it
/// leads to, and so does the lock. `path` itself where that cannot be told
/// (a file not made yet, in a directory that does not resolve).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    match (
        dir.map_or(std::fs::canonicalize("."), std::fs::canonicalize),
        path.file_name(),
    ) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// Checks, before anything is written, that the database at `path` can be
/// this process's: its directory exists, and each of its files that exists
/// belongs to the user this process runs as (see the module's doc). One
/// line naming the file and the rule, otherwise.
pub(super) fn check(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!(
            "cannot open database {shown}: directory {} does not exist",
            dir.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = rustix::process::geteuid().as_raw();
        let real = resolved(path);
        for base in [path, real.as_path()] {
            for suffix in FILES {
                let file = with_suffix(base, suffix);
                // Absent (or a link to nothing): made by this process, so
                // its own.
                let Ok(meta) = std::fs::metadata(&file) else {
                    continue;
                };
                if meta.uid() == me {
                    continue;
                }
                let is_link =
                    std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink());
                let link = if is_link {
                    format!(" (a symbolic link to {})", resolved(&file).display())
                } else {
                    String::new()
                };
                bail!(
                    "cannot open database {shown}: {}{link} belongs to another user (uid {}), \
                     not to uid {me} this server runs as: it opens, migrates and makes \
                     owner-only only its own user's files, never another's (the database \
                     holds the signing secret)",
                    file.display(),
                    meta.uid()
                );
            }
        }
    }
    Ok(())
}

/// The lock of a SQLite database: held until dropped (at the process's
/// exit, if kept). Whoever holds it wrote its process id into the file.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the lock of the database `db` names, for a process that serves or
/// migrates it (`None` for PostgreSQL, which several processes share): a
/// file `DB.lock` beside the database (the file a symbolic link leads to),
/// locked with the operating system's advisory lock (`flock`), which it
/// releases however the process ends, even by SIGKILL: no stale lock is
/// ever left to remove by hand. If another process holds it, one error
/// that names that process.
pub fn lock(db: &Path) -> anyhow::Result<Option<Lock>> {
    let DbName::Sqlite(path) = DbName::parse(db)? else {
        return Ok(None);
    };
    check(&path)?;
    let shown = path.display();
    let lock = with_suffix(&resolved(&path), LOCK_SUFFIX);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Never through a symbolic link: one planted where the lock goes
        // (a directory others may write to) would have the server create or
        // write a file of the link's choosing.
        let nofollow = rustix::fs::OFlags::NOFOLLOW.bits();
        options
            .mode(0o600)
            .custom_flags(i32::try_from(nofollow).expect("O_NOFOLLOW fits a c_int"));
    }
    let mut file = options.open(&lock).map_err(|e| {
        if std::fs::symlink_metadata(&lock).is_ok_and(|m| m.file_type().is_symlink()) {
            return anyhow::anyhow!(
                "cannot open database {shown}: its lock file {} is a symbolic link, which \
                 the server never follows: remove it",
                lock.display()
            );
        }
        anyhow::anyhow!(
            "cannot open database {shown}: its lock file {} cannot be created or opened \
             (is its directory writable?): {e}",
            lock.display()
        )
    })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim().parse::<u32>() {
                Ok(pid) => format!("process {pid}"),
                Err(_) => "another process".to_owned(),
            };
            bail!(
                "database {shown} is in use: its lock {} is held by {holder}; one \
                 runners-server at a time serves or migrates a SQLite file (several servers \
                 share a PostgreSQL database instead)",
                lock.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            bail!("cannot lock database {shown} ({}): {e}", lock.display())
        }
    }
    // For the message of a process that finds it held; the lock holds
    // without it (a full disk, say).
    let _ = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(Some(Lock { _file: file }))
}
