//! Events across replicas: a write sends its events with `pg_notify` inside
//! its transaction (PostgreSQL delivers them at commit, and drops them on
//! rollback), and each process holds one connection in `LISTEN` that hands
//! every event, its own included, to the store's listener.

use std::sync::Arc;

use futures::StreamExt as _;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use super::{StoreError, Tx};
use crate::store::model::SpecId;
use crate::store::model::events::Event;

/// The notification channel of every replica of one database.
pub const CHANNEL: &str = "runners_events";

/// An event as a notification's payload (JSON, well under PostgreSQL's
/// 8000-byte limit).
pub fn encode(event: &Event) -> String {
    match event {
        Event::JobPending { spec } => serde_json::json!({"job_pending": {"spec": spec}}),
        Event::JobCanceled { runner, job } => {
            serde_json::json!({"job_canceled": {"runner": runner, "job": job}})
        }
        Event::RunnerRevoked { runner } => {
            serde_json::json!({"runner_revoked": {"runner": runner}})
        }
        Event::RunnerSpecsChanged { runner } => {
            serde_json::json!({"runner_specs_changed": {"runner": runner}})
        }
        Event::ChannelOpened { runner, replica } => {
            serde_json::json!({"channel_opened": {"runner": runner, "replica": replica}})
        }
        Event::RunnerChanged { runner } => {
            serde_json::json!({"runner_changed": {"runner": runner}})
        }
        Event::JobChanged { job } => serde_json::json!({"job_changed": {"job": job}}),
        Event::Resync => serde_json::json!({"resync": {}}),
    }
    .to_string()
}

/// The event of a payload written by [`encode`]; `None` for anything else
/// (a newer replica's event this one does not know: ignored).
pub fn decode(payload: &str) -> Option<Event> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    let (kind, body) = value.as_object()?.iter().next()?;
    let uuid = |field: &str| -> Option<Uuid> { body.get(field)?.as_str()?.parse().ok() };
    Some(match kind.as_str() {
        "job_pending" => Event::JobPending {
            spec: SpecId(body.get("spec")?.as_i64()?),
        },
        "job_canceled" => Event::JobCanceled {
            runner: uuid("runner")?,
            job: uuid("job")?,
        },
        "runner_revoked" => Event::RunnerRevoked {
            runner: uuid("runner")?,
        },
        "runner_specs_changed" => Event::RunnerSpecsChanged {
            runner: uuid("runner")?,
        },
        "channel_opened" => Event::ChannelOpened {
            runner: uuid("runner")?,
            replica: uuid("replica")?,
        },
        "runner_changed" => Event::RunnerChanged {
            runner: uuid("runner")?,
        },
        "job_changed" => Event::JobChanged { job: uuid("job")? },
        "resync" => Event::Resync,
        _ => return None,
    })
}

/// Sends `event` to every replica when `tx` commits.
pub(super) async fn notify(tx: &Tx<'_>, event: &Event) -> Result<(), StoreError> {
    let stmt = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
    tx.execute(&stmt, &[&CHANNEL, &encode(event)]).await?;
    Ok(())
}

/// One process's `LISTEN` connection. Dropping it stops listening.
pub struct Listening {
    _client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Listening {
    /// Resolves when the connection is lost.
    pub async fn closed(mut self) {
        let _ = (&mut self.driver).await;
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Listens on [`CHANNEL`] on a connection of its own, handing each event to
/// `listener` (see [`super::PgStore::listen_forever`] for a lost one).
pub async fn listen(
    config: &tokio_postgres::Config,
    tls: &super::Tls,
    listener: Arc<dyn Fn(Event) + Send + Sync>,
) -> anyhow::Result<Listening> {
    let (client, mut connection) = config.connect(tls.clone()).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to PostgreSQL to listen: {}",
            super::describe(&e)
        )
    })?;
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                    if let Some(event) = decode(n.payload()) {
                        listener(event);
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot LISTEN: {}", super::describe(&e)))?;
    Ok(Listening {
        _client: client,
        driver,
    })
}

#[cfg(test)]
mod unit {
    use super::{Event, SpecId, decode, encode};

    #[test]
    fn every_event_round_trips() {
        let (runner, job) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        for event in [
            Event::JobPending { spec: SpecId(42) },
            Event::JobCanceled { runner, job },
            Event::RunnerRevoked { runner },
            Event::RunnerSpecsChanged { runner },
            Event::ChannelOpened {
                runner,
                replica: job,
            },
            Event::RunnerChanged { runner },
            Event::JobChanged { job },
            Event::Resync,
        ] {
            assert_eq!(decode(&encode(&event)), Some(event));
        }
        assert_eq!(decode("{\"unknown\": {}}"), None);
        assert_eq!(decode("not json"), None);
    }
}
