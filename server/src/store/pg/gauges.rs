//! The registry's counts for the metrics on PostgreSQL (the twin of
//! SQLite's `gauges` in `../sqlite/mod.rs`): the statements of
//! `model/gauges.rs`, and the runners' total summed over the slots of
//! `runner_counts` and the jobs' over those of `job_counts`.

use super::{PgStore, StoreError};
use crate::store::model::gauges::{self as g, Gauges};

pub(super) async fn gauges(store: &PgStore) -> Result<Gauges, StoreError> {
    let client = store.client().await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let one = async |sql: &str| -> Result<i64, StoreError> {
        Ok(client.query_one(sql, &[]).await?.try_get(0)?)
    };
    let active = one("SELECT coalesce(sum(active), 0)::bigint FROM runner_counts").await?;
    let online = one(g::ONLINE).await?;
    let busy = client.query_one(g::BUSY, &[]).await?;
    let busy = (count(busy.try_get(0)?), count(busy.try_get(1)?));
    static JOBS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        g::job_counts_sql(|c| format!("coalesce(sum({c}), 0)::bigint"))
    });
    let row = client.query_one(JOBS.as_str(), &[]).await?;
    let mut jobs = [0; g::JOB_STATUSES];
    for (i, n) in jobs.iter_mut().enumerate() {
        *n = count(row.try_get(i)?);
    }
    let by_spec = client
        .query(g::PENDING_BY_SPEC, &[])
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, count(r.try_get(1)?))))
        .collect::<Result<_, tokio_postgres::Error>>()?;
    Ok(Gauges::from_counts(
        count(active),
        count(online),
        busy,
        jobs,
        by_spec,
    ))
}
