//! The load: N keep-alive HTTP/1.1 connections (hyper's client, the
//! lightest available), each sending its next request as soon as the last
//! answer's body has been read, for a fixed time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// Builds request number `i` of connection `conn`.
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// What one run measured.
pub struct Run {
    pub requests: u64,
    pub elapsed: Duration,
    /// Every latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }

    /// Several runs as one.
    pub fn merge(runs: Vec<Run>) -> Run {
        let mut all = Run {
            requests: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
        };
        for run in runs {
            all.requests += run.requests;
            all.elapsed += run.elapsed;
            all.latencies.extend(run.latencies);
        }
        all.latencies.sort_unstable();
        all
    }
}

/// Drives `addr` with `connections` connections for `duration`. Every
/// answer must have status `expect`; anything else aborts the benchmark,
/// since a fast error is not a result.
pub async fn drive(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    expect: u16,
    make: MakeRequest,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let make = Arc::clone(&make);
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let request = make(conn, i);
                let sent = Instant::now();
                let response = sender.send_request(request).await?;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await?.to_bytes();
                latencies.push(sent.elapsed());
                anyhow::ensure!(
                    status == expect,
                    "expected {expect}, got {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Run {
        requests: latencies.len() as u64,
        elapsed,
        latencies,
    })
}
