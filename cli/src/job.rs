//! `bencher job ...`: each subcommand is one SDK call (`list --all`, one per
//! page); `list` and `view` with a PROJECT are Bencher's, through the
//! project. `job view --format text` prints the job for people.

use std::collections::HashMap;
use std::fmt::Write;

use runners_sdk::builder::{JobsGet, ProjJobsGet};
use runners_sdk::types::{JsonIterationOutput, JsonJob, JsonNewJob, ResourceId, StatusList};
use runners_sdk::{Client, Error};

use crate::list::{delegate, paged};
use crate::parser::{
    CliFormat, CliJob, CliJobCancel, CliJobCreate, CliJobList, CliJobView, MAX_ARGS, MAX_ENTRIES,
};
use crate::{Output, Result};

pub async fn run(client: &Client, command: CliJob) -> Result<Output> {
    match command {
        CliJob::List(filters) => list(client, &filters).await,
        CliJob::Create(create) => {
            let body = new_job(*create).map_err(Error::InvalidRequest)?;
            Ok(Output::one(client.jobs_post().body(body).send().await?))
        }
        CliJob::View(CliJobView {
            project,
            job,
            format,
        }) => {
            let job = match project {
                Some(project) => {
                    client
                        .proj_job_get()
                        .project(project)
                        .job(job)
                        .send()
                        .await?
                }
                None => client.job_get().job(job).send().await?,
            };
            Ok(match format {
                CliFormat::Json => Output::one(job),
                CliFormat::Text => Output::Text(text(&job)),
            })
        }
        CliJob::Cancel(CliJobCancel { job }) => {
            Ok(Output::one(client.job_cancel_post().job(job).send().await?))
        }
    }
}

/// A value, or a usage error found after parsing, naming its flag (the
/// program prints it as a usage error: exit 2).
type Usage<T> = std::result::Result<T, String>;

/// At most `max` values of `flag`; none is absent.
fn at_most<T>(flag: &str, values: Vec<T>, max: usize) -> Usage<Option<Vec<T>>> {
    match values.len() {
        0 => Ok(None),
        n if n > max => Err(format!("{flag}: at most {max} values, {n} given")),
        _ => Ok(Some(values)),
    }
}

/// The request body of `job create`, with the counts Bencher limits
/// checked: each error names its flag.
fn new_job(create: CliJobCreate) -> Usage<JsonNewJob> {
    let CliJobCreate {
        registry,
        project,
        digest,
        image,
        spec,
        entrypoint,
        env,
        job_timeout,
        file_path,
        build_time,
        file_size,
        iter,
        allow_failure,
        backdate,
        priority,
        cmd,
    } = create;
    let env = match at_most("--env", env, MAX_ENTRIES)? {
        None => None,
        Some(pairs) => {
            let mut vars = HashMap::new();
            for (key, value) in pairs {
                if vars.insert(key.clone(), value).is_some() {
                    return Err(format!("--env: {key} is given more than once"));
                }
            }
            Some(vars)
        }
    };
    Ok(JsonNewJob {
        registry,
        // Checked by the parser with the same type.
        project: project.parse().expect("a UUID"),
        digest,
        image,
        spec,
        entrypoint: at_most("--entrypoint", entrypoint, MAX_ARGS)?,
        cmd: at_most("the command (after `--`)", cmd, MAX_ARGS)?,
        env,
        timeout: job_timeout.map(|t| t.try_into().expect("at least 1")),
        file_paths: at_most("--file-path", file_path, MAX_ENTRIES)?,
        build_time: build_time.then_some(true),
        file_size: file_size.then_some(true),
        iter: iter.map(|i| i.try_into().expect("at least 1")),
        allow_failure: allow_failure.then_some(true),
        backdate,
        priority,
    })
}

/// `job list`: a project's jobs (Bencher's form), or every job, or a
/// runner's (`--runner`), with the filters.
async fn list(client: &Client, filters: &CliJobList) -> Result<Output> {
    let status: Option<StatusList> = if filters.status.is_empty() {
        None
    } else {
        let mut names: Vec<&str> = Vec::new();
        for status in &filters.status {
            if !names.contains(&status.as_str()) {
                names.push(status.as_str());
            }
        }
        Some(names.join(",").parse().expect("statuses the API names"))
    };
    let (status, spec) = (status.as_ref(), filters.spec.as_ref());
    let pagination = &filters.pagination;
    match &filters.project {
        Some(project) => {
            let new = || {
                job_filters(
                    client.proj_jobs_get().project(project.clone()),
                    status,
                    spec,
                )
            };
            paged(new, pagination).await
        }
        None => {
            let new = || {
                let request = job_filters(client.jobs_get(), status, spec);
                match &filters.runner {
                    Some(runner) => request.runner(runner.clone()),
                    None => request,
                }
            };
            paged(new, pagination).await
        }
    }
}

/// The filters of both job lists (every job, a project's).
trait JobFilters: Sized {
    fn status(self, status: StatusList) -> Self;
    fn spec(self, spec: ResourceId) -> Self;
}

delegate!(JobFilters for [JobsGet, ProjJobsGet] {
    fn status(status: StatusList);
    fn spec(spec: ResourceId);
});

/// `request` with the status and spec filters that were given.
fn job_filters<R: JobFilters>(
    request: R,
    status: Option<&StatusList>,
    spec: Option<&ResourceId>,
) -> R {
    let request = match status {
        Some(status) => request.status(status.clone()),
        None => request,
    };
    match spec {
        Some(spec) => request.spec(spec.clone()),
        None => request,
    }
}

/// `CliJobStatus` is the API's `JobStatus`, by name.
#[cfg(test)]
#[test]
fn statuses_are_the_apis() {
    use crate::parser::CliJobStatus;
    use clap::ValueEnum;
    for status in CliJobStatus::value_variants() {
        let parsed: runners_sdk::types::JobStatus = status.as_str().parse().unwrap();
        assert_eq!(parsed.to_string(), status.as_str());
    }
}

/// The job for people: what it is, where it is in its life, and what it
/// produced.
fn text(job: &JsonJob) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_text(&mut out, job);
    out
}

fn write_text(out: &mut String, job: &JsonJob) -> std::fmt::Result {
    let config = &job.config;
    writeln!(out, "Job {}: {}", job.uuid, job.status)?;
    let spec = &job.spec;
    writeln!(
        out,
        "  Spec:       {} ({}, {})",
        spec.name, spec.slug, spec.uuid
    )?;
    if let Some(image) = &config.image {
        writeln!(out, "  Image:      {}", image.as_str())?;
    }
    writeln!(out, "  Registry:   {}", config.registry.as_str())?;
    writeln!(out, "  Project:    {}", config.project)?;
    writeln!(out, "  Digest:     {}", config.digest.as_str())?;
    if let Some(entrypoint) = &config.entrypoint {
        writeln!(out, "  Entrypoint: {}", words(entrypoint))?;
    }
    if let Some(cmd) = &config.cmd {
        writeln!(out, "  Command:    {}", words(cmd))?;
    }
    if let Some(env) = &config.env {
        let mut vars: Vec<_> = env.iter().collect();
        vars.sort();
        for (key, value) in vars {
            writeln!(out, "  Env:        {key}={}", value.as_str())?;
        }
    }
    writeln!(out, "  Timeout:    {} s", config.timeout)?;
    if let Some(iter) = config.iter {
        writeln!(out, "  Iterations: {iter}")?;
    }
    writeln!(out, "  Priority:   {}", job.priority)?;
    let runner = job.runner.map_or_else(|| "-".to_owned(), |r| r.to_string());
    writeln!(out, "  Runner:     {runner}")?;
    let times = [
        ("Created", Some(job.created)),
        ("Claimed", job.claimed),
        ("Started", job.started),
        ("Completed", job.completed),
        ("Heartbeat", job.last_heartbeat),
    ];
    for (what, time) in times {
        if let Some(time) = time {
            let label = format!("{what}:");
            writeln!(out, "  {label:<11} {}", time.to_rfc3339())?;
        }
    }
    let Some(output) = &job.output else {
        return writeln!(out, "No results yet.");
    };
    if let Some(error) = &output.error {
        writeln!(out, "Error: {error}")?;
    }
    if output.results.is_empty() {
        writeln!(out, "No results.")?;
    }
    let count = output.results.len();
    for (i, result) in output.results.iter().enumerate() {
        write_iteration(out, i + 1, count, result)?;
    }
    Ok(())
}

fn write_iteration(
    out: &mut String,
    n: usize,
    count: usize,
    result: &JsonIterationOutput,
) -> std::fmt::Result {
    writeln!(
        out,
        "Iteration {n} of {count}: exit code {}",
        result.exit_code
    )?;
    write_block(out, "stdout", result.stdout.as_deref())?;
    write_block(out, "stderr", result.stderr.as_deref())?;
    if let Some(files) = &result.output {
        let mut files: Vec<_> = files.iter().collect();
        files.sort();
        for (path, contents) in files {
            write_block(out, &format!("file {path}"), Some(contents))?;
        }
    }
    Ok(())
}

/// `label:` then the text, indented, or `(none)`.
fn write_block(out: &mut String, label: &str, text: Option<&str>) -> std::fmt::Result {
    match text {
        None => writeln!(out, "  {label}: (none)"),
        Some("") => writeln!(out, "  {label}: (empty)"),
        Some(text) => {
            writeln!(out, "  {label}:")?;
            for line in text.lines() {
                writeln!(out, "    {line}")?;
            }
            Ok(())
        }
    }
}

/// Arguments as one line, each quoted when it holds a space or is empty.
fn words<T: std::ops::Deref<Target = String>>(args: &[T]) -> String {
    args.iter()
        .map(|arg| {
            let arg = arg.as_str();
            if arg.is_empty() || arg.contains(char::is_whitespace) || arg.contains('"') {
                format!("{arg:?}")
            } else {
                arg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
