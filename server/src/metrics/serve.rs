//! The metrics' listener (`--metrics-listen ADDR`): `GET /metrics` only,
//! the OpenMetrics text, on an address of its own (never the API's port).
//! Its clients reach dropshot through an acceptor of its own, as the API's
//! do: at most [`MAX_CONNECTIONS`] at once, with the API's timeouts, so
//! idle or stalled sockets on it cannot exhaust the process' files.

use std::net::SocketAddr;
use std::sync::Arc;

use dropshot::{
    ApiDescription, Body, ConfigDropshot, HttpError, HttpServer, RequestContext, ServerBuilder,
};

use super::Metrics;
use crate::acceptor::{Acceptor, Limits};
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

/// The connections the metrics' listener holds at once (a few Prometheus
/// servers scrape it; past this the acceptor evicts or waits, as the API's).
pub const MAX_CONNECTIONS: usize = 32;

/// The running listener: its acceptor in front of dropshot on loopback.
pub struct Listener {
    http: HttpServer<Scrape>,
    acceptor: Acceptor,
}

impl Listener {
    /// The address scrapers reach.
    pub fn local_addr(&self) -> SocketAddr {
        self.acceptor.local_addr()
    }

    /// Stops accepting, and closes every connection.
    pub async fn close(mut self) {
        self.acceptor.stop_accepting().await;
        self.acceptor.close_all();
        let _ = self.http.close().await;
    }
}

/// Starts the listener on `addr`, within `limits`' timeouts.
pub async fn start(
    addr: SocketAddr,
    scrape: Scrape,
    limits: &Limits,
    log: &slog::Logger,
) -> anyhow::Result<Listener> {
    let listener = Acceptor::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
    let mut api = ApiDescription::new();
    api.register(metrics_get)
        .map_err(|e| anyhow::anyhow!("the metrics endpoint: {e}"))?;
    let config = ConfigDropshot {
        bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    };
    let log = log.new(slog::o!("listener" => "metrics"));
    let http = ServerBuilder::new(api, scrape, log.clone())
        .config(config)
        .start()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics: {e}"))?;
    let (backend, limits) = (http.local_addr(), limits.clone());
    let acceptor = Acceptor::start(listener, backend, None, limits, MAX_CONNECTIONS, log)?;
    Ok(Listener { http, acceptor })
}
