//! A channel's session while its runner runs a job: acknowledgements,
//! cancels and the timeout rules.

use super::*;
use crate::store::JobId;

impl Session<'_> {
    /// Running a job: until it ends, or the channel does.
    pub(super) async fn running(&mut self) -> Result<(), End> {
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
                () = stopping(&mut self.shutdown) => return Err(End::Stopping),
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
                        if let Some(claimed) = current.job.claimed {
                            let took = chrono::Utc::now() - claimed;
                            self.ch.metrics.ended(took.as_seconds_f64().max(0.0));
                        }
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
                .report_job(
                    RunnerReport {
                        runner,
                        job: uuid,
                        report,
                    },
                    timeouts,
                )
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
    pub(super) async fn expire(
        &mut self,
        id: JobId,
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
