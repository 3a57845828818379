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
use crate::store::jobs::{Claimed, Expiry, Reported};
use crate::store::model::{AgentInfo, JobReport, JobStatus};
use crate::store::{Store, StoreError, now};
use crate::types::{
    CloseReason, JsonClaimedJob, JsonIterationOutput, JsonSpec, RunnerMessage, ServerMessage,
};
use crate::validate::POLL_TIMEOUT_DEFAULT;

/// The largest message a runner may send (results with their output).
pub const MESSAGE_MAX_BYTES: usize = 512 * 1024;
/// The longest a silent channel waits past its own heartbeat deadline for
/// the store's (which counts from the write of the last message).
const SETTLE_MAX: Duration = Duration::from_secs(1);
/// Why a revoked runner's channel closes (and its job fails).
const REVOKED: &str = "the runner was archived or re-keyed";
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
}

/// Why a channel ends.
enum End {
    /// The runner closed it, or its connection broke.
    Gone,
    /// The server closes it, with this code and reason.
    Close(CloseCode, String),
    /// The runner was archived or re-keyed: closed, and its job failed.
    Revoked,
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
    specs: Vec<i64>,
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
        if let Err(e) = self.store.set_channel(runner.id, since, true).await {
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
        if let Err(e) = self.store.set_channel(runner.id, since, false).await {
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
    /// rules. Running, it fails at once if the runner was revoked, or else
    /// is held to the timeout rules.
    async fn settle(&self, job: &Claimed, runner: i64, end: &End) {
        let stopping = matches!(end, End::Close(CloseCode::Away, _));
        if !stopping {
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
        if matches!(end, End::Revoked) {
            if let Err(e) = self.store.fail_job(job.id, REVOKED).await {
                slog::warn!(self.log, "cannot fail the job of a revoked runner: {e}");
                self.hub.orphan(job.id);
            }
        } else {
            self.hub.orphan(job.id);
        }
    }
}

/// What the socket brought.
enum Incoming {
    Message(RunnerMessage),
    /// Nothing to act on (a ping, a pong).
    Nothing,
}

impl Session<'_> {
    async fn run(&mut self) -> End {
        loop {
            let poll = match self.idle().await {
                Ok(poll) => poll,
                Err(end) => return end,
            };
            let claimed = match self.wait(poll).await {
                Ok(claimed) => claimed,
                Err(end) => return end,
            };
            let Some(claimed) = claimed else {
                if let Err(end) = self.send(&ServerMessage::NoJob).await {
                    return end;
                }
                continue;
            };
            if let Err(end) = self.give(claimed).await {
                return end;
            }
            if let Err(end) = self.running().await {
                return end;
            }
        }
    }

    async fn send(&mut self, msg: &ServerMessage) -> Result<(), End> {
        let text = serde_json::to_string(msg).map_err(|_| End::Gone)?;
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.send(Message::text(text))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Gone),
        }
    }

    /// The next frame, parsed: protocol violations end the channel.
    async fn incoming(
        &mut self,
        frame: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Incoming, End> {
        match frame {
            None => Err(End::Gone),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<RunnerMessage>(&text) {
                Ok(msg) => Ok(Incoming::Message(msg)),
                Err(e) => Err(End::Close(CloseCode::Invalid, explain(&text, &e))),
            },
            Some(Ok(Message::Binary(_))) => Err(End::Close(
                CloseCode::Unsupported,
                "binary frames are not accepted: send JSON text".into(),
            )),
            Some(Ok(Message::Close(_))) => {
                // tungstenite queued the answer (an echo, or 1002 for a
                // code the protocol does not allow): send it.
                let _ = tokio::time::timeout(SEND_TIMEOUT, self.ws.flush()).await;
                Err(End::Gone)
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                Ok(Incoming::Nothing)
            }
        }
    }

    fn store_error(&self, e: StoreError) -> End {
        match e {
            StoreError::RunnerRevoked => End::Revoked,
            StoreError::ChannelNotCurrent => End::Close(
                CloseCode::Policy,
                "another channel of this runner opened".into(),
            ),
            StoreError::NotRunnersJob(job) => {
                End::Close(CloseCode::Policy, format!("job {job} is not this runner's"))
            }
            e => {
                slog::warn!(self.ch.log, "runner channel: {e}");
                End::Close(
                    CloseCode::Again,
                    "the server could not record that: try again".into(),
                )
            }
        }
    }

    async fn control(&mut self, control: Option<Control>) -> Result<Option<Uuid>, End> {
        match control {
            Some(Control::Close(why)) => Err(End::Close(CloseCode::Policy, why.into())),
            Some(Control::Revoked) => Err(End::Revoked),
            Some(Control::Cancel(job)) => Ok(Some(job)),
            Some(Control::Respec) => Ok(None),
            // Another process recorded a channel of this runner: if the
            // store now names that one (this channel's own record was
            // written before any control is read), this one closes.
            Some(Control::Superseded) => {
                let runner = self.key.runner().id;
                match self.ch.store.channel_superseded(runner, self.since).await {
                    Ok(true) => Err(End::Close(
                        CloseCode::Policy,
                        "another channel of this runner opened".into(),
                    )),
                    Ok(false) => Ok(None),
                    Err(e) => Err(self.store_error(e)),
                }
            }
            None => Err(End::Gone),
        }
    }

    fn shutting_down() -> End {
        End::Close(CloseCode::Away, "server shutting down".into())
    }

    /// Idle: until `ready` (its poll timeout is returned).
    async fn idle(&mut self) -> Result<Duration, End> {
        let heartbeat = self.ch.hub.timeouts.heartbeat;
        let silent = tokio::time::sleep(heartbeat);
        tokio::pin!(silent);
        loop {
            // In this order when several are ready: a control (a close
            // of a replaced channel) before anything else, and a deadline
            // before a flood of frames.
            let frame = tokio::select! {
                biased;
                control = self.controls.recv() => {
                    self.control(control).await?;
                    continue;
                }
                () = stopping(&mut self.shutdown) => return Err(Self::shutting_down()),
                () = &mut silent => return Err(End::reason(CloseReason::HeartbeatTimeout)),
                frame = self.ws.next() => frame,
            };
            let Incoming::Message(msg) = self.incoming(frame).await? else {
                continue;
            };
            // Any message shows the runner is alive.
            silent
                .as_mut()
                .reset(tokio::time::Instant::now() + heartbeat);
            match msg {
                RunnerMessage::Ready {
                    poll_timeout,
                    runner,
                } => {
                    let agent = runner.map(|r| AgentInfo {
                        os: r.os,
                        arch: r.arch,
                        version: r.version.to_string(),
                    });
                    self.seen = Some(agent);
                    let secs = poll_timeout.map_or(POLL_TIMEOUT_DEFAULT, |p| p.get());
                    return Ok(Duration::from_secs(u64::from(secs)));
                }
                RunnerMessage::Running | RunnerMessage::Heartbeat => {
                    let id = self.key.runner().id;
                    self.ch
                        .store
                        .runner_seen(id, None)
                        .await
                        .map_err(|e| self.store_error(e))?;
                }
                terminal => {
                    self.report(terminal).await?;
                }
            }
        }
    }

    /// A report on a job (in any state): taken, and acknowledged.
    async fn report(&mut self, msg: RunnerMessage) -> Result<Reported, End> {
        let (job, report) = match msg {
            RunnerMessage::Completed { job, results } => {
                (job, JobReport::Completed(output(results, None)))
            }
            RunnerMessage::Failed {
                job,
                results,
                error,
            } => (job, JobReport::Failed(output(results, Some(error)))),
            RunnerMessage::Canceled { job } => (job, JobReport::Canceled),
            RunnerMessage::Running | RunnerMessage::Heartbeat | RunnerMessage::Ready { .. } => {
                return Ok(Reported::Ignored(JobStatus::Pending));
            }
        };
        let reported = self
            .ch
            .store
            .report_job(self.key.runner().id, job, report, self.ch.hub.timeouts)
            .await
            .map_err(|e| self.store_error(e))?;
        if reported == Reported::Dropped {
            slog::info!(self.ch.log, "a report on a job taken back from this runner was dropped"; "job" => %job, "runner" => %self.key.runner().uuid);
        }
        self.send(&ServerMessage::Ack { job: Some(job) }).await?;
        Ok(reported)
    }

    /// Waiting: claims a job, or waits to be woken until `poll` passes.
    async fn wait(&mut self, poll: Duration) -> Result<Option<Claimed>, End> {
        let deadline = tokio::time::Instant::now() + poll;
        let hub = Arc::clone(&self.ch.hub);
        // Registered before each claim, so that a job appearing during the
        // claim wakes it.
        let mut waiter = hub.wait(&self.specs);
        // Wakes received and not yet used.
        let mut triggers: Vec<i64> = Vec::new();
        let outcome = loop {
            let runner = self.key.runner();
            let seen = self.seen.take();
            let claim = match self
                .ch
                .store
                .claim_job(runner.id, runner.key_hash, self.since, seen)
                .await
            {
                Ok(claim) => claim,
                Err(e) => break Err(self.store_error(e)),
            };
            if let Some(claimed) = claim.job {
                // The wake for the claimed job's spec is used; any other is
                // for another job, and goes on to the next waiter.
                triggers.extend(hub.unwait(&waiter));
                if let Some(i) = triggers.iter().position(|&s| s == claimed.spec_id) {
                    triggers.swap_remove(i);
                }
                break Ok(Some(claimed));
            }
            // Nothing was pending for any of its specs: those wakes are spent.
            triggers.clear();
            if claim.specs != self.specs {
                if let Some(spec) = hub.unwait(&waiter)
                    && !claim.specs.contains(&spec)
                {
                    hub.pass_on(spec);
                }
                self.specs = claim.specs;
                waiter = hub.wait(&self.specs);
            }
            match self.sleep(&waiter, deadline).await {
                Ok(true) => {
                    triggers.extend(hub.unwait(&waiter));
                    waiter = hub.wait(&self.specs);
                }
                Ok(false) => break Ok(None),
                Err(end) => break Err(end),
            }
        };
        triggers.extend(hub.unwait(&waiter));
        for spec in triggers {
            hub.pass_on(spec);
        }
        outcome
    }

    /// Sleeps until woken (true), or until `deadline` (false).
    async fn sleep(
        &mut self,
        waiter: &crate::dispatch::Waiter,
        deadline: tokio::time::Instant,
    ) -> Result<bool, End> {
        loop {
            // A control first: a wake must not beat the close of a channel
            // that was replaced (the claim would refuse it anyway).
            tokio::select! {
                biased;
                control = self.controls.recv() => {
                    self.control(control).await?;
                    return Ok(true);
                }
                () = stopping(&mut self.shutdown) => return Err(Self::shutting_down()),
                () = waiter.woken() => return Ok(true),
                () = tokio::time::sleep_until(deadline) => return Ok(false),
                frame = self.ws.next() => {
                    // Bencher ignores messages while a runner waits; they
                    // still show that it is alive.
                    if let Incoming::Message(_) = self.incoming(frame).await? {
                        let id = self.key.runner().id;
                        self.ch.store.runner_seen(id, None).await.map_err(|e| self.store_error(e))?;
                    }
                }
            }
        }
    }

    /// Gives the claimed job to the runner; if it cannot be sent, the job
    /// goes back to the queue.
    async fn give(&mut self, claimed: Claimed) -> Result<(), End> {
        let job = &claimed.job;
        let config = serde_json::from_value(job.config.clone());
        let project = job
            .config
            .get("project")
            .and_then(|p| p.as_str())
            .and_then(|p| Uuid::try_parse(p).ok());
        let (Ok(config), Some(project)) = (config, project) else {
            slog::error!(self.ch.log, "a job's stored config is unreadable"; "job" => %job.uuid);
            return Err(End::Close(
                CloseCode::Error,
                "a job's stored config is unreadable".into(),
            ));
        };
        let msg = ServerMessage::Job(Box::new(JsonClaimedJob {
            uuid: job.uuid,
            spec: JsonSpec::from(job.spec.clone()),
            config,
            oci_token: self.ch.oci.mint(self.key.runner().uuid, project),
            timeout: crate::validate::Timeout::try_from(job.timeout).unwrap_or(
                crate::validate::Timeout::try_from(crate::validate::TIMEOUT_DEFAULT)
                    .expect("the default timeout is valid"),
            ),
            created: job.created,
        }));
        if let Err(end) = self.send(&msg).await {
            if let Err(e) = self
                .ch
                .store
                .release_job(claimed.id, self.key.runner().id)
                .await
            {
                slog::warn!(self.ch.log, "cannot put a job back in the queue: {e}");
                self.ch.hub.orphan(claimed.id);
            }
            return Err(end);
        }
        self.job = Some(claimed);
        Ok(())
    }

    /// Running a job: until it ends, or the channel does.
    async fn running(&mut self) -> Result<(), End> {
        let timeouts = self.ch.hub.timeouts;
        let Some(current) = self.job.clone() else {
            return Ok(());
        };
        let uuid = current.job.uuid;
        let mut last = tokio::time::Instant::now();
        // When the job runs out of time (its timeout and the grace), once
        // it has started.
        let mut run_out: Option<tokio::time::Instant> = None;
        // When the store's own deadline falls, if it fell a little after
        // this channel's (its stamp of the last message is the time of the
        // write, a little after the message arrived).
        let mut settle: Option<tokio::time::Instant> = None;
        loop {
            let silent = last + timeouts.heartbeat;
            let due = settle.unwrap_or_else(|| run_out.map_or(silent, |r| r.min(silent)));
            let frame = tokio::select! {
                biased;
                control = self.controls.recv() => {
                    if self.control(control).await? == Some(uuid) {
                        self.job = None;
                        self.send(&ServerMessage::Cancel).await?;
                        return Ok(());
                    }
                    continue;
                }
                () = stopping(&mut self.shutdown) => return Err(Self::shutting_down()),
                () = tokio::time::sleep_until(due) => {
                    match self.expire(current.id).await? {
                        (Some(end), _) => return Err(end),
                        (None, _) if self.job.is_none() => return Ok(()),
                        // Not due by the store's rules yet, by a moment:
                        // the store's stamp of the last message came a
                        // little later; check again then.
                        (None, Some(at)) if due >= silent && settle.is_none() => {
                            let wait = (at - now()).to_std().unwrap_or_default();
                            if wait <= SETTLE_MAX {
                                settle = Some(tokio::time::Instant::now() + wait);
                                continue;
                            }
                            // Long after: the runner spoke for the job on
                            // another channel; this one is silent.
                            return Err(End::reason(CloseReason::HeartbeatTimeout));
                        }
                        (None, _) if due >= silent => {
                            return Err(End::reason(CloseReason::HeartbeatTimeout));
                        }
                        (None, _) => {
                            run_out = None;
                            continue;
                        }
                    }
                }
                frame = self.ws.next() => frame,
            };
            let Incoming::Message(msg) = self.incoming(frame).await? else {
                continue;
            };
            let report = match msg {
                RunnerMessage::Ready { .. } => {
                    // Bencher acknowledges it and changes nothing.
                    self.send(&ServerMessage::Ack { job: Some(uuid) }).await?;
                    continue;
                }
                RunnerMessage::Running => JobReport::Running,
                RunnerMessage::Heartbeat => JobReport::Heartbeat,
                terminal => {
                    last = tokio::time::Instant::now();
                    settle = None;
                    let about = match &terminal {
                        RunnerMessage::Completed { job, .. }
                        | RunnerMessage::Failed { job, .. }
                        | RunnerMessage::Canceled { job } => *job,
                        _ => uuid,
                    };
                    self.report(terminal).await?;
                    if about == uuid {
                        self.job = None;
                        return Ok(());
                    }
                    continue;
                }
            };
            last = tokio::time::Instant::now();
            settle = None;
            let runner = self.key.runner().id;
            let reported = self
                .ch
                .store
                .report_job(runner, uuid, report, timeouts)
                .await
                .map_err(|e| self.store_error(e))?;
            match reported {
                Reported::Canceled => {
                    self.job = None;
                    self.send(&ServerMessage::Cancel).await?;
                    return Ok(());
                }
                Reported::TimedOut => {
                    self.job = None;
                    self.send(&ServerMessage::Cancel).await?;
                    return Err(End::reason(CloseReason::JobTimeoutExceeded));
                }
                Reported::Ignored(_) | Reported::Dropped => {
                    self.job = None;
                    self.send(&ServerMessage::Ack { job: Some(uuid) }).await?;
                    return Ok(());
                }
                Reported::Now(status) | Reported::Repeated(status) => {
                    if status == JobStatus::Running && run_out.is_none() {
                        let limit =
                            Duration::from_secs(u64::from(current.job.timeout)) + timeouts.grace;
                        run_out = Some(tokio::time::Instant::now() + limit);
                    }
                    self.send(&ServerMessage::Ack { job: Some(uuid) }).await?;
                }
            }
        }
    }

    /// The job's deadline passed: the store's timeout rules decide. An end
    /// of the channel, or none (the job ended, or is not due yet).
    async fn expire(
        &mut self,
        id: i64,
    ) -> Result<(Option<End>, Option<chrono::DateTime<chrono::Utc>>), End> {
        let expiry = self
            .ch
            .store
            .expire_job(id, self.ch.hub.timeouts)
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(match expiry {
            Expiry::TimedOut => {
                self.job = None;
                let _ = self.send(&ServerMessage::Cancel).await;
                (Some(End::reason(CloseReason::JobTimeoutExceeded)), None)
            }
            Expiry::Failed => {
                self.job = None;
                (Some(End::reason(CloseReason::HeartbeatTimeout)), None)
            }
            Expiry::Ended => {
                self.job = None;
                (None, None)
            }
            Expiry::NotBefore(at) => (None, Some(at)),
        })
    }
}

/// Resolves once the server is shutting down (at once if it is already).
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// The most fields of a bad message that [`explain`] searches for the one
/// at fault.
const EXPLAIN_MAX_FIELDS: usize = 8;

/// Why `text` is not a runner message, naming the field at fault where one
/// is: serde loses the path inside a message tagged by `event`, so the field
/// is found as the one whose removal makes the message parse.
fn explain(text: &str, e: &serde_json::Error) -> String {
    let e = e.to_string();
    let e = e.split(" at line ").next().unwrap_or(&e);
    // serde names a repeated field itself (a JSON object, as parsed below,
    // would keep only the last of the two and blame another field).
    if e.starts_with("duplicate field") {
        return e.to_owned();
    }
    // A message has at most three fields besides `event`: an object with
    // many is not worth the search (each try parses it again).
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text)
        && fields.len() <= EXPLAIN_MAX_FIELDS
    {
        for key in fields.keys().filter(|k| *k != "event") {
            let mut rest = fields.clone();
            rest.remove(key);
            if serde_json::from_value::<RunnerMessage>(rest.into()).is_ok() {
                return format!("{key}: {e}");
            }
        }
    }
    format!("not a runner message: {e}")
}

/// A job's output as kept: its results, and the error if it failed.
fn output(results: Vec<JsonIterationOutput>, error: Option<String>) -> serde_json::Value {
    serde_json::to_value(crate::types::JsonJobOutput { results, error }).unwrap_or_default()
}
