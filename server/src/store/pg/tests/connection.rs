//! Connecting: TLS insisted on when asked for, and a database that is
//! frozen or down (503, then recovery without a restart).

use super::relay::{CUT, FLOWING, FROZEN, Relay};
use super::{on_db, query};
use crate::store::pg::{OP_TIMEOUT, PgStore};
use crate::store::{Store, StoreError};
use crate::validate::{Direction, Sort};

/// `sslmode=require` insists on TLS: against a server without it (the
/// test's), the store refuses to open with an error that says so, rather
/// than falling back to plain text; the default (`prefer`) connects plain.
#[tokio::test]
async fn sslmode_require_insists_on_tls() {
    on_db("sslmode_require_insists_on_tls", async |db| {
        let mut require = db.config.clone();
        require.ssl_mode(tokio_postgres::config::SslMode::Require);
        let refused = PgStore::open_config(require).await.err().expect("refused");
        let message = format!("{refused:#}");
        eprintln!("{message}");
        assert!(message.contains("TLS"), "{message}");
        let mut prefer = db.config.clone();
        prefer.ssl_mode(tokio_postgres::config::SslMode::Prefer);
        let store = PgStore::open_config(prefer).await.expect("plain");
        drop(store);
    })
    .await;
}

/// A database that does not answer is 503 (`Unavailable`) after the busy
/// timeout, never a wait without end; one that is down is 503 at once,
/// not a fault (500); and the store works again as soon as it is back,
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_or_down_database_is_unavailable_and_then_recovers() {
    on_db(
        "a_frozen_or_down_database_is_unavailable_and_then_recovers",
        async |db| {
            let (relay, url) = Relay::before(db).await;
            let store = Store::open_db(std::path::Path::new(&url), 16)
                .await
                .unwrap();
            let list = || store.list_runners(query(Sort::Name, Direction::Asc, 8, 1, None, None));
            assert_eq!(list().await.unwrap().1, 0);

            relay.set(FROZEN);
            let frozen = std::time::Instant::now();
            let answer = list().await;
            let waited = frozen.elapsed();
            assert!(matches!(answer, Err(StoreError::Unavailable)), "{answer:?}");
            assert!(
                waited >= OP_TIMEOUT && waited < OP_TIMEOUT + std::time::Duration::from_secs(2),
                "answered after {waited:?}"
            );
            relay.set(FLOWING);
            assert_eq!(list().await.unwrap().1, 0, "flowing again");

            relay.set(CUT);
            let cut = std::time::Instant::now();
            let answer = list().await;
            assert!(matches!(answer, Err(StoreError::Unavailable)), "{answer:?}");
            assert!(cut.elapsed() < OP_TIMEOUT, "{:?}", cut.elapsed());
            relay.set(FLOWING);
            let mut back = list().await;
            // A pooled connection cut under it may fail once more.
            if back.is_err() {
                back = list().await;
            }
            assert_eq!(back.unwrap().1, 0, "up again");
            store.close_writer().await;
        },
    )
    .await;
}

/// The readiness probe: 200 while PostgreSQL answers and LISTEN is
/// connected; 503 saying why while the database is cut; 200 again once it
/// is back, without a restart. Liveness stays 200 throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_database_makes_the_server_not_ready_until_it_is_back() {
    on_db(
        "a_cut_database_makes_the_server_not_ready_until_it_is_back",
        async |db| {
            let (relay, url) = Relay::before(db).await;
            let config = crate::Config {
                submit: crate::server::Submit::default(),
                bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                db: std::path::PathBuf::from(&url),
                log_level: crate::LogLevel::Critical,
                log_format: Default::default(),
                metrics_listen: None,
                tls: None,
            };
            let server = crate::Server::start_with(&config, &crate::Limits::default())
                .await
                .unwrap();
            let probe = async |path: &str| {
                let answer = reqwest::get(format!("{}/v0/server/{path}", server.url()));
                let answer = answer.await.unwrap();
                let status = answer.status().as_u16();
                (status, answer.text().await.unwrap())
            };
            let until = async |status: u16| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                loop {
                    let got = probe("ready").await;
                    if got.0 == status || std::time::Instant::now() > deadline {
                        return got;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            };
            assert_eq!(until(200).await.0, 200);
            relay.set(CUT);
            let (status, body) = until(503).await;
            assert_eq!(status, 503, "{body}");
            assert!(
                body.contains("not ready") && body.contains("PostgreSQL"),
                "{body}"
            );
            assert_eq!(probe("live").await.0, 200, "alive while not ready");
            relay.set(FLOWING);
            let (status, body) = until(200).await;
            assert_eq!(status, 200, "ready again: {body}");
            server.close().await.unwrap();
        },
    )
    .await;
}
