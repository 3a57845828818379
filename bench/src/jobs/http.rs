//! The admin's HTTP requests: one keep-alive connection, or many for the
//! setup's bulk requests (specs, queued jobs), and the bodies they send.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::workload::request;

/// HTTP connections for the setup's bulk requests (specs, queued jobs).
pub(super) const SETUP_CONNECTIONS: usize = 16;

/// The body of `POST /v0/jobs` for a job of `spec` in `project`.
pub(super) fn job_body(project: uuid::Uuid, spec: &str) -> String {
    format!(
        "{{\"registry\": \"http://127.0.0.1:5000\", \"project\": \"{project}\", \
         \"digest\": \"sha256:{}\", \"spec\": \"{spec}\", \"priority\": 0}}",
        "ab".repeat(32)
    )
}

pub(super) async fn http(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

pub(super) async fn call(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<(u16, http::HeaderMap, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, headers, body))
}

/// Creates a spec named `name`; its slug.
pub(super) async fn create_spec(
    api: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    admin: &str,
    name: &str,
) -> anyhow::Result<String> {
    let body = format!(
        "{{\"name\": \"{name}\", \"architecture\": \"x86_64\", \"os\": \"linux\", \
         \"cpu\": 2, \"memory\": 8589934592, \"disk\": 107374182400}}"
    );
    let (status, _, body) =
        call(api, request(addr, "POST", "/v0/specs", admin, body.into())).await?;
    ensure!(
        status == 201,
        "POST /v0/specs: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let spec: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(spec["slug"]
        .as_str()
        .context("a spec has no slug")?
        .to_owned())
}

/// How many jobs of `spec` have `status` (the list's `X-Total-Count`).
pub(super) async fn count_jobs(
    api: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    admin: &str,
    spec: &str,
    status: &str,
) -> anyhow::Result<u64> {
    let path = format!("/v0/jobs?spec={spec}&status={status}&per_page=1");
    let (code, headers, body) = call(api, request(addr, "GET", &path, admin, Bytes::new())).await?;
    ensure!(
        code == 200,
        "GET {path}: {code}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(headers
        .get("x-total-count")
        .context("no X-Total-Count")?
        .to_str()?
        .parse()?)
}

/// Sends requests `0..n` (made by `make`) over [`SETUP_CONNECTIONS`]
/// keep-alive connections; each answer must have status `expect`. How long
/// it took.
pub(super) async fn bulk(
    addr: SocketAddr,
    n: usize,
    expect: u16,
    make: impl Fn(usize) -> Request<Full<Bytes>> + Send + Sync + 'static,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SETUP_CONNECTIONS {
        let (make, next) = (Arc::clone(&make), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut sender = http(addr).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let (status, _, body) = call(&mut sender, make(i)).await?;
                ensure!(
                    status == expect,
                    "expected {expect}, got {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}
