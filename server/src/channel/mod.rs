//! The runner channel: Bencher v0.6.12's agent protocol on a WebSocket
//! (`plus/api_runners/src/channel.rs` in Bencher's repository), served
//! after the runner's key was checked (before the upgrade).
//!
//! The channel is a loop of three states:
//!
//! - **idle**: waiting for `ready` (at most the heartbeat timeout). A
//!   `completed`, `failed` or `canceled` for one of the runner's jobs (sent
//!   again after a reconnect) is taken and acknowledged here.
//! - **waiting**: after `ready`, until a job is claimed (`job`) or the
//!   `poll_timeout` passes (`no_job`). Waiting costs no database statement:
//!   the runner is woken by the [`Hub`] when a job it can take appears.
//! - **running**: a job was given; `running` and `heartbeat` are
//!   acknowledged (`ack {job}`), or answered `cancel` if the job was
//!   canceled; `completed`, `failed` and `canceled` end it. No message for
//!   the heartbeat timeout fails the job and closes the channel
//!   (`heartbeat_timeout`); running past the job's timeout plus the grace
//!   cancels it (`cancel`, then close `job_timeout_exceeded`).
//!
//! Frames that are not the protocol's close the channel with a reason: a
//! binary frame (1003), text that is not a message (1007), a message over
//! [`MESSAGE_MAX_BYTES`] (1009), a report on a job that is not this
//! runner's (1008). Every runner message writes its `last_heartbeat`.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

use crate::auth::{OciTokens, RunnerKey};
use crate::dispatch::{Control, Hub};
use crate::store::model::{AgentInfo, JobReport, JobStatus};
use crate::store::rules::{Claimant, Claimed, Expiry, Reported, RunnerReport};
use crate::store::{RunnerChannel, RunnerId, SpecId};
use crate::store::{Store, StoreError, now};
use crate::types::{
    CloseReason, JsonClaimedJob, JsonIterationOutput, JsonSpec, RunnerMessage, ServerMessage,
};
use crate::validate::POLL_TIMEOUT_DEFAULT;

mod message;
mod running;
mod session;

use message::{explain, output};
use session::stopping;

/// The largest message a runner may send (results with their output).
pub const MESSAGE_MAX_BYTES: usize = 512 * 1024;
/// The longest a silent channel waits past its own heartbeat deadline for
/// the store's (which counts from the write of the last message).
const SETTLE_MAX: Duration = Duration::from_secs(1);
/// Why a revoked runner's channel closes (and its job fails).
const REVOKED: &str = "the runner was archived or re-keyed";
/// Why a running job fails when its runner sends a message over
/// [`MESSAGE_MAX_BYTES`] (its output, most likely): at once, not at the
/// heartbeat timeout.
const OVERSIZED: &str = "the runner sent a message over 512 KiB, the most a channel takes: a \
                         job's output (every iteration's stdout, stderr and files) must fit in it";
/// How long a closed channel keeps reading what the runner still sends.
const LINGER: Duration = Duration::from_secs(2);
/// How long a frame may take to send before the runner counts as gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What a channel needs of the server.
pub struct Channel {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub oci: Arc<OciTokens>,
    pub log: slog::Logger,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Why a channel ends.
enum End {
    /// The runner closed it, or its connection broke.
    Gone,
    /// The server closes it, with this code and reason.
    Close(CloseCode, String),
    /// The runner was archived or re-keyed: closed, and its job failed.
    Revoked,
    /// The server is shutting down: closed 1001 (going away), and a job not
    /// yet running is left to the timeout rules after the restart.
    Stopping,
}

impl End {
    fn reason(reason: CloseReason) -> Self {
        let text = serde_json::to_string(&reason).unwrap_or_default();
        Self::Close(CloseCode::Normal, text)
    }
}

impl From<tungstenite::Error> for End {
    fn from(e: tungstenite::Error) -> Self {
        match e {
            tungstenite::Error::Capacity(e) => Self::Close(
                CloseCode::Size,
                format!("message too big ({e}): the limit is {MESSAGE_MAX_BYTES} bytes"),
            ),
            tungstenite::Error::Utf8(_) => {
                Self::Close(CloseCode::Invalid, "a text frame must be UTF-8".into())
            }
            tungstenite::Error::Protocol(e) => {
                Self::Close(CloseCode::Protocol, format!("not WebSocket: {e}"))
            }
            _ => Self::Gone,
        }
    }
}

type Ws = WebSocketStream<dropshot::WebsocketConnectionRaw>;

/// One runner's channel, from the upgrade to the close.
struct Session<'a> {
    ch: &'a Channel,
    key: &'a RunnerKey,
    ws: Ws,
    controls: tokio::sync::mpsc::UnboundedReceiver<Control>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// The runner's specs (row ids), as of its last claim.
    specs: Vec<SpecId>,
    /// The job it runs, if any.
    job: Option<Claimed>,
    /// The runner spoke (`ready`, with its agent's report if any): written
    /// with the next claim.
    seen: Option<Option<AgentInfo>>,
    /// When this channel opened (its stamp in the store).
    since: chrono::DateTime<chrono::Utc>,
}

/// The most a channel's outgoing frames may hold in memory while the
/// runner does not read them: more than the largest frame the server
/// sends (a job), far less than a runner could make it queue. Past it, a
/// pong waiting to go replaces the previous one (tungstenite keeps one),
/// and a message to send ends the channel.
pub const WRITE_BUFFER_MAX_BYTES: usize = 256 * 1024;

/// The WebSocket settings: small buffers (an idle channel holds little
/// memory), the message limit, and a bound on what waits to be written
/// (tungstenite's default is none: each ping read queues a pong, and a
/// runner that pings and never reads grew the server without bound).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(WRITE_BUFFER_MAX_BYTES)
        .max_message_size(Some(MESSAGE_MAX_BYTES))
        .max_frame_size(Some(MESSAGE_MAX_BYTES))
}

impl Channel {
    /// Serves the channel of the runner `key` authenticates.
    pub async fn serve(&self, key: RunnerKey, conn: dropshot::WebsocketConnection) {
        let runner = key.runner().clone();
        let ws =
            WebSocketStream::from_raw_socket(conn.into_inner(), Role::Server, Some(ws_config()))
                .await;
        // Before anything else: a shutdown from now on is seen.
        let shutdown = self.hub.shutdown_signal();
        let (id, controls) = self.hub.open(runner.uuid);
        let since = now();
        let channel = RunnerChannel {
            runner: runner.id,
            since,
        };
        if let Err(e) = self.store.set_channel(channel, true).await {
            slog::warn!(self.log, "cannot record a runner's channel: {e}");
        }
        let specs = self
            .store
            .runner_spec_ids(runner.id)
            .await
            .unwrap_or_default();
        let mut session = Session {
            ch: self,
            key: &key,
            ws,
            controls,
            shutdown,
            specs,
            job: None,
            seen: None,
            since,
        };
        let end = session.run().await;
        if let Some(job) = session.job.take() {
            self.settle(&job, runner.id, &end).await;
        }
        let end = match end {
            End::Revoked => End::Close(CloseCode::Policy, REVOKED.into()),
            End::Stopping => End::Close(CloseCode::Away, "server shutting down".into()),
            end => end,
        };
        if let End::Close(code, reason) = end {
            // A close frame's reason is at most 123 bytes (RFC 6455).
            let mut cut = reason.len().min(123);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            let reason = &reason[..cut];
            let frame = CloseFrame {
                code,
                reason: reason.to_owned().into(),
            };
            let _ = tokio::time::timeout(SEND_TIMEOUT, session.ws.close(Some(frame))).await;
            // Read what the runner still sends (the rest of a frame too big
            // to take, say) before the socket is dropped: a socket closed
            // with unread bytes is reset, and the reset can destroy the
            // close frame before the runner reads it.
            let drain = async {
                let mut buf = [0u8; 4096];
                let raw = session.ws.get_mut();
                while let Ok(n) = tokio::io::AsyncReadExt::read(raw, &mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER, drain).await;
        }
        self.hub.close(runner.uuid, id);
        if let Err(e) = self.store.set_channel(channel, false).await {
            slog::warn!(
                self.log,
                "cannot record that a runner's channel closed: {e}"
            );
        }
    }
}

impl Channel {
    /// The job of a channel that ended. Not confirmed by the runner's
    /// `running`, it goes back to the queue (the runner may never have read
    /// it), unless the server is stopping: the contract has a job claimed
    /// when the server stops failed after the restart, by the timeout
    /// rules. Running, it fails at once if the runner was revoked or sent
    /// a message too big to take (its output), or else is held to the
    /// timeout rules.
    async fn settle(&self, job: &Claimed, runner: RunnerId, end: &End) {
        if !matches!(end, End::Stopping) {
            match self.store.release_job(job.id, runner).await {
                Ok(true) => {
                    slog::info!(self.log, "a job given to a channel that closed before it said `running` is back in the queue"; "job" => %job.job.uuid);
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    slog::warn!(self.log, "cannot put a job back in the queue: {e}"; "job" => %job.job.uuid)
                }
            }
        }
        let error = match end {
            End::Revoked => Some(REVOKED),
            End::Close(CloseCode::Size, _) => Some(OVERSIZED),
            _ => None,
        };
        match error {
            Some(error) => {
                if let Err(e) = self.store.fail_job(job.id, error).await {
                    slog::warn!(self.log, "cannot fail a job whose channel ended: {e}");
                    self.hub.orphan(job.id);
                }
            }
            None => self.hub.orphan(job.id),
        }
    }
}

/// What the socket brought.
enum Incoming {
    Message(RunnerMessage),
    /// Nothing to act on (a ping, a pong).
    Nothing,
}
