//! The writer connection's change log, for the live event stream
//! ([`crate::live`]): TEMP triggers (this connection's own; nothing in the
//! file) note each runner and job whose status may have changed, in the
//! write's own transaction (a write rolled back leaves no note). The writer
//! reads and empties the log just before each commit, and hands its events
//! to the store's listener once the commit is durable.

use rusqlite::Connection;

use crate::store::model::events::Event;

/// Made on the writer's connection when it opens.
pub(super) const SETUP: &str = r#"
CREATE TEMP TABLE changed (runner INTEGER NOT NULL, uuid TEXT NOT NULL);
CREATE TEMP TRIGGER changed_runner_insert AFTER INSERT ON main.runners BEGIN
    INSERT INTO changed VALUES (1, NEW.uuid);
END;
CREATE TEMP TRIGGER changed_runner AFTER UPDATE OF channel, archived ON main.runners
WHEN OLD.channel IS NOT NEW.channel OR OLD.archived IS NOT NEW.archived BEGIN
    INSERT INTO changed VALUES (1, NEW.uuid);
END;
CREATE TEMP TRIGGER changed_job_insert AFTER INSERT ON main.jobs BEGIN
    INSERT INTO changed VALUES (0, NEW.uuid);
END;
CREATE TEMP TRIGGER changed_job AFTER UPDATE OF status, runner_id ON main.jobs
WHEN OLD.status IS NOT NEW.status OR OLD.runner_id IS NOT NEW.runner_id BEGIN
    INSERT INTO changed VALUES (0, NEW.uuid);
    INSERT INTO changed SELECT 1, uuid FROM main.runners WHERE id IN (OLD.runner_id, NEW.runner_id);
END;
"#;

/// The changes noted in this transaction, in order, and the log emptied.
pub(super) fn take(conn: &Connection) -> rusqlite::Result<Vec<Event>> {
    let mut read = conn.prepare_cached("SELECT runner, uuid FROM temp.changed ORDER BY rowid")?;
    let mut events = Vec::new();
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let (runner, uuid): (bool, String) = (row.get(0)?, row.get(1)?);
        let Ok(uuid) = uuid.parse() else { continue };
        events.push(match runner {
            true => Event::RunnerChanged { runner: uuid },
            false => Event::JobChanged { job: uuid },
        });
    }
    if !events.is_empty() {
        conn.prepare_cached("DELETE FROM temp.changed")?
            .execute([])?;
    }
    Ok(events)
}
