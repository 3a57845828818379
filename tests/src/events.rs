//! A reader of the live event stream (`GET /v0/events`), as a browser's
//! `fetch` reads it: the `Authorization` header, the body as it arrives,
//! Server-Sent Events split on blank lines.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt as _;

/// One event: its name and its `data` as JSON.
#[derive(Clone, Debug)]
pub struct Sse {
    pub event: String,
    pub data: serde_json::Value,
}

/// An open stream.
pub struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    /// Every event read so far, in order.
    pub seen: Vec<Sse>,
}

impl Events {
    /// Opens the stream of the server at `url` with `token`; fails unless
    /// it answers 200 `text/event-stream` and its first event is `open`.
    pub async fn open(url: &str, token: &str) -> anyhow::Result<Self> {
        let answer = reqwest::Client::new()
            .get(format!("{url}/v0/events"))
            .bearer_auth(token)
            .send()
            .await?;
        if answer.status() != 200 {
            bail!("{}: {}", answer.status(), answer.text().await?);
        }
        let kind = answer.headers()["content-type"].to_str()?.to_owned();
        anyhow::ensure!(kind == "text/event-stream", "content-type {kind}");
        let mut events = Self {
            body: answer.bytes_stream().boxed(),
            buffer: String::new(),
            seen: Vec::new(),
        };
        let first = events.next(Duration::from_secs(5)).await?;
        anyhow::ensure!(first.event == "open", "first event {first:?}");
        Ok(events)
    }

    /// The next event, within `patience` (comments are skipped).
    pub async fn next(&mut self, patience: Duration) -> anyhow::Result<Sse> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data) = (None, String::new());
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = Some(name.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                if let Some(event) = event {
                    let data = serde_json::from_str(&data).with_context(|| data.clone())?;
                    let sse = Sse { event, data };
                    self.seen.push(sse.clone());
                    return Ok(sse);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .map_err(|_| anyhow!("no event within {patience:?}; seen {:?}", self.seen))?
                .ok_or_else(|| anyhow!("the stream ended"))??;
            self.buffer.push_str(std::str::from_utf8(&chunk)?);
        }
    }

    /// Reads events until one is `event` with `data[field] == value` for
    /// every pair of `expect`, within `patience`.
    pub async fn until(
        &mut self,
        event: &str,
        expect: &[(&str, &str)],
        patience: Duration,
    ) -> anyhow::Result<Sse> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let sse = self
                .next(left)
                .await
                .with_context(|| format!("waiting for {event} {expect:?}"))?;
            let matches = expect
                .iter()
                .all(|(k, v)| sse.data[*k].as_str() == Some(*v));
            if sse.event == event && matches {
                return Ok(sse);
            }
        }
    }
}
