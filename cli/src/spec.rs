//! `bencher spec ...`: each subcommand is one SDK call (`--all`, one per
//! page).

use runners_sdk::Client;
use runners_sdk::types::{Architecture, JsonNewSpec, JsonUpdateSpec, OperatingSystem, Sandbox};

use crate::list::list;
use crate::parser::{
    CliArchitecture, CliOperatingSystem, CliSandbox, CliSpec, CliSpecCreate, CliSpecUpdate,
    CliSpecView,
};
use crate::{Output, Result};

pub async fn run(client: &Client, command: CliSpec) -> Result<Output> {
    match command {
        CliSpec::List(filters) => list(|| client.specs_get(), &filters).await,
        CliSpec::Create(create) => {
            let CliSpecCreate {
                name,
                slug,
                os,
                architecture,
                sandbox,
                cpu,
                memory,
                disk,
                network,
                fallback,
            } = create;
            let body = JsonNewSpec {
                name,
                slug,
                os: match os {
                    CliOperatingSystem::Linux => OperatingSystem::Linux,
                    CliOperatingSystem::Macos => OperatingSystem::Macos,
                    CliOperatingSystem::Windows => OperatingSystem::Windows,
                },
                architecture: match architecture {
                    CliArchitecture::X86_64 => Architecture::X8664,
                    CliArchitecture::Aarch64 => Architecture::Aarch64,
                },
                sandbox: sandbox.map(|CliSandbox::Firecracker| Sandbox::Firecracker),
                cpu,
                memory,
                disk,
                network,
                fallback,
            };
            Ok(Output::one(client.specs_post().body(body).send().await?))
        }
        CliSpec::View(CliSpecView { spec }) => {
            Ok(Output::one(client.spec_get().spec(spec).send().await?))
        }
        CliSpec::Update(update) => {
            let CliSpecUpdate {
                spec,
                name,
                slug,
                fallback,
                archived,
            } = update;
            let body = JsonUpdateSpec {
                name,
                slug,
                fallback,
                archived: archived.archived(),
            };
            Ok(Output::one(
                client.spec_patch().spec(spec).body(body).send().await?,
            ))
        }
        CliSpec::Delete(CliSpecView { spec }) => {
            client.spec_delete().spec(spec).send().await?;
            Ok(Output::Deleted)
        }
    }
}
