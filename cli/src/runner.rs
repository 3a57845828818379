//! `bencher runner ...`: each subcommand is one SDK call (`--all`, one per
//! page).

use runners_sdk::Client;
use runners_sdk::types::{JsonNewRunner, JsonNewRunnerSpec, JsonUpdateRunner, RunnerStatus};

use crate::list::list;
use crate::parser::{
    CliRunner, CliRunnerCreate, CliRunnerList, CliRunnerSpec, CliRunnerSpecAdd,
    CliRunnerSpecRemove, CliRunnerStatus, CliRunnerUpdate, CliRunnerView,
};
use crate::{Output, Result};

pub async fn run(client: &Client, command: CliRunner) -> Result<Output> {
    match command {
        CliRunner::List(CliRunnerList {
            list: filters,
            status,
        }) => {
            let new = || {
                let request = client.runners_get();
                match status {
                    Some(status) => request.status(runner_status(status)),
                    None => request,
                }
            };
            list(new, &filters).await
        }
        CliRunner::Create(CliRunnerCreate { name, slug }) => {
            let body = JsonNewRunner { name, slug };
            Ok(Output::one(client.runners_post().body(body).send().await?))
        }
        CliRunner::View(CliRunnerView { runner }) => Ok(Output::one(
            client.runner_get().runner(runner).send().await?,
        )),
        CliRunner::Update(update) => {
            let CliRunnerUpdate {
                runner,
                name,
                slug,
                archived,
            } = update;
            let body = JsonUpdateRunner {
                name,
                slug,
                archived: archived.archived(),
            };
            Ok(Output::one(
                client
                    .runner_patch()
                    .runner(runner)
                    .body(body)
                    .send()
                    .await?,
            ))
        }
        CliRunner::Key(CliRunnerView { runner }) => Ok(Output::one(
            client.runner_key_post().runner(runner).send().await?,
        )),
        CliRunner::Token(CliRunnerView { runner }) => {
            #[allow(deprecated)]
            let rotated = client.runner_token_post().runner(runner).send().await?;
            Ok(Output::one(rotated))
        }
        CliRunner::Spec(CliRunnerSpec::List(CliRunnerView { runner })) => Ok(Output::one(
            client.runner_specs_get().runner(runner).send().await?,
        )),
        CliRunner::Spec(CliRunnerSpec::Add(CliRunnerSpecAdd { runner, spec })) => {
            let body = JsonNewRunnerSpec { spec };
            Ok(Output::one(
                client
                    .runner_specs_post()
                    .runner(runner)
                    .body(body)
                    .send()
                    .await?,
            ))
        }
        CliRunner::Spec(CliRunnerSpec::Remove(CliRunnerSpecRemove { runner, spec })) => {
            client
                .runner_spec_delete()
                .runner(runner)
                .spec(spec)
                .send()
                .await?;
            Ok(Output::Deleted)
        }
    }
}

/// The API's runner status.
fn runner_status(status: CliRunnerStatus) -> RunnerStatus {
    match status {
        CliRunnerStatus::Offline => RunnerStatus::Offline,
        CliRunnerStatus::Idle => RunnerStatus::Idle,
        CliRunnerStatus::Busy => RunnerStatus::Busy,
    }
}
