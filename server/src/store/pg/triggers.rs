//! The schema versions whose tables are kept by triggers (see `schema.rs`
//! for the rest): version 14's jobs by status, counted in sixteen slots,
//! and version 15's notifications of each changed runner and job, for the
//! live event stream.

/// Counts the jobs by status into slot 0 of `job_counts` (version 14, and
/// [`JOB_RECOUNT`] after `migrate`'s copy).
macro_rules! job_count {
    () => {
        "UPDATE job_counts SET
    pending = c.pending, claimed = c.claimed, running = c.running, completed = c.completed,
    processed = c.processed, failed = c.failed, canceled = c.canceled
FROM (SELECT
    count(*) FILTER (WHERE status = 'pending') AS pending,
    count(*) FILTER (WHERE status = 'claimed') AS claimed,
    count(*) FILTER (WHERE status = 'running') AS running,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    count(*) FILTER (WHERE status = 'processed') AS processed,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'canceled') AS canceled
FROM jobs) c WHERE slot = 0;
"
    };
}

/// Sets `job_counts` from the jobs themselves (after a bulk copy made with
/// its trigger off).
pub(crate) const JOB_RECOUNT: &str = concat!(
    "UPDATE job_counts SET pending = 0, claimed = 0, running = 0, completed = 0, \
     processed = 0, failed = 0, canceled = 0;\n",
    job_count!()
);

/// Version 14: the jobs by status, kept by a trigger (SQLite's version 14),
/// in sixteen slots as `runner_counts` (one row per slot, so that a
/// transaction's changes all land on its connection's row, in no order
/// that could deadlock with another's). Counted once here into slot 0.
pub(super) const V14: &str = concat!(
    r#"
CREATE TABLE job_counts (
    slot      integer PRIMARY KEY CHECK (slot BETWEEN 0 AND 15),
    pending   bigint NOT NULL DEFAULT 0,
    claimed   bigint NOT NULL DEFAULT 0,
    running   bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    processed bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0,
    canceled  bigint NOT NULL DEFAULT 0
);
INSERT INTO job_counts (slot) SELECT s FROM generate_series(0, 15) s;
"#,
    job_count!(),
    r#"
CREATE FUNCTION job_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added   text;
    removed text;
BEGIN
    IF TG_OP <> 'DELETE' THEN added := NEW.status; END IF;
    IF TG_OP <> 'INSERT' THEN removed := OLD.status; END IF;
    IF added IS NOT DISTINCT FROM removed THEN RETURN NULL; END IF;
    UPDATE job_counts SET
        pending = pending + (added = 'pending' IS TRUE)::int - (removed = 'pending' IS TRUE)::int,
        claimed = claimed + (added = 'claimed' IS TRUE)::int - (removed = 'claimed' IS TRUE)::int,
        running = running + (added = 'running' IS TRUE)::int - (removed = 'running' IS TRUE)::int,
        completed = completed + (added = 'completed' IS TRUE)::int - (removed = 'completed' IS TRUE)::int,
        processed = processed + (added = 'processed' IS TRUE)::int - (removed = 'processed' IS TRUE)::int,
        failed = failed + (added = 'failed' IS TRUE)::int - (removed = 'failed' IS TRUE)::int,
        canceled = canceled + (added = 'canceled' IS TRUE)::int - (removed = 'canceled' IS TRUE)::int
    WHERE slot = pg_backend_pid() % 16;
    RETURN NULL;
END
$$;
CREATE TRIGGER job_counts_keep AFTER INSERT OR DELETE OR UPDATE OF status ON jobs
    FOR EACH ROW EXECUTE FUNCTION job_counts_keep();
"#
);

/// Version 15: the live event stream's changes, as `NOTIFY`s on the
/// replicas' channel in the write's transaction (SQLite's writer keeps its
/// own log on its connection instead: no version there): a runner created,
/// its channel opened or closed, archived or restored; a job created, or
/// its status or runner changed (and its runners' status with it).
pub(super) const V15: &str = r#"
CREATE FUNCTION changed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'runners' THEN
        PERFORM pg_notify('runners_events',
            json_build_object('runner_changed', json_build_object('runner', NEW.uuid))::text);
        RETURN NULL;
    END IF;
    PERFORM pg_notify('runners_events',
        json_build_object('job_changed', json_build_object('job', NEW.uuid))::text);
    IF TG_OP = 'UPDATE' THEN
        PERFORM pg_notify('runners_events',
            json_build_object('runner_changed', json_build_object('runner', r.uuid))::text)
        FROM runners r WHERE r.id IN (OLD.runner_id, NEW.runner_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER runners_changed_insert AFTER INSERT ON runners
    FOR EACH ROW EXECUTE FUNCTION changed_notify();
CREATE TRIGGER runners_changed AFTER UPDATE OF channel, archived ON runners FOR EACH ROW
    WHEN (OLD.channel IS DISTINCT FROM NEW.channel OR OLD.archived IS DISTINCT FROM NEW.archived)
    EXECUTE FUNCTION changed_notify();
CREATE TRIGGER jobs_changed_insert AFTER INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION changed_notify();
CREATE TRIGGER jobs_changed AFTER UPDATE OF status, runner_id ON jobs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.runner_id IS DISTINCT FROM NEW.runner_id)
    EXECUTE FUNCTION changed_notify();
"#;
