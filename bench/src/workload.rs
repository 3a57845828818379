//! The workloads the benchmark runs, and the requests each sends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::ROTATED_FROM;
use crate::load::MakeRequest;
use crate::seed::slug;

/// The workloads, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workload {
    ViewBySlug,
    ViewByUuid,
    ListPage1,
    ListSearch,
    ListDeepPage,
    Create,
    RotateToken,
    Heartbeat,
    SpecCreate,
    /// `GET /metrics` on the server's metrics listener (the registry's
    /// counts read at each scrape).
    Scrape,
}

impl Workload {
    pub(crate) const ALL: [Workload; 10] = [
        Self::ViewBySlug,
        Self::ViewByUuid,
        Self::ListPage1,
        Self::ListSearch,
        Self::ListDeepPage,
        Self::Create,
        Self::RotateToken,
        Self::Heartbeat,
        Self::SpecCreate,
        Self::Scrape,
    ];

    /// The name printed, and matched by `--only`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ViewBySlug => "view by slug",
            Self::ViewByUuid => "view by uuid",
            Self::ListPage1 => "list page 1",
            Self::ListSearch => "list search",
            Self::ListDeepPage => "list deep page",
            Self::Create => "create",
            Self::RotateToken => "rotate key",
            Self::Heartbeat => "heartbeat",
            Self::SpecCreate => "spec create",
            Self::Scrape => "metrics scrape",
        }
    }

    /// Whether the ceiling serves it (it has no specs, and no metrics).
    pub(crate) fn has_ceiling(self) -> bool {
        !matches!(self, Self::SpecCreate | Self::Scrape)
    }

    /// Where the server's side of it is sent: the metrics' listener for a
    /// scrape, else the API's address.
    pub(crate) fn target(self, server: &crate::process::Process) -> SocketAddr {
        match (self, server.metrics) {
            (Self::Scrape, Some(metrics)) => metrics,
            _ => server.addr,
        }
    }

    /// The status every answer must have.
    pub(crate) fn expect(self) -> u16 {
        match self {
            Self::Create | Self::RotateToken | Self::SpecCreate => 201,
            _ => 200,
        }
    }

    /// Request number `i` of connection `c`.
    pub(crate) fn request(
        self,
        plan: &Plan,
        addr: SocketAddr,
        c: usize,
        i: u64,
    ) -> Request<Full<Bytes>> {
        let size = plan.size;
        let get = |path: String| request(addr, "GET", &path, &plan.admin, Bytes::new());
        let post = |path: String| request(addr, "POST", &path, &plan.admin, Bytes::new());
        match self {
            Self::ViewBySlug => get(format!("/v0/runners/{}", slug(pick(c, i, 0..size)))),
            Self::ViewByUuid => get(format!("/v0/runners/{}", plan.uuids[pick(c, i, 0..size)])),
            Self::ListPage1 => get("/v0/runners?per_page=8".into()),
            // 10 characters, in 100 names ("bench runner 000100" to "…000199").
            Self::ListSearch => get("/v0/runners?per_page=8&search=unner%200001".into()),
            // Page 6,250 of 8 a page (offset 49,992), or the last page.
            Self::ListDeepPage => get(format!(
                "/v0/runners?per_page=8&page={}",
                (size / 8).clamp(1, 6_250)
            )),
            Self::Create => {
                let n = plan.created.fetch_add(1, Ordering::Relaxed);
                let body = format!("{{\"name\": \"created {n}\"}}");
                request(addr, "POST", "/v0/runners", &plan.admin, body.into())
            }
            Self::RotateToken => post(format!(
                "/v0/runners/{}/key",
                slug(pick(c, i, ROTATED_FROM..size))
            )),
            Self::Heartbeat => request(
                addr,
                "POST",
                &format!("/v0/runners/{}/heartbeat", slug(c)),
                &plan.runner_tokens[c],
                Bytes::new(),
            ),
            Self::SpecCreate => {
                let n = plan.created.fetch_add(1, Ordering::Relaxed);
                let body = format!(
                    "{{\"name\": \"spec {n}\", \"architecture\": \"x86_64\", \"os\": \"linux\", \
                     \"cpu\": 8, \"memory\": 34359738368, \"disk\": 1099511627776}}"
                );
                request(addr, "POST", "/v0/specs", &plan.admin, body.into())
            }
            Self::Scrape => get("/metrics".into()),
        }
    }

    /// This workload's requests against `addr`.
    pub(crate) fn requests(self, plan: &Arc<Plan>, addr: SocketAddr) -> MakeRequest {
        let plan = Arc::clone(plan);
        Arc::new(move |c, i| self.request(&plan, addr, c, i))
    }
}

/// `--only`'s values: the workloads' names as printed.
impl clap::ValueEnum for Workload {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// What the workloads' requests are made from.
pub(crate) struct Plan {
    pub(crate) size: usize,
    pub(crate) admin: String,
    pub(crate) uuids: Vec<String>,
    pub(crate) runner_tokens: Vec<String>,
    /// Runners created so far by the `create` workload (for fresh names).
    pub(crate) created: AtomicU64,
}

pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"));
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(Full::new(body)).unwrap()
}

/// A spread of runner indexes: connection `c`'s request `i`.
pub(crate) fn pick(c: usize, i: u64, range: std::ops::Range<usize>) -> usize {
    let n = (c as u64)
        .wrapping_mul(7_919)
        .wrapping_add(i.wrapping_mul(104_729));
    range.start + (n % (range.end - range.start) as u64) as usize
}
