//! `bencher project ...` and `bencher report ...`: Bencher v0.6.12's
//! subcommands, arguments and help wording, where this server has the
//! endpoint (no `project allowed`, `report create` or `report delete`: runs
//! make reports, through Bencher's own `bencher run`).

use std::str::FromStr;

use clap::{Args, Subcommand, ValueEnum};
use runners_sdk::types::{RegistryUrl, ResourceId, ResourceName, Slug};

use super::{CliPagination, CliProjectKeys, parse_name, parse_ref, parse_slug, parse_uuid};
use crate::parser::CliKey;

#[derive(Subcommand, Debug)]
pub enum CliProject {
    /// List projects
    #[clap(alias = "ls")]
    List(CliProjectList),
    /// Create a project
    #[clap(alias = "add")]
    Create(CliProjectCreate),
    /// View a project
    View(CliProjectView),
    /// Update a project
    #[clap(alias = "edit")]
    Update(CliProjectUpdate),
    /// Delete a project
    #[clap(alias = "rm")]
    Delete(CliProjectDelete),
    /// Manage project API keys
    #[clap(subcommand)]
    Key(CliKey<CliProjectKeys>),
}

#[derive(Args, Debug)]
pub struct CliProjectList {
    /// Organization slug or UUID (this server's one is `default`); without
    /// it, every project the credential may see
    #[clap(value_parser = parse_ref)]
    pub organization: Option<ResourceId>,

    /// Project name
    #[clap(long)]
    pub name: Option<String>,

    /// Project search string
    #[clap(long, value_name = "QUERY")]
    pub search: Option<String>,

    #[clap(flatten)]
    pub pagination: CliPagination<CliProjectsSort>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliProjectsSort {
    /// Name of the project
    Name,
}

/// A project's URL, with its rule worded for a person.
fn parse_url(value: &str) -> Result<RegistryUrl, String> {
    value.parse().map_err(|_| {
        "a project URL is an `http://` or `https://` URL with a host, no user, password, \
         query or fragment, at most 2048 bytes (for example `https://github.com/org/repo`)"
            .to_owned()
    })
}

#[derive(Args, Debug)]
pub struct CliProjectCreate {
    /// Organization slug or UUID (this server's one is `default`)
    #[clap(value_parser = parse_ref)]
    pub organization: ResourceId,

    /// Project name
    #[clap(long, value_parser = parse_name)]
    pub name: ResourceName,

    /// Project slug
    #[clap(long, value_parser = parse_slug)]
    pub slug: Option<Slug>,

    /// Project URL
    #[clap(long, value_parser = parse_url)]
    pub url: Option<RegistryUrl>,

    /// Project visibility
    #[clap(long, default_value = "public")]
    pub visibility: CliProjectVisibility,
}

/// Project visibility
#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliProjectVisibility {
    Public,
    Private,
}

#[derive(Args, Debug)]
pub struct CliProjectView {
    /// Project slug or UUID
    #[clap(value_parser = parse_ref)]
    pub project: ResourceId,
}

#[derive(Args, Debug)]
pub struct CliProjectUpdate {
    /// Project slug or UUID
    #[clap(value_parser = parse_ref)]
    pub project: ResourceId,

    /// Project name
    #[clap(long, value_parser = parse_name)]
    pub name: Option<ResourceName>,

    /// Project slug
    #[clap(long, value_parser = parse_slug)]
    pub slug: Option<Slug>,

    /// Project URL
    /// To remove the current project URL without replacing it, use an underscore (`_`).
    #[clap(long, value_parser = parse_elided_url)]
    pub url: Option<Elided<RegistryUrl>>,

    /// Project visibility
    #[clap(long)]
    pub visibility: Option<CliProjectVisibility>,
}

/// A value, or `_` for none (Bencher's `ElidedOption`): `--url _` removes
/// the URL.
#[derive(Debug, Clone)]
pub struct Elided<T>(pub Option<T>);

fn parse_elided_url(value: &str) -> Result<Elided<RegistryUrl>, String> {
    match value {
        "_" => Ok(Elided(None)),
        _ => parse_url(value).map(|url| Elided(Some(url))),
    }
}

#[derive(Args, Debug)]
pub struct CliProjectDelete {
    /// Project slug or UUID
    #[clap(value_parser = parse_ref)]
    pub project: ResourceId,

    /// Hard delete the project (requires server admin; every delete here is
    /// one: its keys and reports go with it, its jobs stay)
    #[clap(long)]
    pub hard: bool,
}

#[derive(Subcommand, Debug)]
pub enum CliReport {
    /// List reports
    #[clap(alias = "ls")]
    List(CliReportList),
    /// View a report
    #[clap(alias = "get")]
    View(CliReportView),
}

/// A time given in seconds since the Unix epoch, as Bencher's
/// `--start-time` and `--end-time` take it, held in milliseconds (what the
/// API takes).
#[derive(Debug, Clone, Copy)]
pub struct EpochMillis(pub i64);

impl FromStr for EpochMillis {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value.parse::<i64>().ok().and_then(|s| s.checked_mul(1000)) {
            Some(millis) => Ok(Self(millis)),
            None => Err("expected whole seconds since the Unix epoch (for example \
                 `1767225600`)"
                .to_owned()),
        }
    }
}

#[derive(Args, Debug)]
pub struct CliReportList {
    /// Project slug or UUID
    #[clap(value_parser = parse_ref)]
    pub project: ResourceId,

    /// Branch name, slug, or UUID
    #[clap(long, value_parser = parse_name)]
    pub branch: Option<ResourceName>,

    /// Testbed name, slug, or UUID
    #[clap(long, value_parser = parse_name)]
    pub testbed: Option<ResourceName>,

    /// Start time (seconds since epoch)
    #[clap(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub start_time: Option<EpochMillis>,

    /// End time (seconds since epoch)
    #[clap(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub end_time: Option<EpochMillis>,

    #[clap(flatten)]
    pub pagination: CliPagination<CliReportsSort>,

    /// Filter for reports with an archived branch or testbed (accepted;
    /// nothing is archived here)
    #[clap(long)]
    pub archived: bool,

    /// Include the full results and alerts for each report (accepted; a
    /// list here always holds the results)
    #[clap(long)]
    pub expand: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliReportsSort {
    /// Date time of the report
    DateTime,
}

#[derive(Args, Debug)]
pub struct CliReportView {
    /// Project slug or UUID
    #[clap(value_parser = parse_ref)]
    pub project: ResourceId,

    /// Report UUID
    #[clap(value_parser = parse_report)]
    pub report: String,
}

fn parse_report(value: &str) -> Result<String, String> {
    parse_uuid(
        value,
        "a report is named by its UUID (`bencher report list PROJECT` shows them)",
    )
}
