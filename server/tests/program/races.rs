//! Races: parallel clients against the server program, as CI pipelines
//! hit it.

use std::collections::HashSet;

use futures::future::join_all;
use runners_sdk::types::{self, JsonRunner, JsonUpdateRunner};
use runners_sdk::{Client, Error, ResponseValue};

use runners_tests::new_runner;

use super::{Serving, block_on};

const PARALLEL: usize = 24;

type Answer<T> = Result<ResponseValue<T>, Error<types::Error>>;

/// The status of an answer, success or not.
fn status<T>(answer: &Answer<T>) -> u16 {
    match answer {
        Ok(value) => value.status().as_u16(),
        Err(e) => e.status().map_or(0, |s| s.as_u16()),
    }
}

/// The `error_code` of a failed answer.
fn error_code<T>(answer: &Answer<T>) -> Option<&str> {
    match answer {
        Err(Error::ErrorResponse(e)) => e.error_code.as_deref(),
        _ => None,
    }
}

/// Every runner, archived ones included.
async fn all_runners(client: &Client) -> Vec<JsonRunner> {
    let mut all = Vec::new();
    for page in 1.. {
        let batch = client
            .runners_get()
            .archived(true)
            .per_page(255)
            .page(page)
            .send()
            .await
            .unwrap()
            .into_inner();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
    unreachable!()
}

#[test]
fn parallel_creates_of_one_name_all_succeed_with_distinct_slugs() {
    let server = Serving::start_any();
    let client = server.admin();
    block_on(async {
        let answers = join_all((0..PARALLEL).map(|_| {
            client
                .runners_post()
                .body(new_runner("CI box", None))
                .send()
        }))
        .await;
        let statuses: Vec<u16> = answers.iter().map(status).collect();
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");

        let runners = all_runners(&client).await;
        assert_eq!(runners.len(), PARALLEL, "no duplicate, none lost");
        let slugs: HashSet<&str> = runners.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!(slugs.len(), PARALLEL, "distinct slugs: {slugs:?}");
        assert!(slugs.contains("ci-box"), "{slugs:?}");
        assert!(slugs.iter().all(|s| s.starts_with("ci-box")), "{slugs:?}");
    });
}

#[test]
fn parallel_creates_of_one_explicit_slug_give_one_201_and_409s() {
    let server = Serving::start_any();
    let client = server.admin();
    block_on(async {
        let answers = join_all((0..PARALLEL).map(|i| {
            client
                .runners_post()
                .body(new_runner(&format!("box {i}"), Some("contested")))
                .send()
        }))
        .await;
        let created = answers.iter().filter(|a| status(a) == 201).count();
        assert_eq!(
            created,
            1,
            "{:?}",
            answers.iter().map(status).collect::<Vec<_>>()
        );
        for answer in answers.iter().filter(|a| status(a) != 201) {
            assert_eq!(status(answer), 409);
            assert_eq!(error_code(answer), Some("Conflict"));
        }
        assert_eq!(all_runners(&client).await.len(), 1);
    });
}

#[test]
fn parallel_rotations_all_answer_201_and_exactly_one_token_lives() {
    let server = Serving::start_any();
    let client = server.admin();
    block_on(async {
        let first = client
            .runners_post()
            .body(new_runner("rotated", None))
            .send()
            .await
            .unwrap()
            .into_inner();
        let answers =
            join_all((0..PARALLEL).map(|_| client.runner_token_post().runner("rotated").send()))
                .await;
        let mut tokens = vec![first.key];
        for answer in answers {
            assert_eq!(status(&answer), 201);
            tokens.push(answer.unwrap().into_inner().key);
        }
        let url = &server.url;
        let beats = join_all(tokens.iter().map(|token| async move {
            let runner = runners_sdk::client_with_token(url, token).unwrap();
            status(
                &runner
                    .runner_heartbeat_post()
                    .runner("rotated")
                    .send()
                    .await,
            )
        }))
        .await;
        assert_eq!(beats.iter().filter(|s| **s == 200).count(), 1, "{beats:?}");
        assert!(beats.iter().all(|s| *s == 200 || *s == 401), "{beats:?}");
        assert_ne!(beats[0], 200, "the token from creation was rotated away");
    });
}

#[test]
fn mixed_churn_never_answers_5xx() {
    const WORKERS: usize = 8;
    const ROUNDS: usize = 30;
    let server = Serving::start_any();
    let client = server.admin();
    block_on(async {
        let mut tokens = Vec::new();
        for i in 0..4 {
            let created = client
                .runners_post()
                .body(new_runner(&format!("churn {i}"), None))
                .send()
                .await
                .unwrap()
                .into_inner();
            tokens.push(created.key);
        }
        let workers = (0..WORKERS).map(|w| {
            let client = &client;
            let url = &server.url;
            let tokens = &tokens;
            async move {
                let mut statuses = Vec::new();
                for round in 0..ROUNDS {
                    let target = format!("churn-{}", (w + round) % 4);
                    let s = match (w + round) % 6 {
                        0 => status(
                            &client
                                .runner_patch()
                                .runner(target.as_str())
                                .body(JsonUpdateRunner {
                                    name: Some(format!("churn {w} {round}").parse().unwrap()),
                                    slug: None,
                                    archived: Some(round % 4 == 0),
                                })
                                .send()
                                .await,
                        ),
                        1 => status(
                            &client
                                .runner_token_post()
                                .runner(target.as_str())
                                .send()
                                .await,
                        ),
                        2 => status(&client.runners_get().search("churn").send().await),
                        3 => status(&client.runner_get().runner(target.as_str()).send().await),
                        4 => {
                            let token = &tokens[(w + round) % 4];
                            let runner = runners_sdk::client_with_token(url, token).unwrap();
                            status(
                                &runner
                                    .runner_heartbeat_post()
                                    .runner(target.as_str())
                                    .send()
                                    .await,
                            )
                        }
                        _ => status(
                            &client
                                .runners_post()
                                .body(new_runner("churn", None))
                                .send()
                                .await,
                        ),
                    };
                    statuses.push(s);
                }
                statuses
            }
        });
        let statuses: Vec<u16> = join_all(workers).await.into_iter().flatten().collect();
        assert_eq!(statuses.len(), WORKERS * ROUNDS);
        // 409: rotating an archived runner; 401/403: a rotated or archived
        // runner's token, or another runner's. Never a 5xx.
        for s in &statuses {
            assert!(
                matches!(s, 200 | 201 | 401 | 403 | 409),
                "unexpected status {s} in {statuses:?}"
            );
        }
        assert!(statuses.contains(&200) && statuses.contains(&201));
    });
}
