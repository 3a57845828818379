//! A full disk: the database on a small tmpfs, filled while clients write.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use futures::future::join_all;
use runners_sdk::Error;
use runners_tests::new_runner;
use uuid::Uuid;

use super::{Serving, block_on};

/// A tmpfs mounted over a directory, unmounted (and the directory
/// removed) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) over `dir`;
    /// `None` where mounting is not allowed (not root).
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fills the file system of `dir` with one file, up to ENOSPC, then gives
/// `room` bytes back; returns the file.
fn fill(dir: &Path, room: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = file.sync_all();
    file.set_len(written.saturating_sub(room)).unwrap();
    path
}

/// Clients write while the disk fills up: every answer is 201 or 503 (`the
/// disk is full`), never another 5xx; once space is freed writes succeed
/// again; after SIGKILL every acknowledged write is there, nothing else is,
/// and the audit trail has exactly one row per acknowledged write.
#[test]
fn a_full_disk_refuses_writes_cleanly_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(dir.path(), "4m") else {
        eprintln!("SKIPPED a_full_disk_…: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let mut server = Serving::start_in(tempfile::TempDir::new_in(dir.path()).unwrap());
    let token = server.bootstrap_token().unwrap();
    let client = server.admin();
    let filler = fill(server.db().parent().unwrap(), 128 * 1024);
    let (acked, refused) = block_on(async {
        let mut acked = BTreeSet::new();
        let mut refused = 0;
        for round in 0..200 {
            let creates = (0..8).map(|i| {
                client
                    .runners_post()
                    .body(new_runner(
                        &format!("filling {round} {i} {}", "x".repeat(40)),
                        None,
                    ))
                    .send()
            });
            for answer in join_all(creates).await {
                match answer {
                    Ok(created) => {
                        acked.insert(created.into_inner().uuid);
                    }
                    Err(Error::ErrorResponse(e)) if e.status() == 503 => {
                        assert!(e.message.contains("disk is full"), "{}", e.message);
                        assert!(e.headers().contains_key("retry-after"));
                        refused += 1;
                    }
                    Err(other) => panic!("with the disk full: {other:?}"),
                }
            }
            if refused >= 40 {
                break;
            }
        }
        (acked, refused)
    });
    assert!(
        refused >= 40,
        "the disk never filled: {} acknowledged",
        acked.len()
    );

    eprintln!(
        "disk full: {} writes acknowledged, {refused} refused",
        acked.len()
    );
    // Space comes back: writes work again, on the same running server.
    std::fs::remove_file(&filler).unwrap();
    let after = block_on(client.runners_post().body(new_runner("after", None)).send());
    let after = after.expect("a write once space is freed").into_inner();

    server.kill();
    server.restart();
    let client = runners_sdk::client_with_token(&server.url, &token).unwrap();
    let mut expected: BTreeSet<Uuid> = acked;
    expected.insert(after.uuid);
    let mut found = BTreeSet::new();
    block_on(async {
        for page in 1u32.. {
            let runners = client
                .runners_get()
                .per_page(255u32)
                .page(page)
                .send()
                .await
                .unwrap()
                .into_inner();
            if runners.is_empty() {
                break;
            }
            found.extend(runners.into_iter().map(|r| r.uuid));
        }
    });
    assert_eq!(found, expected, "exactly the acknowledged writes survived");
    let conn = rusqlite::Connection::open(server.db()).unwrap();
    let audited: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'runner.create'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        audited as usize,
        expected.len(),
        "one audit row per acknowledged write"
    );
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
