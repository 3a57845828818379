//! `bencher project ...` and `bencher report ...`: each subcommand is one
//! SDK call (`list --all`, one per page); `project key ...` is the key
//! commands' ([`crate::key`]).

use runners_sdk::types::{JsonNewProject, JsonUpdateProject, Visibility};
use runners_sdk::{Client, Error};

use crate::list::{named, paged};
use crate::parser::{
    CliProject, CliProjectCreate, CliProjectDelete, CliProjectList, CliProjectUpdate,
    CliProjectView, CliProjectVisibility, CliReport, CliReportList, CliReportView, Elided,
};
use crate::{Output, Result, key};

pub async fn run(client: &Client, command: CliProject) -> Result<Output> {
    match command {
        CliProject::List(list) => {
            let CliProjectList {
                organization,
                name,
                search,
                pagination,
            } = &list;
            let (name, search) = (name.as_ref(), search.as_ref());
            match organization {
                Some(organization) => {
                    let new = || {
                        let request = client.org_projects_get().organization(organization.clone());
                        named(request, name, search)
                    };
                    paged(new, pagination).await
                }
                None => paged(|| named(client.projects_get(), name, search), pagination).await,
            }
        }
        CliProject::Create(create) => {
            let CliProjectCreate {
                organization,
                name,
                slug,
                url,
                visibility,
            } = create;
            let body = JsonNewProject {
                name,
                slug,
                url,
                visibility: Some(self::visibility(visibility)),
            };
            let request = client.org_project_post().organization(organization);
            Ok(Output::one(request.body(body).send().await?))
        }
        CliProject::View(CliProjectView { project }) => Ok(Output::one(
            client.project_get().project(project).send().await?,
        )),
        CliProject::Update(update) => {
            let CliProjectUpdate {
                project,
                name,
                slug,
                url,
                visibility,
            } = update;
            let url = match url {
                // The SDK's `JsonUpdateProject` leaves out a `None` URL: it
                // cannot send the `url: null` that removes it.
                Some(Elided(None)) => return Err(Error::InvalidRequest(
                    "--url _: removing a project's URL is not possible yet (the SDK cannot send \
                     `url: null`); give another URL instead"
                        .to_owned(),
                )),
                Some(Elided(url)) => url,
                None => None,
            };
            let body = JsonUpdateProject {
                name,
                slug,
                url,
                visibility: visibility.map(self::visibility),
            };
            let request = client.project_patch().project(project);
            Ok(Output::one(request.body(body).send().await?))
        }
        CliProject::Delete(CliProjectDelete { project, hard }) => {
            let request = client.project_delete().project(project);
            if hard {
                request.hard(true).send().await?;
            } else {
                request.send().await?;
            }
            Ok(Output::Deleted)
        }
        CliProject::Key(command) => key::run(client, command).await,
    }
}

/// The API's visibility.
fn visibility(visibility: CliProjectVisibility) -> Visibility {
    match visibility {
        CliProjectVisibility::Public => Visibility::Public,
        CliProjectVisibility::Private => Visibility::Private,
    }
}

/// `bencher report list|view PROJECT ...`.
pub async fn report(client: &Client, command: CliReport) -> Result<Output> {
    match command {
        CliReport::List(list) => {
            let CliReportList {
                project,
                branch,
                testbed,
                start_time,
                end_time,
                pagination,
                archived,
                expand,
            } = &list;
            let new = || {
                let mut request = client.proj_reports_get().project(project.clone());
                if let Some(branch) = branch {
                    request = request.branch(branch.clone());
                }
                if let Some(testbed) = testbed {
                    request = request.testbed(testbed.clone());
                }
                if let Some(start) = start_time {
                    request = request.start_time(start.0);
                }
                if let Some(end) = end_time {
                    request = request.end_time(end.0);
                }
                if *archived {
                    request = request.archived(true);
                }
                if *expand {
                    request = request.expand(true);
                }
                request
            };
            paged(new, pagination).await
        }
        CliReport::View(CliReportView { project, report }) => {
            let request = client.proj_report_get().project(project).report(report);
            Ok(Output::one(request.send().await?))
        }
    }
}
