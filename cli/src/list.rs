//! Lists: one page, or with `--all` every page from the first, as one
//! array. Shared by `runner list` and `spec list`.

use std::future::Future;

use runners_sdk::types::JsonDirection;
use runners_sdk::{ResponseValue, total_count};

use crate::Result;
use crate::parser::{CliDirection, CliPagination};

/// The page size `--all` uses unless `--per-page` is given: the API's
/// largest, for the fewest requests.
const ALL_PER_PAGE: u32 = 255;

/// Whether `--all` stops after a page of `got` runners (asked `per_page`
/// a page), having `fetched` in all, with `X-Total-Count` `total`: on a
/// short or empty page, or as soon as the count is reached, so that an exact
/// multiple of the page size costs no extra request for an empty page.
fn is_last_page(got: usize, per_page: Option<u32>, fetched: usize, total: Option<u64>) -> bool {
    got == 0
        || got < per_page.unwrap_or(ALL_PER_PAGE) as usize
        || total.is_some_and(|t| fetched as u64 >= t)
}

/// One page (or with `--all` every page) of a list: `fetch(page,
/// per_page)` sends the request for one page, with the list's filters.
pub async fn pages<S, T, F, Fut>(
    pagination: &CliPagination<S>,
    mut fetch: F,
) -> Result<(Vec<T>, Option<u64>)>
where
    S: clap::ValueEnum + Clone + Send + Sync + 'static,
    F: FnMut(u32, Option<u32>) -> Fut,
    Fut: Future<Output = Result<ResponseValue<Vec<T>>>>,
{
    let per_page = pagination
        .per_page
        .or(pagination.all.then_some(ALL_PER_PAGE));
    let mut page = pagination.page.unwrap_or(1);
    let mut items = Vec::new();
    loop {
        let response = fetch(page, per_page).await?;
        let total = total_count(&response);
        let batch = response.into_inner();
        let fetched = items.len() + batch.len();
        let last = !pagination.all || is_last_page(batch.len(), per_page, fetched, total);
        items.extend(batch);
        if last {
            return Ok((items, total));
        }
        page += 1;
    }
}

/// The API's direction.
pub fn direction(direction: CliDirection) -> JsonDirection {
    match direction {
        CliDirection::Asc => JsonDirection::Asc,
        CliDirection::Desc => JsonDirection::Desc,
    }
}

#[cfg(test)]
mod tests {
    use super::is_last_page;

    /// The pages `--all` asks for, for `total` runners at `per_page` a page.
    fn requests(total: usize, per_page: u32, header: bool) -> usize {
        let mut fetched = 0;
        for request in 1.. {
            let got = (total - fetched).min(per_page as usize);
            fetched += got;
            if is_last_page(got, Some(per_page), fetched, header.then_some(total as u64)) {
                return request;
            }
        }
        unreachable!()
    }

    #[test]
    fn all_stops_on_the_count_without_an_empty_page() {
        // 11 at 3 a page: 4 pages, the last one short.
        assert_eq!(requests(11, 3, true), 4);
        // An exact multiple: 3 pages of 4, no fourth request for nothing.
        assert_eq!(requests(12, 4, true), 3);
        assert_eq!(requests(0, 4, true), 1);
        // Without the header, only an empty page can end an exact multiple.
        assert_eq!(requests(12, 4, false), 4);
        assert_eq!(requests(11, 3, false), 4);
    }
}
