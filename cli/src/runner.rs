//! `bencher runner ...`: each subcommand is one SDK call (`--all`, one per
//! page).

use runners_sdk::types::{
    JsonDirection, JsonNewRunner, JsonRunner, JsonRunnerToken, JsonUpdateRunner, RunnersSort,
};
use runners_sdk::{Client, Error, total_count, types};

use crate::parser::{
    CliDirection, CliRunner, CliRunnerCreate, CliRunnerList, CliRunnerUpdate, CliRunnerView,
    CliRunnersSort,
};

/// The page size `--all` uses unless `--per-page` is given: the API's
/// largest, for the fewest requests.
const ALL_PER_PAGE: u32 = 255;

/// What a command got back, to print.
pub enum Output {
    Runner(JsonRunner),
    Token(JsonRunnerToken),
    /// A list, with its `X-Total-Count`.
    Runners(Vec<JsonRunner>, Option<u64>),
}

type Result<T> = std::result::Result<T, Error<types::Error>>;

pub async fn run(client: &Client, command: CliRunner) -> Result<Output> {
    match command {
        CliRunner::List(list) => list_runners(client, &list).await,
        CliRunner::Create(CliRunnerCreate { name, slug }) => {
            let created = client
                .runners_post()
                .body(JsonNewRunner { name, slug })
                .send()
                .await?;
            Ok(Output::Token(created.into_inner()))
        }
        CliRunner::View(CliRunnerView { runner }) => {
            let runner = client.runner_get().runner(runner).send().await?;
            Ok(Output::Runner(runner.into_inner()))
        }
        CliRunner::Update(update) => {
            let CliRunnerUpdate {
                runner,
                name,
                slug,
                archived,
            } = update;
            let body = JsonUpdateRunner {
                name,
                slug,
                archived: archived.archived(),
            };
            let runner = client
                .runner_patch()
                .runner(runner)
                .body(body)
                .send()
                .await?;
            Ok(Output::Runner(runner.into_inner()))
        }
        CliRunner::Token(CliRunnerView { runner }) => {
            let token = client.runner_token_post().runner(runner).send().await?;
            Ok(Output::Token(token.into_inner()))
        }
    }
}

/// Whether `--all` stops after a page of `got` runners (asked `per_page`
/// a page), having `fetched` in all, with `X-Total-Count` `total`: on a
/// short or empty page, or as soon as the count is reached, so that an exact
/// multiple of the page size costs no extra request for an empty page.
fn is_last_page(got: usize, per_page: Option<u32>, fetched: usize, total: Option<u64>) -> bool {
    got == 0
        || got < per_page.unwrap_or(ALL_PER_PAGE) as usize
        || total.is_some_and(|t| fetched as u64 >= t)
}

/// One page, or with `--all` every page from the first, as one array.
async fn list_runners(client: &Client, list: &CliRunnerList) -> Result<Output> {
    let per_page = list.per_page.or(list.all.then_some(ALL_PER_PAGE));
    let mut page = list.page.unwrap_or(1);
    let mut runners: Vec<JsonRunner> = Vec::new();
    loop {
        let mut request = client.runners_get().page(page);
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
        if let Some(sort) = list.sort {
            request = request.sort(match sort {
                CliRunnersSort::Name => RunnersSort::Name,
                CliRunnersSort::Created => RunnersSort::Created,
            });
        }
        if let Some(direction) = list.direction {
            request = request.direction(match direction {
                CliDirection::Asc => JsonDirection::Asc,
                CliDirection::Desc => JsonDirection::Desc,
            });
        }
        let response = request.send().await?;
        let total = total_count(&response);
        let batch = response.into_inner();
        let fetched = runners.len() + batch.len();
        let last = !list.all || is_last_page(batch.len(), per_page, fetched, total);
        runners.extend(batch);
        if last {
            return Ok(Output::Runners(runners, total));
        }
        page += 1;
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
