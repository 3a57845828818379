//! Runners racing for jobs, for the tests that count every job once:
//! racers on one channel each ([`racers`], [`race`]), and a runner that
//! opens its channel again whenever it breaks, for the tests that kill
//! servers under it ([`Redial`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use runners_sdk::Client;
use runners_sdk::types::ServerMessage;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::agent::{Agent, output};
use crate::{TestServer, fallback_runner, runner_with_spec};

/// `count` runners ("Racer 0", "Racer 1", …) with one spec, the fallback
/// (so that a job with no spec goes to any of them): their slugs and keys.
pub async fn racers(admin: &Client, count: usize) -> Vec<(String, String)> {
    let (spec, first, first_key) = fallback_runner(admin, "Racer 0").await;
    let mut runners = vec![(first.slug, first_key)];
    for i in 1..count {
        let (runner, key) = runner_with_spec(admin, &format!("Racer {i}"), &spec.slug).await;
        runners.push((runner.slug, key));
    }
    runners
}

/// The race: every runner opens its channel (runner `i` on `server(i)`)
/// and says `ready` before the first job exists, then each races
/// ([`race_for_jobs`]) in a task of its own until `jobs` are completed in
/// all. The racers' tasks.
pub async fn race<'a>(
    runners: &[(String, String)],
    server: impl Fn(usize) -> &'a TestServer,
    jobs: usize,
) -> anyhow::Result<Vec<JoinHandle<anyhow::Result<Raced>>>> {
    let mut agents = Vec::new();
    for (i, (slug, key)) in runners.iter().enumerate() {
        let mut agent = Agent::connect(server(i), slug, key).await?;
        agent.ready(2).await?;
        agents.push(agent);
    }
    let done = Arc::new(AtomicUsize::new(0));
    Ok(agents
        .into_iter()
        .map(|agent| tokio::spawn(race_for_jobs(agent, Arc::clone(&done), jobs)))
        .collect())
}

/// What one racer did.
#[derive(Debug)]
pub struct Raced {
    /// The runner (slug or UUID) of its channel.
    pub runner: String,
    /// Jobs given to it (`job`).
    pub given: Vec<Uuid>,
    /// Jobs whose `completed` it saw acknowledged.
    pub completed: Vec<Uuid>,
}

/// One racer, its first `ready` sent: takes the jobs it is given (each
/// started, completed and its `ack` awaited) and says `ready` again, until
/// the racers together (counting in `done`) have completed `jobs`; then it
/// closes its channel.
async fn race_for_jobs(
    mut agent: Agent,
    done: Arc<AtomicUsize>,
    jobs: usize,
) -> anyhow::Result<Raced> {
    let (mut given, mut completed) = (Vec::new(), Vec::new());
    loop {
        match agent.recv().await? {
            ServerMessage::Job { uuid, .. } => {
                given.push(uuid);
                agent.start(uuid).await?;
                agent.complete(uuid, vec![output(0, &agent.runner)]).await?;
                agent.expect_ack(uuid).await?;
                completed.push(uuid);
                done.fetch_add(1, Ordering::SeqCst);
            }
            ServerMessage::NoJob => {}
            other => bail!("{}: unexpected {other:?}", agent.runner),
        }
        if done.load(Ordering::SeqCst) >= jobs {
            break;
        }
        agent.ready(1).await?;
    }
    let runner = agent.runner.clone();
    agent.close().await?;
    Ok(Raced {
        runner,
        given,
        completed,
    })
}

/// A runner that opens its channel again whenever it breaks or cannot
/// open, counting each time, until a channel's life ends well (the race is
/// over) or it has tried for longer than its limit.
pub struct Redial {
    runner: String,
    key: String,
    started: Instant,
    limit: Duration,
    /// Channels that broke, or could not open.
    pub reconnects: usize,
}

impl Redial {
    /// `runner` with its `key`, trying for at most `limit`.
    pub fn new(runner: &str, key: &str, limit: Duration) -> Self {
        Self {
            runner: runner.to_owned(),
            key: key.to_owned(),
            started: Instant::now(),
            limit,
            reconnects: 0,
        }
    }

    /// The runner's channel on the server at `url` (an agent with 5 s of
    /// patience), or none if it could not open (counted, once `pause` has
    /// passed). An error once the limit has passed.
    pub async fn open(&mut self, url: &str, pause: Duration) -> anyhow::Result<Option<Agent>> {
        ensure!(
            self.started.elapsed() < self.limit,
            "{}: too long",
            self.runner
        );
        match Agent::connect_to(url, &self.runner, &self.key).await {
            Ok(mut agent) => {
                agent.patience = Duration::from_secs(5);
                Ok(Some(agent))
            }
            Err(_) => {
                self.reconnects += 1;
                tokio::time::sleep(pause).await;
                Ok(None)
            }
        }
    }

    /// Whether the runner is done, after a channel's `life`: a life that
    /// ended well (the race is over) closes the channel and is the end; one
    /// that broke is counted, and the channel is to be opened again.
    pub async fn ended(&mut self, agent: Agent, life: anyhow::Result<()>) -> bool {
        match life {
            Ok(()) => {
                let _ = agent.close().await;
                true
            }
            Err(_) => {
                self.reconnects += 1;
                false
            }
        }
    }
}
