//! A channel's session: its states (idle, waiting), the runner's messages
//! and the store's answers; running a job is in [`super::running`].

use super::*;
use crate::store::JobId;

impl Session<'_> {
    pub(super) async fn run(&mut self) -> End {
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

    pub(super) async fn send(&mut self, msg: &ServerMessage) -> Result<(), End> {
        let text = serde_json::to_string(msg).map_err(|_| End::Gone)?;
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.send(Message::text(text))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Gone),
        }
    }

    /// The next frame, parsed: protocol violations end the channel.
    pub(super) async fn incoming(
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

    pub(super) fn store_error(&self, e: StoreError) -> End {
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

    pub(super) async fn control(&mut self, control: Option<Control>) -> Result<Option<Uuid>, End> {
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
                match self
                    .ch
                    .store
                    .channel_superseded(RunnerChannel {
                        runner,
                        since: self.since,
                    })
                    .await
                {
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
                () = stopping(&mut self.shutdown) => return Err(End::Stopping),
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
                        os: r.os.into(),
                        arch: r.arch.into(),
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
    pub(super) async fn report(&mut self, msg: RunnerMessage) -> Result<Reported, End> {
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
        let runner = self.key.runner().id;
        let said = RunnerReport {
            runner,
            job,
            report,
        };
        let reported = self
            .ch
            .store
            .report_job(said, self.ch.hub.timeouts)
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
        let mut triggers: Vec<SpecId> = Vec::new();
        let outcome = loop {
            let runner = self.key.runner();
            let seen = self.seen.take();
            let claim = match self
                .ch
                .store
                .claim_job(Claimant {
                    runner: runner.id,
                    key_hash: runner.key_hash,
                    channel: self.since,
                    seen,
                })
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
                () = stopping(&mut self.shutdown) => return Err(End::Stopping),
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
        let oci_token = match self.ch.oci.job_token(self.key.runner().uuid, project).await {
            Ok(token) => token,
            Err(e) => {
                slog::error!(self.ch.log, "cannot sign a job's registry token: {e}");
                put_back(self.ch, claimed.id, self.key.runner().id).await;
                return Err(End::Close(
                    CloseCode::Error,
                    "cannot sign the job's registry token".into(),
                ));
            }
        };
        let msg = ServerMessage::Job(Box::new(JsonClaimedJob {
            uuid: job.uuid,
            spec: JsonSpec::from(job.spec.clone()),
            config,
            oci_token,
            timeout: crate::validate::Timeout::try_from(job.timeout).unwrap_or(
                crate::validate::Timeout::try_from(crate::validate::TIMEOUT_DEFAULT)
                    .expect("the default timeout is valid"),
            ),
            created: job.created,
        }));
        if let Err(end) = self.send(&msg).await {
            put_back(self.ch, claimed.id, self.key.runner().id).await;
            return Err(end);
        }
        let queued = chrono::Utc::now() - claimed.job.created;
        self.ch.metrics.dispatched(queued.as_seconds_f64().max(0.0));
        self.job = Some(claimed);
        Ok(())
    }
}

/// Puts a job that could not be given back in the queue (a function of the
/// channel alone: the session, with its socket, is not `Sync`).
async fn put_back(ch: &Channel, job: JobId, runner: RunnerId) {
    if let Err(e) = ch.store.release_job(job, runner).await {
        slog::warn!(ch.log, "cannot put a job back in the queue: {e}");
        ch.hub.orphan(job);
    }
}

/// Resolves once the server is shutting down (at once if it is already).
pub(super) async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
