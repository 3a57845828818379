//! Lists: one page, or with `--all` every page from the first, as one
//! array. `runner list` and `spec list` are one function over the SDK's two
//! list builders, through [`ListRequest`].

use std::future::Future;

use runners_sdk::builder::{RunnersGet, SpecsGet};
use runners_sdk::types::{JsonDirection, JsonRunner, JsonSpec, RunnersSort, SpecsSort};
use runners_sdk::{MAX_PER_PAGE, ResponseValue, every_page, total_count};

use clap::ValueEnum;

use crate::parser::{
    CliDirection, CliList, CliListed, CliPagination, CliRunnersSort, CliSpecsSort,
};
use crate::{Output, Result};

/// A list request of the SDK (`runners_get()`, `specs_get()`): the filters
/// and paging both lists take, each a method of the progenitor builder.
pub trait ListRequest: Sized {
    /// The CLI's sort keys for this list.
    type Sort: CliListed;
    /// What the list holds.
    type Item: serde::Serialize;

    fn page(self, page: u32) -> Self;
    fn per_page(self, per_page: u32) -> Self;
    fn archived(self, archived: bool) -> Self;
    fn name(self, name: String) -> Self;
    fn search(self, search: String) -> Self;
    fn sort(self, sort: Self::Sort) -> Self;
    fn direction(self, direction: JsonDirection) -> Self;
    fn send(self) -> impl Future<Output = Result<ResponseValue<Vec<Self::Item>>>>;
}

/// Implements [`ListRequest`] for a builder by calling its own methods of
/// the same names (the two builders are distinct types with no trait of
/// their own).
macro_rules! list_request {
    ($builder:ident, $item:ty, $cli_sort:ident => $sort:ident) => {
        impl ListRequest for $builder<'_> {
            type Sort = $cli_sort;
            type Item = $item;

            fn page(self, page: u32) -> Self {
                $builder::page(self, page)
            }
            fn per_page(self, per_page: u32) -> Self {
                $builder::per_page(self, per_page)
            }
            fn archived(self, archived: bool) -> Self {
                $builder::archived(self, archived)
            }
            fn name(self, name: String) -> Self {
                $builder::name(self, name)
            }
            fn search(self, search: String) -> Self {
                $builder::search(self, search)
            }
            fn sort(self, sort: $cli_sort) -> Self {
                $builder::sort(
                    self,
                    match sort {
                        $cli_sort::Name => $sort::Name,
                        $cli_sort::Created => $sort::Created,
                    },
                )
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

list_request!(RunnersGet, JsonRunner, CliRunnersSort => RunnersSort);
list_request!(SpecsGet, JsonSpec, CliSpecsSort => SpecsSort);

/// `runner list` or `spec list`: one page (or with `--all` every page) of
/// the list `new()` starts, with the filters of `list`.
pub async fn list<R: ListRequest>(new: impl Fn() -> R, list: &CliList<R::Sort>) -> Result<Output> {
    let pagination = &list.pagination;
    let request = |page: u32, per_page: Option<u32>| {
        let mut request = new().page(page);
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
        if let Some(sort) = pagination.sort {
            request = request.sort(sort);
        }
        if let Some(d) = pagination.direction {
            request = request.direction(direction(d));
        }
        request.send()
    };
    let (items, total) = pages(pagination, request).await?;
    Ok(Output::list(items, total))
}

/// One page of a list (`--page`, `--per-page`), or with `--all` every page
/// from the first: `request(page, per_page)` sends one page's request, with
/// the list's filters.
pub async fn pages<S, T, F, Fut>(
    pagination: &CliPagination<S>,
    request: F,
) -> Result<(Vec<T>, Option<u64>)>
where
    S: ValueEnum + Clone + Send + Sync + 'static,
    F: Fn(u32, Option<u32>) -> Fut,
    Fut: Future<Output = Result<ResponseValue<Vec<T>>>>,
{
    if pagination.all {
        let per_page = pagination.per_page.unwrap_or(MAX_PER_PAGE);
        every_page(1, per_page, |page, per_page| request(page, Some(per_page))).await
    } else {
        let response = request(pagination.page.unwrap_or(1), pagination.per_page).await?;
        let total = total_count(&response);
        Ok((response.into_inner(), total))
    }
}

/// The API's direction.
pub fn direction(direction: CliDirection) -> JsonDirection {
    match direction {
        CliDirection::Asc => JsonDirection::Asc,
        CliDirection::Desc => JsonDirection::Desc,
    }
}
