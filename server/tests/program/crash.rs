//! Crash safety: the server program killed with SIGKILL while clients write.

use std::time::Duration;

use futures::future::join_all;
use runners_sdk::Error;
use runners_sdk::types::JsonUpdateRunner;
use runners_tests::new_runner;
use uuid::Uuid;

use super::{Serving, block_on};

const WRITERS: usize = 8;

/// What a writer saw before the server died.
#[derive(Default)]
struct Acknowledged {
    created: Vec<Uuid>,
    archived: Vec<Uuid>,
    /// Answers that were not 2xx: the server answered, and refused. There
    /// must be none: only the kill may stop a writer.
    refused: Vec<String>,
}

/// Whether a request failed because the server is gone (no answer), as
/// opposed to an answer with an error status.
fn server_gone<E>(e: &Error<E>) -> bool {
    matches!(
        e,
        Error::CommunicationError(_)
            | Error::ResponseBodyError(_)
            | Error::InvalidResponsePayload(..)
    )
}

/// Creates runners and archives every other one until the server stops
/// answering; records each 2xx, and each answer that is not one.
async fn write_until_it_dies(client: &runners_sdk::Client, writer: usize) -> Acknowledged {
    let mut acked = Acknowledged::default();
    for i in 0.. {
        let name = format!("w{writer} r{i} {}", Uuid::new_v4());
        let created = match client
            .runners_post()
            .body(new_runner(&name, None))
            .send()
            .await
        {
            Ok(created) => created,
            Err(e) if server_gone(&e) => break,
            Err(e) => {
                acked.refused.push(format!("create: {e}"));
                break;
            }
        };
        let uuid = created.into_inner().uuid;
        acked.created.push(uuid);
        if i % 2 == 0 {
            let archive = JsonUpdateRunner {
                archived: Some(true),
                name: None,
                slug: None,
            };
            let sent = client
                .runner_patch()
                .runner(uuid.to_string())
                .body(archive)
                .send()
                .await;
            match sent {
                Ok(_) => acked.archived.push(uuid),
                Err(e) if server_gone(&e) => break,
                Err(e) => {
                    acked.refused.push(format!("archive: {e}"));
                    break;
                }
            }
        }
    }
    acked
}

#[test]
fn sigkill_loses_no_acknowledged_write_and_the_file_stays_intact() {
    let mut server = Serving::start_any();
    let db = server.db();
    let admin = server.bootstrap_token().unwrap();
    let mut created = Vec::new();
    let mut archived = Vec::new();
    for round in 0..3 {
        if round > 0 {
            server.restart();
        }
        let client = runners_sdk::client_with_token(&server.url, &admin).unwrap();
        let writers = join_all((0..WRITERS).map(|w| write_until_it_dies(&client, w)));
        let acked = block_on(async {
            let killer = async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                server.kill();
            };
            futures::join!(writers, killer).0
        });
        let before = created.len();
        for a in acked {
            assert!(a.refused.is_empty(), "round {round}: {:?}", a.refused);
            created.extend(a.created);
            archived.extend(a.archived);
        }
        assert!(
            created.len() > before,
            "round {round}: some writes were acknowledged"
        );

        // Before anything else opens it: the file as the crash left it
        // (PostgreSQL's own files are PostgreSQL's to keep).
        if !server.on_postgres() {
            let conn = rusqlite::Connection::open(&db).unwrap();
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok", "round {round}");
            drop(conn);
        }
    }

    server.restart();
    let client = runners_sdk::client_with_token(&server.url, &admin).unwrap();
    block_on(async {
        for uuid in &created {
            let runner = client
                .runner_get()
                .runner(uuid.to_string())
                .send()
                .await
                .unwrap_or_else(|e| panic!("acknowledged runner {uuid} lost: {e}"))
                .into_inner();
            if archived.contains(uuid) {
                assert!(
                    runner.archived.is_some(),
                    "acknowledged archive of {uuid} lost"
                );
            }
        }
    });
}
