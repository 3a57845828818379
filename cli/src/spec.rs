//! `bencher spec ...`: each subcommand is one SDK call (`--all`, one per
//! page).

use runners_sdk::Client;
use runners_sdk::types::{
    Architecture, JsonNewSpec, JsonUpdateSpec, OperatingSystem, Sandbox, SpecsSort,
};

use crate::list::{direction, pages};
use crate::parser::{
    CliArchitecture, CliOperatingSystem, CliSandbox, CliSpec, CliSpecCreate, CliSpecList,
    CliSpecUpdate, CliSpecView, CliSpecsSort,
};
use crate::{Output, Result};

pub async fn run(client: &Client, command: CliSpec) -> Result<Output> {
    match command {
        CliSpec::List(list) => list_specs(client, &list).await,
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

async fn list_specs(client: &Client, list: &CliSpecList) -> Result<Output> {
    let (specs, total) = pages(&list.pagination, |page, per_page| {
        let mut request = client.specs_get().page(page);
        if list.archived {
            request = request.archived(true);
        }
        if let Some(per_page) = per_page {
            request = request.per_page(per_page);
        }
        if let Some(name) = &list.name {
            request = request.name(name.clone());
        }
        if let Some(search) = &list.search {
            request = request.search(search.clone());
        }
        if let Some(sort) = list.pagination.sort {
            request = request.sort(match sort {
                CliSpecsSort::Name => SpecsSort::Name,
                CliSpecsSort::Created => SpecsSort::Created,
            });
        }
        if let Some(d) = list.pagination.direction {
            request = request.direction(direction(d));
        }
        request.send()
    })
    .await?;
    Ok(Output::list(specs, total))
}
