//! Wire types of projects, the organization, project and user keys
//! (Bencher v0.6.12's shapes: `JsonProject`, `JsonOrganization`,
//! `JsonProjectKey`, `JsonUserKey`, …).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{JsonDirection, time};
use crate::validate::{
    Invalid, ListQuery, Page, PerPage, QueryRules, Ref, ResourceName, SearchText, Slug, Sort,
    Validate, list_rule,
};

/// The organization that stands for this server (Bencher's
/// `JsonOrganization`: this server has exactly one, slug `default`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonOrganization {
    /// Its UUID, made at the server's first start.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// Its slug: `default`.
    pub slug: String,
    /// When it was made.
    #[serde(serialize_with = "time::serialize")]
    pub created: DateTime<Utc>,
    /// The same as `created`.
    #[serde(serialize_with = "time::serialize")]
    pub modified: DateTime<Utc>,
}

/// Who may see a project (kept and shown; this server has no public pages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone (Bencher's default).
    #[default]
    Public,
    /// Members only.
    Private,
}

/// A project: what runs are submitted to, and whose jobs and reports they
/// are (Bencher's `JsonProject`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonProject {
    /// The project's UUID (its images' repository in the registry).
    pub uuid: Uuid,
    /// The UUID of the organization (this server's one).
    pub organization: Uuid,
    /// The project's name.
    pub name: String,
    /// The project's slug, unique on this server.
    pub slug: String,
    /// The project's URL, if it has one.
    pub url: Option<String>,
    /// Who may see it.
    pub visibility: Visibility,
    /// When it was claimed: here, when it was made (every project belongs
    /// to this server's organization, so none is left to claim).
    #[serde(serialize_with = "time::serialize_opt")]
    pub claimed: Option<DateTime<Utc>>,
    /// When it was made.
    #[serde(serialize_with = "time::serialize")]
    pub created: DateTime<Utc>,
    /// When it last changed.
    #[serde(serialize_with = "time::serialize")]
    pub modified: DateTime<Utc>,
}

/// A new project.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewProject {
    /// Its name: 1 to 64 bytes, no leading or trailing whitespace, no
    /// control characters.
    pub name: ResourceName,
    /// Its slug; generated from the name when absent (with a short random
    /// suffix if taken). A given slug that is taken is 409.
    pub slug: Option<Slug>,
    /// Its URL: `http://` or `https://`, at most 2048 bytes.
    pub url: Option<ProjectUrl>,
    /// Who may see it (default `public`).
    pub visibility: Option<Visibility>,
}

/// Changes to a project: absent fields stay; `url: null` removes its URL.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonUpdateProject {
    /// Its new name.
    pub name: Option<ResourceName>,
    /// Its new slug (taken: 409).
    pub slug: Option<Slug>,
    /// Its new URL, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<ProjectUrl>")]
    pub url: Option<Option<ProjectUrl>>,
    /// Who may see it.
    pub visibility: Option<Visibility>,
}

/// A field that is present (even as null) is `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A project's URL: the rule of a registry's URL (`http://` or
/// `https://`, a host, an optional port and path).
pub type ProjectUrl = crate::validate::RegistryUrl;

/// `GET /v0/server/config/console`'s answer: where the console is.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonConsole {
    /// The console's URL (the server's own by default).
    pub url: String,
}

/// The path of a project.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct ProjectPath {
    /// The slug or UUID of a project.
    pub project: Ref,
}

/// The path of an organization's projects.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct OrganizationPath {
    /// The organization: `default`, or its UUID.
    pub organization: Ref,
}

/// The query of a project's deletion.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectDeleteQuery {
    /// Bencher's hard delete; here every delete is (its keys and reports
    /// go with it, its jobs stay).
    pub hard: Option<bool>,
}

/// The key to sort projects and keys by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NameSort {
    /// By name (ties by slug).
    #[default]
    Name,
}

name_list_query!(
    /// Query parameters of a project list.
    ProjectsQuery {
        /// Only projects with exactly this name.
        name,
        /// Only projects whose name, slug or UUID contains this text,
        /// case-insensitively.
        search,
    }
);

impl QueryRules for ProjectsQuery {
    fn rule(param: &str) -> Option<&'static str> {
        list_rule(param)
    }
}

impl Validate for ProjectsQuery {
    type Valid = ListQuery;

    fn validate(self) -> Result<ListQuery, Invalid> {
        Ok(ListQuery {
            status: None,
            sort: Sort::Name,
            direction: self.direction.map(Into::into).unwrap_or_default(),
            per_page: self
                .per_page
                .map_or(crate::validate::PER_PAGE_DEFAULT, PerPage::get),
            page: self.page.map_or(1, Page::get),
            name: self.name.map(String::from),
            search: self.search.map(|s| s.to_lowercase()),
            archived: false,
        })
    }
}

impl QueryRules for ProjectDeleteQuery {
    fn rule(param: &str) -> Option<&'static str> {
        (param == "hard").then_some("`true` or `false`")
    }
}

impl Validate for ProjectDeleteQuery {
    type Valid = bool;

    fn validate(self) -> Result<bool, Invalid> {
        Ok(self.hard.unwrap_or(false))
    }
}
