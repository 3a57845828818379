//! The SQLite file's rules: one server at a time on it, and no file of
//! another user opened, migrated or made owner-only (the database holds the
//! signing secret).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::assert_clear_failure;
use crate::serving::{BIN, Serving, run, stderr, stdout};

/// Runs `runners-server ARGS`, which must end by itself within 20 s: a
/// command that is refused ends at once, one that serves instead is killed
/// and fails the test.
fn finished(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let late = wait.recv_timeout(Duration::from_secs(20)).is_err();
        if late {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        late
    });
    let output = child.wait_with_output().unwrap();
    let _ = done.send(());
    assert!(
        !watchdog.join().unwrap(),
        "{args:?} was not refused: it ran for 20 s: {}",
        stderr(&output)
    );
    output
}

/// A second `serve` (or `migrate`) on a SQLite file a server is serving is
/// refused with one line naming the process that holds the lock; the
/// commands that work beside a running server still do; the lock goes with
/// the process, however it ends.
#[test]
fn a_second_server_on_one_sqlite_file_is_refused_naming_the_first() {
    let mut server = Serving::start();
    let db = server.db();
    let db_arg = db.to_str().unwrap();
    let holder = format!("held by process {}", server.child.id());
    for args in [
        vec!["serve", "--bind", "127.0.0.1:0", "--db", db_arg],
        // `serve` is the default command.
        vec!["--bind", "127.0.0.1:0", "--db", db_arg],
        vec![
            "migrate",
            "--from",
            db_arg,
            "--to",
            "postgres://runners@127.0.0.1:1/none",
        ],
    ] {
        let output = finished(&args);
        assert_clear_failure(&output, &holder);
        assert!(stderr(&output).contains("runners.db.lock"), "{args:?}");
    }

    let output = run(&[
        "token", "create", "--user", "ops", "--admin", "--db", db_arg,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let token = stdout(&output).trim().to_owned();
    assert_eq!(server.list_status(&token), 200);
    for args in [["token", "list"], ["audit", "--json"]] {
        let output = run(&[args[0], args[1], "--db", db_arg]);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    let mut lock = db.clone().into_os_string();
    lock.push(".lock");
    let lock = std::fs::metadata(lock).unwrap();
    assert_eq!(lock.permissions().mode() & 0o777, 0o600);

    // Killed (no chance to clean up): the next start takes the lock.
    server.restart();
    assert_eq!(server.list_status(&token), 200);
}

/// `token create --user USER --db DB`, which must succeed.
fn token_create(db: &std::path::Path, user: &str) {
    let output = run(&[
        "token",
        "create",
        "--user",
        user,
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// The user `nobody`'s id.
fn nobody() -> u32 {
    let output = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    assert!(
        output.status.success(),
        "no user nobody: {}",
        stderr(&output)
    );
    stdout(&output).trim().parse().unwrap()
}

/// A database path that leads to another user's file, through a symbolic
/// link or directly, is refused by every command with one line naming it,
/// before anything is written: the file keeps its content, mode and owner,
/// and nothing is made beside it. A link to a file of the server's own
/// user still works.
#[test]
fn another_users_files_are_refused_directly_or_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    std::fs::write(&probe, "").unwrap();
    if std::fs::metadata(&probe).unwrap().uid() != 0 {
        eprintln!("SKIPPED: giving a file to another user (nobody) needs root, as CI has");
        return;
    }
    let nobody = nobody();
    let theirs = dir.path().join("theirs.db");
    std::fs::write(&theirs, "").unwrap();
    std::os::unix::fs::chown(&theirs, Some(nobody), Some(nobody)).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    // A database of this user's own whose -wal file is another user's.
    let ours = dir.path().join("ours.db");
    token_create(&ours, "ci");
    let their_wal = dir.path().join("ours.db-wal");
    std::fs::write(&their_wal, "").unwrap();
    std::os::unix::fs::chown(&their_wal, Some(nobody), None).unwrap();

    for (db, named) in [(&link, &link), (&theirs, &theirs), (&ours, &their_wal)] {
        let db = db.to_str().unwrap();
        for args in [
            vec!["token", "create", "--user", "x", "--admin", "--db", db],
            vec!["serve", "--bind", "127.0.0.1:0", "--db", db],
            vec!["key", "rotate", "--db", db],
            vec!["audit", "--db", db],
        ] {
            let output = finished(&args);
            assert_clear_failure(&output, "belongs to another user");
            assert!(
                stderr(&output).contains(&format!("{} ", named.display())),
                "{args:?}: {}",
                stderr(&output)
            );
        }
    }
    let meta = std::fs::metadata(&theirs).unwrap();
    assert_eq!(meta.len(), 0, "nothing written into their file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o644, "its mode kept");
    assert_eq!(meta.uid(), nobody, "its owner kept");
    for file in ["theirs.db", "link.db"] {
        for suffix in ["-wal", "-shm", ".lock"] {
            let beside = dir.path().join(format!("{file}{suffix}"));
            assert!(!beside.exists(), "{} was made", beside.display());
        }
    }
    assert_eq!(std::fs::metadata(&their_wal).unwrap().len(), 0);

    // A link to this user's own database works.
    std::fs::remove_file(&their_wal).unwrap();
    let mine = dir.path().join("mine.db");
    std::os::unix::fs::symlink(&ours, &mine).unwrap();
    token_create(&mine, "y");

    // A link planted where the lock goes, to a file of this user's own
    // (another user may write into a shared directory): `serve` refuses
    // to follow it, and the file it names is left as it was.
    let kept = dir.path().join("kept");
    std::fs::write(&kept, "keep").unwrap();
    let planted = dir.path().join("ours.db.lock");
    std::fs::remove_file(&planted).ok();
    std::os::unix::fs::symlink(&kept, &planted).unwrap();
    let db = ours.to_str().unwrap();
    let output = finished(&["serve", "--bind", "127.0.0.1:0", "--db", db]);
    assert_clear_failure(&output, "is a symbolic link");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "keep");
}
