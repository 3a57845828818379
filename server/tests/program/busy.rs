//! A busy database: another process holds SQLite's write lock.

use std::time::{Duration, Instant};

use runners_sdk::Error;

use runners_tests::new_runner;

use super::{Serving, block_on};

#[test]
fn writes_answer_503_while_another_process_holds_the_lock_and_recover() {
    let server = Serving::start();
    let db = server.db();
    let client = server.admin();
    block_on(async {
        client
            .runners_post()
            .body(new_runner("before", None))
            .send()
            .await
            .unwrap();

        // This test process is the other process, as `sqlite3 runners.db
        // 'BEGIN IMMEDIATE; ...'` would be.
        let holder = hold_write_lock(&db);

        let started = Instant::now();
        let read = client.runners_get().send().await.unwrap();
        assert_eq!(read.into_inner().len(), 1, "reads keep working");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "reads do not wait"
        );

        let started = Instant::now();
        let refused = client
            .runners_post()
            .body(new_runner("during", None))
            .send()
            .await;
        let waited = started.elapsed();
        let Err(Error::ErrorResponse(refused)) = refused else {
            panic!("expected 503, got {refused:?}");
        };
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.error_code.as_deref(), Some("ServiceUnavailable"));
        assert!(refused.message.contains("busy"), "{}", refused.message);
        let retry_after = refused.headers().get("retry-after").expect("Retry-After");
        assert!(retry_after.to_str().unwrap().parse::<u64>().is_ok());
        assert!(
            waited >= Duration::from_secs(4),
            "it waited out the busy timeout first: {waited:?}"
        );

        release_and_write_again(holder, &client).await;
        let names: Vec<String> = client
            .runners_get()
            .send()
            .await
            .unwrap()
            .into_inner()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["after", "before"], "the refused write left nothing");
    });
}

/// Hundreds of writes at once while another process holds the lock: each
/// waits its own busy timeout from when it arrived and is answered 503,
/// none later (the timeout used to run per batch of 128, so the last waited
/// 30 s and more).
#[test]
fn each_write_waits_its_own_busy_timeout_however_many_are_queued() {
    let server = Serving::start();
    let client = server.admin();
    let holder = hold_write_lock(&server.db());
    block_on(async {
        let mut slowest = Duration::ZERO;
        for (refused, took) in refused_creates(&client, 700).await {
            assert_eq!(refused.status(), 503);
            slowest = slowest.max(took);
        }
        assert!(
            slowest < Duration::from_secs(8),
            "the last write was answered after {slowest:?}"
        );
        release_and_write_again(holder, &client).await;
    });
}

/// `--write-queue`: with the lock held elsewhere and more writes than the
/// queue holds, the ones that do not fit are answered 503 with Retry-After
/// at once, not after the busy timeout.
#[test]
fn writes_beyond_the_write_queue_are_refused_at_once() {
    let server = super::net::Net::start(&["--write-queue=8"], None, false);
    let client = runners_sdk::client_with_token(&server.url, &server.token).unwrap();
    let db = server.db();
    block_on(async {
        let holder = hold_write_lock(&db);
        let mut at_once = 0;
        for (refused, took) in refused_creates(&client, 40).await {
            assert_eq!(refused.status(), 503);
            assert!(refused.headers().contains_key("retry-after"));
            if refused.message.contains("too many writes") {
                assert!(took < Duration::from_secs(4), "refused after {took:?}");
                at_once += 1;
            } else {
                assert!(refused.message.contains("busy"), "{}", refused.message);
            }
        }
        // The queue's 8 waited their busy timeout; every other was refused
        // at once.
        assert_eq!(at_once, 32, "refused at once, of 40");
        holder.execute_batch("ROLLBACK").unwrap();
    });
}

/// Sends `count` creates at once, each expected to be refused: each
/// refusal, with how long after the first was sent it came.
async fn refused_creates(
    client: &runners_sdk::Client,
    count: usize,
) -> Vec<(
    runners_sdk::ResponseValue<runners_sdk::types::Error>,
    Duration,
)> {
    let started = Instant::now();
    let creates = (0..count).map(|i| async move {
        let answer = client
            .runners_post()
            .body(new_runner(&format!("refused {i}"), None))
            .send()
            .await;
        match answer {
            Err(Error::ErrorResponse(refused)) => (refused, started.elapsed()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    });
    futures::future::join_all(creates).await
}

/// Takes SQLite's write lock on `db` from this process, as another program
/// (`sqlite3 runners.db 'BEGIN IMMEDIATE; ...'`) would; held until the
/// connection rolls back or is dropped.
fn hold_write_lock(db: &std::path::Path) -> rusqlite::Connection {
    let holder = rusqlite::Connection::open(db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    holder
}

/// Releases the lock `holder` holds and creates runner `after`: writes work
/// again.
async fn release_and_write_again(holder: rusqlite::Connection, client: &runners_sdk::Client) {
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    let created = client
        .runners_post()
        .body(new_runner("after", None))
        .send()
        .await;
    assert_eq!(created.unwrap().status(), 201, "writes work again");
}
