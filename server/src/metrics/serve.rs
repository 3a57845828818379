//! The metrics' listener (`--metrics-listen ADDR`): `GET /metrics` only,
//! the OpenMetrics text, on an address of its own (never the API's port).

use std::net::SocketAddr;
use std::sync::Arc;

use dropshot::{
    ApiDescription, Body, ConfigDropshot, HttpError, HttpServer, RequestContext, ServerBuilder,
};

use super::Metrics;
use crate::dispatch::Hub;
use crate::store::Store;

/// What a scrape reads.
pub struct Scrape {
    pub metrics: Arc<Metrics>,
    pub store: Store,
    pub hub: Arc<Hub>,
    pub connections: crate::acceptor::ConnectionStats,
}

/// The OpenMetrics text's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics, read now (without the registry's counts while the
/// database does not answer: `runners_registry_counts_read` 0).
#[dropshot::endpoint { method = GET, path = "/metrics", unpublished = true }]
async fn metrics_get(rqctx: RequestContext<Scrape>) -> Result<http::Response<Body>, HttpError> {
    let cx = rqctx.context();
    let (channels, _) = cx.hub.counts();
    let counts = Some(cx.connections.counts());
    let text = cx
        .metrics
        .render(&cx.store, channels, counts)
        .await
        .map_err(|e| {
            crate::error::unavailable(format!("cannot read the registry's counts: {e}"))
        })?;
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
        .body(Body::from(text))
        .map_err(|e| HttpError::for_internal_error(e.to_string()))
}

/// Starts the listener on `addr`.
pub fn start(
    addr: SocketAddr,
    scrape: Scrape,
    log: &slog::Logger,
) -> anyhow::Result<HttpServer<Scrape>> {
    let mut api = ApiDescription::new();
    api.register(metrics_get)
        .map_err(|e| anyhow::anyhow!("the metrics endpoint: {e}"))?;
    let config = ConfigDropshot {
        bind_address: addr,
        ..Default::default()
    };
    let log = log.new(slog::o!("listener" => "metrics"));
    ServerBuilder::new(api, scrape, log)
        .config(config)
        .start()
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))
}
