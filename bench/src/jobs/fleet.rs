//! The runners: raw WebSocket clients (the upgrade request written by
//! hand), each an agent in a task of its own speaking Bencher v0.6.12's
//! protocol.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::Runner;

/// Channels being opened at once (the upgrade requests in flight).
const CONNECTING: usize = 64;

type Ws = WebSocketStream<TcpStream>;

/// Opens runner `runner`'s channel: the upgrade request written by hand,
/// then a WebSocket client over the same socket.
async fn channel(addr: SocketAddr, runner: &Runner) -> anyhow::Result<Ws> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let upgrade = format!(
        "GET /v0/runners/{}/channel HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {}\r\n\r\n",
        runner.slug, runner.key
    );
    tcp.write_all(upgrade.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    let end = loop {
        let n = tcp.read(&mut buf).await?;
        ensure!(
            n > 0,
            "{}: the server closed during the upgrade",
            runner.slug
        );
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        ensure!(
            head.len() < 16 * 1024,
            "{}: the upgrade answer is too long",
            runner.slug
        );
    };
    let rest = head.split_off(end);
    ensure!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}: the upgrade was refused: {}",
        runner.slug,
        String::from_utf8_lossy(&head)
    );
    Ok(WebSocketStream::from_partially_read(tcp, rest, Role::Client, None).await)
}

/// What a runner saw, told to the benchmark.
#[derive(Debug)]
pub(super) enum Seen {
    /// It sent `ready`.
    Ready,
    /// A `job` frame arrived, at `at`.
    Job { uuid: String, at: Instant },
    /// Its job's `completed` was acknowledged, `took` after its `ready`.
    Done { took: Duration },
}

/// Runners with their channels open, each in a task of its own.
pub(super) struct Fleet {
    go: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<u64>>>,
}

impl Fleet {
    /// Opens the channels of `runners` ([`CONNECTING`] at a time); each says
    /// `ready` with `poll` once told to go.
    pub(super) async fn connect(
        addr: SocketAddr,
        runners: &[Runner],
        poll: u32,
    ) -> anyhow::Result<(Self, mpsc::UnboundedReceiver<Seen>)> {
        let sockets: Vec<Ws> = futures::stream::iter(runners.iter().cloned())
            .map(|runner| async move { channel(addr, &runner).await })
            .buffer_unordered(CONNECTING)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        let (go, _) = watch::channel(false);
        let (stop, _) = watch::channel(false);
        let (tell, seen) = mpsc::unbounded_channel();
        let tasks = sockets
            .into_iter()
            .map(|ws| {
                tokio::spawn(agent(
                    ws,
                    poll,
                    go.subscribe(),
                    stop.subscribe(),
                    tell.clone(),
                ))
            })
            .collect();
        Ok((Self { go, stop, tasks }, seen))
    }

    /// Every runner says `ready`.
    pub(super) fn go(&self) {
        self.go.send_replace(true);
    }

    /// Closes every channel (between jobs); the jobs they completed.
    pub(super) async fn stop(self) -> anyhow::Result<u64> {
        self.stop.send_replace(true);
        let mut done = 0;
        for task in self.tasks {
            done += task.await??;
        }
        Ok(done)
    }
}

/// One runner: `ready` → `job` → `running` → `ack` → `completed` → `ack` →
/// `ready` …, or `no_job` → `ready`, until told to stop while it waits.
/// The jobs it completed.
async fn agent(
    mut ws: Ws,
    poll: u32,
    mut go: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    seen: mpsc::UnboundedSender<Seen>,
) -> anyhow::Result<u64> {
    go.wait_for(|go| *go).await?;
    let ready = Message::text(format!("{{\"event\":\"ready\",\"poll_timeout\":{poll}}}"));
    let mut done = 0;
    loop {
        ws.send(ready.clone()).await?;
        let asked = Instant::now();
        let _ = seen.send(Seen::Ready);
        let msg = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            msg = next(&mut ws) => msg?,
        };
        let at = Instant::now();
        match msg["event"].as_str() {
            Some("no_job") => continue,
            Some("job") => {}
            _ => bail!("expected `job` or `no_job`, got {msg}"),
        }
        let uuid = msg["uuid"]
            .as_str()
            .context("a job without uuid")?
            .to_owned();
        let _ = seen.send(Seen::Job {
            uuid: uuid.clone(),
            at,
        });
        ws.send(Message::text("{\"event\":\"running\"}")).await?;
        acked(&mut ws, &uuid).await?;
        let completed = format!(
            "{{\"event\":\"completed\",\"job\":\"{uuid}\",\
             \"results\":[{{\"exit_code\":0,\"stdout\":\"bench\"}}]}}"
        );
        ws.send(Message::text(completed)).await?;
        acked(&mut ws, &uuid).await?;
        done += 1;
        let _ = seen.send(Seen::Done {
            took: asked.elapsed(),
        });
    }
    let _ = ws.close(None).await;
    Ok(done)
}

/// The next message from the server, parsed.
async fn next(ws: &mut Ws) -> anyhow::Result<serde_json::Value> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str())?),
            Some(Ok(Message::Close(frame))) => bail!("the server closed the channel: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the channel ended"),
        }
    }
}

/// The next message must be `ack` for `job`.
async fn acked(ws: &mut Ws, job: &str) -> anyhow::Result<()> {
    let msg = next(ws).await?;
    ensure!(
        msg["event"] == "ack" && msg["job"] == job,
        "expected the ack of {job}, got {msg}"
    );
    Ok(())
}
