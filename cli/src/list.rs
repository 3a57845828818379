//! Lists: one page, or with `--all` every page from the first, as one
//! array. Every list command is one function ([`paged`]) over the SDK's
//! list builders, through [`Paged`]; the filters some lists share are
//! traits of their own ([`Named`], [`Archived`]).

use std::future::Future;

use runners_sdk::builder::{
    JobsGet, OrgProjectsGet, ProjJobsGet, ProjKeysGet, ProjReportsGet, ProjectsGet, RunnersGet,
    SpecsGet, UserKeysGet,
};
use runners_sdk::types::{
    JobsSort, JsonDirection, JsonJob, JsonProject, JsonProjectKey, JsonReport, JsonRunner,
    JsonSpec, JsonUserKey, NameSort, ReportsSort, RunnersSort, SpecsSort,
};
use runners_sdk::{MAX_PER_PAGE, ResponseValue, every_page, total_count};

use clap::ValueEnum;

use crate::parser::{
    CliDirection, CliJobsSort, CliList, CliPagination, CliProjectKeysSort, CliProjectsSort,
    CliReportsSort, CliRunnersSort, CliSpecsSort, CliUserKeysSort,
};
use crate::{Output, Result};

/// A list request of the SDK (`runners_get()`, `proj_keys_get()`, ...):
/// the sort and paging every list takes, each a method of the progenitor
/// builder.
pub trait Paged: Sized {
    /// The CLI's sort keys for this list.
    type Sort: ValueEnum + Clone + Copy + Send + Sync + 'static;
    /// What the list holds.
    type Item: serde::Serialize;

    fn page(self, page: u32) -> Self;
    fn per_page(self, per_page: u32) -> Self;
    fn sort(self, sort: Self::Sort) -> Self;
    fn direction(self, direction: JsonDirection) -> Self;
    fn send(self) -> impl Future<Output = Result<ResponseValue<Vec<Self::Item>>>>;
}

/// A list filtered by name and search text (runners, specs, projects,
/// keys).
pub trait Named: Sized {
    fn name(self, name: String) -> Self;
    fn search(self, search: String) -> Self;
}

/// A list that leaves out archived items unless asked (runners, specs).
pub trait Archived: Sized {
    fn archived(self, archived: bool) -> Self;
}

/// Implements a filter trait for builders by calling their own methods of
/// the same names (the builders are distinct types with no trait of their
/// own).
macro_rules! delegate {
    ($trait:ident for [$($builder:ident),+] $methods:tt) => {
        $(delegate!(@one $trait, $builder, $methods);)+
    };
    (@one $trait:ident, $builder:ident, { $(fn $method:ident($arg:ident: $ty:ty);)+ }) => {
        impl $trait for $builder<'_> {
            $(fn $method(self, $arg: $ty) -> Self {
                $builder::$method(self, $arg)
            })+
        }
    };
}
pub(crate) use delegate;

/// Implements [`Paged`] for a builder, its CLI sort keys mapped by name
/// onto the API's.
macro_rules! paged {
    ($builder:ident, $item:ty, $cli_sort:ident => $sort:ident { $($variant:ident),+ }) => {
        impl Paged for $builder<'_> {
            type Sort = $cli_sort;
            type Item = $item;

            fn page(self, page: u32) -> Self {
                $builder::page(self, page)
            }
            fn per_page(self, per_page: u32) -> Self {
                $builder::per_page(self, per_page)
            }
            fn sort(self, sort: $cli_sort) -> Self {
                $builder::sort(self, match sort { $($cli_sort::$variant => $sort::$variant),+ })
            }
            fn direction(self, direction: JsonDirection) -> Self {
                $builder::direction(self, direction)
            }
            fn send(self) -> impl Future<Output = Result<ResponseValue<Vec<$item>>>> {
                $builder::send(self)
            }
        }
    };
}

paged!(RunnersGet, JsonRunner, CliRunnersSort => RunnersSort { Name, Created });
paged!(SpecsGet, JsonSpec, CliSpecsSort => SpecsSort { Name, Created });
paged!(JobsGet, JsonJob, CliJobsSort => JobsSort { Created });
paged!(ProjJobsGet, JsonJob, CliJobsSort => JobsSort { Created });
paged!(ProjectsGet, JsonProject, CliProjectsSort => NameSort { Name });
paged!(OrgProjectsGet, JsonProject, CliProjectsSort => NameSort { Name });
paged!(ProjKeysGet, JsonProjectKey, CliProjectKeysSort => NameSort { Name });
paged!(UserKeysGet, JsonUserKey, CliUserKeysSort => NameSort { Name });
paged!(ProjReportsGet, JsonReport, CliReportsSort => ReportsSort { DateTime });

delegate!(Named for [RunnersGet, SpecsGet, ProjectsGet, OrgProjectsGet, ProjKeysGet, UserKeysGet] {
    fn name(name: String);
    fn search(search: String);
});
delegate!(Archived for [RunnersGet, SpecsGet] {
    fn archived(archived: bool);
});

/// `runner list` or `spec list`: one page (or with `--all` every page) of
/// the list `new()` starts, with the filters of `list`.
pub async fn list<R>(new: impl Fn() -> R, list: &CliList<R::Sort>) -> Result<Output>
where
    R: Paged + Named + Archived,
    R::Sort: crate::parser::CliListed,
{
    let new = || {
        let request = named(new(), list.name.as_ref(), list.search.as_ref());
        if list.archived {
            request.archived(true)
        } else {
            request
        }
    };
    paged(new, &list.pagination).await
}

/// `request` with the name and search filters that were given.
pub fn named<R: Named>(request: R, name: Option<&String>, search: Option<&String>) -> R {
    let request = match name {
        Some(name) => request.name(name.clone()),
        None => request,
    };
    match search {
        Some(search) => request.search(search.clone()),
        None => request,
    }
}

/// One page of the list `new()` starts, with its filters (`--page`,
/// `--per-page`, `--sort`, `--direction`), or with `--all` every page from
/// the first.
pub async fn paged<R: Paged>(
    new: impl Fn() -> R,
    pagination: &CliPagination<R::Sort>,
) -> Result<Output> {
    let request = |page: u32, per_page: Option<u32>| {
        let mut request = new().page(page);
        if let Some(per_page) = per_page {
            request = request.per_page(per_page);
        }
        if let Some(sort) = pagination.sort {
            request = request.sort(sort);
        }
        if let Some(d) = pagination.direction {
            request = request.direction(direction(d));
        }
        request.send()
    };
    let (items, total) = if pagination.all {
        let per_page = pagination.per_page.unwrap_or(MAX_PER_PAGE);
        every_page(1, per_page, |page, per_page| request(page, Some(per_page))).await?
    } else {
        let response = request(pagination.page.unwrap_or(1), pagination.per_page).await?;
        let total = total_count(&response);
        (response.into_inner(), total)
    };
    Ok(Output::list(items, total))
}

/// The API's direction.
fn direction(direction: CliDirection) -> JsonDirection {
    match direction {
        CliDirection::Asc => JsonDirection::Asc,
        CliDirection::Desc => JsonDirection::Desc,
    }
}
