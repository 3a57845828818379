//! The submitter side's handlers (Bencher v0.6.12's `bencher run`,
//! projects, their jobs and reports; keys are `keys.rs`): each checks what its
//! credential may do ([`Principal`]), calls the store, and makes the view.

use dropshot::{HttpError, HttpResponseDeleted, HttpResponseOk};

use super::support::{created, jobs_page, page};
use crate::api::{Created, JobsPage, ProjectsPage, ReportsPage};
use crate::auth::{Admin, Principal};
use crate::bmf;
use crate::error::{conflict, not_found, unavailable};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::server::Context;
use crate::store::{NewJob, NewProject, NewRun, ProjectRef, Projects, RunProject, StoreError};
use crate::types::*;
use crate::validate::image::ImageReference;
use crate::validate::{Invalid, Ref, ResourceName, Slug, TIMEOUT_DEFAULT, Timeout};
use crate::views::runs::{project, report};

fn bad(field: &str, rule: impl Into<String>) -> HttpError {
    HttpError::from(Invalid {
        field: field.to_owned(),
        rule: rule.into(),
    })
}

/// The project a run goes to, checked against the credential before any
/// lookup; made from a slug on first use (never from a UUID, never for a
/// project key, never for a run with a job: its image names it).
async fn run_project(
    cx: &Context,
    who: &Principal,
    run: &JsonNewRun,
    image: Option<&ImageReference>,
) -> Result<RunProject, HttpError> {
    let named = match (&run.project, who, image) {
        (Some(r), _, _) => r.clone(),
        (None, Principal::Project { project, .. }, _) => Ref::Uuid(*project),
        // The image's repository names the project (Bencher's `[{registry}/]
        // {project}:{tag}`), by UUID or slug.
        (None, _, Some(image)) => {
            let repository = image.project_repository().unwrap_or(image.repository());
            Ref::parse("project", repository).map_err(|_| {
                not_found(format!(
                    "no project is named by the image's repository `{repository}`"
                ))
            })?
        }
        // Bencher's on-the-fly project: a new one, its slug made from its
        // name.
        (None, Principal::User { .. }, None) => {
            return Ok(RunProject::Create {
                name: ResourceName::try_from("Project".to_owned()).expect("`Project` is a name"),
                slug: None,
            });
        }
    };
    if let Principal::Project { .. } = who {
        return Ok(RunProject::Existing(project_of(cx, who, named).await?.uuid));
    }
    match cx.store.item::<Projects>(&named.clone().into()).await {
        Ok(found) => Ok(RunProject::Existing(found.uuid)),
        Err(StoreError::NotFound { .. }) if image.is_none() && who.user().is_ok() => match named {
            Ref::Slug(slug) => Ok(RunProject::Create {
                name: ResourceName::try_from(slug.clone())
                    .map_err(|_| bad("project", "a slug that is also a name"))?,
                slug: Some(Slug::try_from(slug).map_err(|_| bad("project", "a slug"))?),
            }),
            Ref::Uuid(_) => Err(StoreError::NotFound {
                kind: crate::store::model::Kind::Project,
                by: named,
            }
            .into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// A run's job as the queue takes it: its image pinned to a digest on the
/// configured registry, in the project's repository.
async fn run_job(
    cx: &Context,
    job: &JsonNewRunJob,
    image: &ImageReference,
    project: uuid::Uuid,
    settings: &JsonReportSettings,
) -> Result<NewJob, HttpError> {
    // The request is fine, the server is not set up for it (as with no
    // fallback spec): 409.
    let registry = cx.submit.registry_url.as_deref().ok_or_else(|| {
        conflict("this server has no `--registry-url`, so it cannot run images".to_owned())
    })?;
    let host = registry.split_once("://").map_or(registry, |(_, h)| h);
    let host = host.split('/').next().unwrap_or(host);
    if image.host() != Some(host) {
        return Err(bad(
            "job.image",
            format!("must be on this server's registry `{host}`"),
        ));
    }
    if image.repository() != project.to_string() {
        return Err(bad(
            "job.image",
            format!("its repository must be the project's UUID `{project}`"),
        ));
    }
    let digest = match (image.digest(), image.tag()) {
        (Some(d), _) => d.to_owned(),
        (None, tag) => {
            let tag = tag.unwrap_or("latest");
            // The server's own pull token, for a registry that trusts it
            // (one that does not ignores it).
            let repository = image.repository().to_owned();
            let token = cx
                .channel
                .oci
                .pull_token("runners-server", repository)
                .await?;
            crate::registry::resolve_tag(registry, image.repository(), tag, Some(&token))
                .await
                .map_err(|e| match e {
                    // The tag is not there: the request's.
                    crate::registry::ResolveError::NotFound { .. } => {
                        bad("job.image", e.to_string())
                    }
                    // The registry is down, refuses this server or fails.
                    _ => unavailable(e.to_string()),
                })?
        }
    };
    let timeout = job
        .timeout
        .unwrap_or(Timeout::try_from(TIMEOUT_DEFAULT).expect("the default timeout is valid"));
    let mut config = serde_json::json!({
        "registry": registry, "project": project, "digest": digest,
        "image": image.to_string(), "timeout": timeout.get(),
    });
    let optional = serde_json::json!({
        "entrypoint": job.entrypoint, "cmd": job.cmd, "env": job.env,
        "file_paths": job.file_paths, "build_time": job.build_time, "file_size": job.file_size,
        "iter": job.iter, "allow_failure": job.allow_failure, "backdate": job.backdate,
        "average": settings.average, "fold": settings.fold,
    });
    for (k, v) in optional.as_object().into_iter().flatten() {
        if !v.is_null() {
            config[k] = v.clone();
        }
    }
    Ok(NewJob {
        spec: job.spec.clone().map(Into::into),
        config,
        timeout: timeout.get(),
        priority: 0,
    })
}

pub(super) async fn run_post(
    cx: &Context,
    who: Principal,
    body: JsonBody<JsonNewRun>,
) -> Result<Created<JsonReport>, HttpError> {
    let run = body.open(&who)?;
    let settings = run.settings.clone().unwrap_or_default();
    let adapter = settings.adapter()?;
    let image = run.job.as_ref().map(|job| job.image.clone());
    let target = run_project(cx, &who, &run, image.as_ref()).await?;
    let (job, results) = match (&run.job, &image, &target) {
        (Some(job), Some(image), RunProject::Existing(project)) => (
            Some(run_job(cx, job, image, *project, &settings).await?),
            Vec::new(),
        ),
        _ => (
            None,
            bmf::parse_results(adapter, &run.results)
                .and_then(|r| bmf::check_size(&r).map(|()| r))
                .map_err(|e| bad("results", e))?,
        ),
    };
    let new = NewRun {
        project: target,
        user: who.user().ok(),
        branch: run.branch.as_deref().unwrap_or("main").to_owned(),
        testbed: run.testbed.as_deref().unwrap_or("localhost").to_owned(),
        adapter,
        start_time: run.start_time,
        end_time: run.end_time,
        idempotency_key: run.idempotency_key,
        job,
        results,
    };
    let row = cx.store.create_run(new, &who.actor()).await?;
    let uuid = row.uuid;
    let path = format!("projects/{}/reports", row.project.slug);
    Ok(created(report(row, cx.org().await?), &path, uuid))
}

/// The organization a path names: this server's one (`default` or its
/// UUID), else 404.
async fn organization(
    cx: &Context,
    path: PathParams<OrganizationPath>,
    who: &Principal,
) -> Result<(), HttpError> {
    let org = path.open(who)?.organization;
    let ours = match &org {
        Ref::Slug(s) => s == "default",
        Ref::Uuid(u) => *u == cx.org().await?,
    };
    ours.then_some(()).ok_or_else(|| {
        not_found(format!(
            "organization `{org}` not found: this server's is `default`"
        ))
    })
}

pub(super) async fn projects_get(
    cx: &Context,
    who: Principal,
    org: Option<PathParams<OrganizationPath>>,
    query: QueryParams<ProjectsQuery>,
) -> Result<ProjectsPage, HttpError> {
    if let Some(path) = org {
        organization(cx, path, &who).await?;
    }
    let q = query.open(&who)?;
    let org = cx.org().await?;
    let (rows, total) = match &who {
        Principal::Project { project, .. } => {
            let own = cx.store.item::<Projects>(&(*project).into()).await?;
            (vec![own], 1)
        }
        Principal::User { .. } => cx.store.list_projects(q).await?,
    };
    let rows: Vec<JsonProject> = rows.into_iter().map(|r| project(r, org)).collect();
    Ok(page((rows, total)))
}

pub(super) async fn org_project_post(
    cx: &Context,
    who: Principal,
    path: PathParams<OrganizationPath>,
    body: JsonBody<JsonNewProject>,
) -> Result<Created<JsonProject>, HttpError> {
    who.user()?;
    organization(cx, path, &who).await?;
    let new = body.open(&who)?;
    let new = NewProject {
        name: new.name,
        slug: new.slug,
        url: new.url.map(String::from),
        visibility: new.visibility.unwrap_or_default().into(),
    };
    let row = cx.store.create_project(new, &who.actor()).await?;
    let uuid = row.uuid;
    Ok(created(project(row, cx.org().await?), "projects", uuid))
}

/// The project a path names, once the credential may use it. A project
/// key's: by UUID, its own or 403 before any lookup; by slug, the project
/// found must be its own (its slug may have changed since the key was
/// checked): none or another is 403 alike.
async fn project_of(
    cx: &Context,
    who: &Principal,
    r: Ref,
) -> Result<crate::store::ProjectRow, HttpError> {
    who.may_use_project(&r)?;
    match (who, cx.store.item::<Projects>(&r.into()).await) {
        (Principal::Project { .. }, Err(StoreError::NotFound { .. })) => {
            Err(crate::auth::AuthError::OtherProject.into())
        }
        (_, Err(e)) => Err(e.into()),
        (_, Ok(row)) => {
            who.may_see(&row)?;
            Ok(row)
        }
    }
}

pub(super) async fn project_get(
    cx: &Context,
    who: Principal,
    path: PathParams<ProjectPath>,
) -> Result<HttpResponseOk<JsonProject>, HttpError> {
    let r = path.open(&who)?.project;
    Ok(HttpResponseOk(project(
        project_of(cx, &who, r).await?,
        cx.org().await?,
    )))
}

pub(super) async fn project_patch(
    cx: &Context,
    admin: Admin,
    path: PathParams<ProjectPath>,
    body: JsonBody<JsonUpdateProject>,
) -> Result<HttpResponseOk<JsonProject>, HttpError> {
    let r: ProjectRef = path.open(&admin)?.project.into();
    let changes = body.open(&admin)?.into();
    let row = cx
        .store
        .update::<Projects>(r, changes, &admin.actor())
        .await?;
    Ok(HttpResponseOk(project(row, cx.org().await?)))
}

pub(super) async fn project_delete(
    cx: &Context,
    admin: Admin,
    path: PathParams<ProjectPath>,
    query: QueryParams<ProjectDeleteQuery>,
) -> Result<HttpResponseDeleted, HttpError> {
    let r = path.open(&admin)?.project;
    query.open(&admin)?;
    cx.store.delete_project(r.into(), &admin.actor()).await?;
    Ok(HttpResponseDeleted())
}

pub(super) async fn proj_jobs_get(
    cx: &Context,
    who: Principal,
    path: PathParams<ProjectPath>,
    query: QueryParams<RunnerJobsQuery>,
) -> Result<JobsPage, HttpError> {
    let r = path.open(&who)?.project;
    let row = project_of(cx, &who, r).await?;
    let mut q = query.open(&who)?;
    q.project = Some(Ref::Uuid(row.uuid));
    jobs_page(cx.store.list_jobs(None, q).await?)
}

pub(super) async fn proj_job_get(
    cx: &Context,
    who: Principal,
    path: PathParams<ProjectJobPath>,
) -> Result<HttpResponseOk<JsonJob>, HttpError> {
    let p = path.open(&who)?;
    let row = project_of(cx, &who, p.project).await?;
    let job = cx.store.job(p.job).await?;
    if job.project != Some(row.uuid) {
        return Err(not_found(format!(
            "job {} not found in project `{}`",
            p.job, row.slug
        )));
    }
    Ok(HttpResponseOk(job.try_into()?))
}

pub(super) async fn proj_reports_get(
    cx: &Context,
    who: Principal,
    path: PathParams<ProjectPath>,
    query: QueryParams<ReportsQuery>,
) -> Result<ReportsPage, HttpError> {
    let r = path.open(&who)?.project;
    let row = project_of(cx, &who, r).await?;
    let q = query.open(&who)?;
    let (rows, total) = cx.store.list_reports(row.uuid.into(), q).await?;
    let org = cx.org().await?;
    let rows: Vec<JsonReport> = rows.into_iter().map(|r| report(r, org)).collect();
    Ok(page((rows, total)))
}

pub(super) async fn proj_report_get(
    cx: &Context,
    who: Principal,
    path: PathParams<ReportPath>,
) -> Result<HttpResponseOk<JsonReport>, HttpError> {
    let p = path.open(&who)?;
    let row = project_of(cx, &who, p.project).await?;
    let found = cx.store.report(row.uuid.into(), p.report).await?;
    Ok(HttpResponseOk(report(found, cx.org().await?)))
}

pub(super) fn console(cx: &Context) -> HttpResponseOk<JsonConsole> {
    let url = cx
        .submit
        .console_url
        .clone()
        .unwrap_or_else(|| cx.own_url.clone());
    HttpResponseOk(JsonConsole { url })
}
