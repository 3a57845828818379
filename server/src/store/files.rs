//! The SQLite database's files on disk: whose they may be.
//!
//! - [`check`]: before the database is created, opened, migrated or made
//!   owner-only, every file of it (the database, its `-wal` and `-shm`)
//!   that exists must belong to the user the process runs as,
//!   reached directly or through a symbolic link. The database holds the
//!   signing secret: written into another user's file, it would be theirs
//!   to read; and another user's database is not this server's to migrate
//!   or `chmod`.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The files of a database at a path: the database and SQLite's two.
const FILES: [&str; 3] = ["", "-wal", "-shm"];

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the database at `path` really is: SQLite follows a symbolic link
/// to the database and keeps its `-wal` and `-shm` beside the file it
/// leads to. `path` itself where that cannot be told
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
