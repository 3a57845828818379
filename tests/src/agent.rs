//! A small runner agent for the tests: it speaks Bencher's channel protocol
//! through the SDK's `runner_channel` method (the real WebSocket upgrade)
//! and the SDK's generated message types, one verb a message.
//!
//! Every `expect_*` waits at most [`Agent::patience`] (default
//! [`PATIENCE`]) and fails with what came instead.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use futures::{SinkExt as _, StreamExt as _};
use runners_sdk::types::{
    Architecture, JsonClaimedJob, JsonIterationOutput, JsonRunnerMetadata, OperatingSystem,
    RunnerMessage, ServerMessage,
};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use uuid::Uuid;

use crate::TestServer;

/// How long an `expect_*` waits by default.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One runner's channel, from the agent's side.
pub struct Agent {
    ws: WebSocketStream<reqwest::Upgraded>,
    /// The runner (slug or UUID) this channel is for.
    pub runner: String,
    /// How long an `expect_*` waits.
    pub patience: Duration,
}

/// How an upgrade was refused: a plain HTTP answer.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    /// The error body's `error_code`, if it had one.
    pub error_code: Option<String>,
    pub message: String,
}

/// One iteration's output that says `stdout`.
pub fn output(exit_code: i32, stdout: &str) -> JsonIterationOutput {
    JsonIterationOutput {
        exit_code,
        stdout: Some(stdout.to_owned()),
        stderr: None,
        output: None,
    }
}

/// The `ready` of an agent that reports its platform.
pub fn metadata(os: OperatingSystem, arch: Architecture, version: &str) -> JsonRunnerMetadata {
    JsonRunnerMetadata {
        os,
        arch,
        version: version.parse().expect("a valid agent version"),
        channel: None,
        checksum: None,
    }
}

impl Agent {
    /// Opens `runner`'s channel on `server` with `key`.
    pub async fn connect(server: &TestServer, runner: &str, key: &str) -> anyhow::Result<Self> {
        Self::connect_to(&server.url, runner, key).await
    }

    /// Opens `runner`'s channel on the server at `url` with `key`.
    pub async fn connect_to(url: &str, runner: &str, key: &str) -> anyhow::Result<Self> {
        match Self::upgrade(url, runner, Some(key)).await? {
            Ok(agent) => Ok(agent),
            Err(refused) => bail!("the channel of {runner} was refused: {refused:?}"),
        }
    }

    /// Asks for `runner`'s channel with `key` (or no credentials): the
    /// plain HTTP answer, which must not be an upgrade.
    pub async fn refused(
        server: &TestServer,
        runner: &str,
        key: Option<&str>,
    ) -> anyhow::Result<Refused> {
        match Self::upgrade(&server.url, runner, key).await? {
            Ok(_) => bail!("the channel of {runner} was opened (101), not refused"),
            Err(refused) => Ok(refused),
        }
    }

    async fn upgrade(
        url: &str,
        runner: &str,
        key: Option<&str>,
    ) -> anyhow::Result<Result<Self, Refused>> {
        let client = match key {
            Some(key) => runners_sdk::client_with_token(url, key)?,
            None => runners_sdk::Client::new(url),
        };
        let answer = client.runner_channel().runner(runner).send().await;
        let upgraded = match answer {
            Ok(upgraded) => upgraded,
            Err(runners_sdk::Error::ErrorResponse(rv)) => {
                let status = rv.status().as_u16();
                let body = rv.into_inner();
                return Ok(Err(Refused {
                    status,
                    error_code: body.error_code,
                    message: body.message,
                }));
            }
            Err(runners_sdk::Error::UnexpectedResponse(response)) => {
                let status = response.status().as_u16();
                let message = response.text().await.unwrap_or_default();
                return Ok(Err(Refused {
                    status,
                    error_code: None,
                    message,
                }));
            }
            Err(e) => return Err(anyhow!("the channel upgrade failed: {e}")),
        };
        ensure!(upgraded.status() == 101, "upgrade: {}", upgraded.status());
        let ws = WebSocketStream::from_raw_socket(upgraded.into_inner(), Role::Client, None).await;
        Ok(Ok(Self {
            ws,
            runner: runner.to_owned(),
            patience: PATIENCE,
        }))
    }

    // ---- runner → server ----

    /// Sends `msg` as a JSON text frame.
    pub async fn send(&mut self, msg: &RunnerMessage) -> anyhow::Result<()> {
        let text = serde_json::to_string(msg)?;
        self.send_text(&text).await
    }

    /// Sends a text frame as it is.
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.ws
            .send(Message::text(text))
            .await
            .context("sending a text frame")
    }

    /// Writes `bytes` to the connection as they are, under the WebSocket
    /// layer: a frame built by hand (unmasked, with a reserved bit set, or
    /// text that is not UTF-8), which the WebSocket library would never
    /// send.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let conn = self.ws.get_mut();
        conn.write_all(bytes).await.context("writing raw bytes")?;
        conn.flush().await.context("flushing raw bytes")
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.ws
            .send(Message::binary(bytes))
            .await
            .context("sending a binary frame")
    }

    /// A WebSocket ping, answered by a pong within the patience (the
    /// frames in between are an error).
    pub async fn ping(&mut self) -> anyhow::Result<()> {
        self.ws
            .send(Message::Ping(b"are you there".to_vec().into()))
            .await?;
        let frame = tokio::time::timeout(self.patience, self.ws.next())
            .await
            .map_err(|_| anyhow!("no pong within {:?}", self.patience))?;
        match frame {
            Some(Ok(Message::Pong(payload))) if payload.as_ref() == b"are you there" => Ok(()),
            other => bail!("expected a pong, got {other:?}"),
        }
    }

    /// `ready` with this poll timeout (seconds), as an older agent (no
    /// platform report).
    pub async fn ready(&mut self, poll_timeout: u32) -> anyhow::Result<()> {
        self.send(&ready(Some(poll_timeout), None)?).await
    }

    /// `ready` with this poll timeout and the agent's platform report.
    pub async fn ready_as(
        &mut self,
        poll_timeout: u32,
        runner: JsonRunnerMetadata,
    ) -> anyhow::Result<()> {
        self.send(&ready(Some(poll_timeout), Some(runner))?).await
    }

    /// `running`.
    pub async fn running(&mut self) -> anyhow::Result<()> {
        self.send(&RunnerMessage::Running).await
    }

    /// `heartbeat`.
    pub async fn heartbeat(&mut self) -> anyhow::Result<()> {
        self.send(&RunnerMessage::Heartbeat).await
    }

    /// `completed {job, results}`.
    pub async fn complete(
        &mut self,
        job: Uuid,
        results: Vec<JsonIterationOutput>,
    ) -> anyhow::Result<()> {
        self.send(&RunnerMessage::Completed { job, results }).await
    }

    /// `failed {job, results, error}`.
    pub async fn fail(
        &mut self,
        job: Uuid,
        results: Vec<JsonIterationOutput>,
        error: &str,
    ) -> anyhow::Result<()> {
        let error = error.to_owned();
        self.send(&RunnerMessage::Failed {
            job,
            results,
            error,
        })
        .await
    }

    /// `canceled {job}`.
    pub async fn canceled(&mut self, job: Uuid) -> anyhow::Result<()> {
        self.send(&RunnerMessage::Canceled { job }).await
    }

    // ---- server → runner ----

    /// The next message from the server (pings and pongs skipped); a close,
    /// a binary frame, text that is not a server message, or nothing within
    /// the patience is an error.
    pub async fn recv(&mut self) -> anyhow::Result<ServerMessage> {
        match self.next_frame().await? {
            Message::Text(text) => {
                serde_json::from_str(&text).with_context(|| format!("not a server message: {text}"))
            }
            Message::Close(frame) => bail!("the server closed the channel: {frame:?}"),
            other => bail!("not a text frame: {other:?}"),
        }
    }

    async fn next_frame(&mut self) -> anyhow::Result<Message> {
        let patience = self.patience;
        loop {
            let frame = tokio::time::timeout(patience, self.ws.next())
                .await
                .map_err(|_| anyhow!("nothing from the server within {patience:?}"))?;
            match frame {
                None => bail!("the channel ended without a close frame"),
                Some(Err(e)) => bail!("the channel broke: {e}"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(frame)) => return Ok(frame),
            }
        }
    }

    /// A `job`: the job claimed for this runner (the message is a
    /// `JsonClaimedJob` and its `event`, as the server writes it).
    pub async fn expect_job(&mut self) -> anyhow::Result<JsonClaimedJob> {
        match self.recv().await? {
            job @ ServerMessage::Job { .. } => {
                Ok(serde_json::from_value(serde_json::to_value(job)?)?)
            }
            other => bail!("expected `job`, got {other:?}"),
        }
    }

    /// A `no_job`.
    pub async fn expect_no_job(&mut self) -> anyhow::Result<()> {
        match self.recv().await? {
            ServerMessage::NoJob => Ok(()),
            other => bail!("expected `no_job`, got {other:?}"),
        }
    }

    /// An `ack` about `job`.
    pub async fn expect_ack(&mut self, job: Uuid) -> anyhow::Result<()> {
        match self.recv().await? {
            ServerMessage::Ack { job: Some(about) } if about == job => Ok(()),
            other => bail!("expected `ack` of job {job}, got {other:?}"),
        }
    }

    /// A `cancel`.
    pub async fn expect_cancel(&mut self) -> anyhow::Result<()> {
        match self.recv().await? {
            ServerMessage::Cancel => Ok(()),
            other => bail!("expected `cancel`, got {other:?}"),
        }
    }

    /// The server's close frame: its code and reason (messages before it
    /// are an error).
    pub async fn expect_close(&mut self) -> anyhow::Result<(u16, String)> {
        match self.next_frame().await? {
            Message::Close(Some(frame)) => {
                Ok((u16::from(frame.code), frame.reason.as_str().to_owned()))
            }
            Message::Close(None) => bail!("a close frame with no code"),
            other => bail!("expected a close frame, got {other:?}"),
        }
    }

    /// `running`, answered `ack {job}`.
    pub async fn start(&mut self, job: Uuid) -> anyhow::Result<()> {
        self.running().await?;
        self.expect_ack(job).await
    }

    /// `ready`, a job at once, `running` and its `ack`: the job it runs.
    pub async fn take_job(&mut self, poll_timeout: u32) -> anyhow::Result<JsonClaimedJob> {
        self.ready(poll_timeout).await?;
        let job = self.expect_job().await?;
        self.start(job.uuid).await?;
        Ok(job)
    }

    /// Closes the channel from the agent's side.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.ws.close(None).await.context("closing")?;
        // The server's answering close frame, or the end of the stream.
        let _ = tokio::time::timeout(self.patience, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
        Ok(())
    }
}

fn ready(
    poll_timeout: Option<u32>,
    runner: Option<JsonRunnerMetadata>,
) -> anyhow::Result<RunnerMessage> {
    let poll_timeout = poll_timeout
        .map(|p| std::num::NonZeroU32::new(p).context("a poll timeout of 0"))
        .transpose()?;
    Ok(RunnerMessage::Ready {
        poll_timeout,
        runner,
    })
}
