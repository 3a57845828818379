//! The SQLite schema's versions, each the SQL that brings the one before
//! it to it (frozen once released: a new version is a new entry). Version
//! 9's search queues are the same SQL for runners and specs, written once.

use std::sync::LazyLock;

/// Version 1 of the schema.
const SCHEMA_V1: &str = r#"
CREATE TABLE users (
    id      INTEGER PRIMARY KEY,
    uuid    TEXT NOT NULL UNIQUE,
    name    TEXT NOT NULL UNIQUE,
    admin   INTEGER NOT NULL CHECK (admin IN (0, 1)),
    created TEXT NOT NULL
) STRICT;

-- One row per API token. The token itself (a JWT) is never stored: its row
-- holds the `jti`, so that it can be listed and revoked.
CREATE TABLE api_tokens (
    id      INTEGER PRIMARY KEY,
    uuid    TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    revoked TEXT
) STRICT;

-- The HS256 secret that signs API tokens, generated on first start.
CREATE TABLE signing_key (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  BLOB NOT NULL,
    created TEXT NOT NULL
) STRICT;

CREATE TABLE runners (
    -- Insertion order: the `created` sort, total and stable.
    id             INTEGER PRIMARY KEY,
    -- Unique indexes serve the lookups by uuid, by slug and by token.
    uuid           TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    slug           TEXT NOT NULL UNIQUE,
    -- SHA-256 of the runner token; the token itself is never stored.
    token_hash     BLOB NOT NULL UNIQUE,
    archived       TEXT,
    last_heartbeat TEXT,
    created        TEXT NOT NULL,
    modified       TEXT NOT NULL
) STRICT;

-- Serves the default `name` sort (ties broken by the unique slug) and the
-- exact `name` filter.
CREATE INDEX runners_name_slug ON runners (name, slug);
"#;

/// The schema, one entry per version. Never edit a released entry: add one.
/// Version 2: constant-time counts and an index for the default list.
const SCHEMA_V2: &str = r#"
-- How many runners there are, and how many are active. Triggers keep it in
-- the same transaction as every insert, delete, archive and unarchive, so
-- the X-Total-Count of an unfiltered list is one row read instead of a
-- count(*) that scans the table.
CREATE TABLE runner_counts (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    total  INTEGER NOT NULL,
    active INTEGER NOT NULL
) STRICT;
INSERT INTO runner_counts (id, total, active)
    SELECT 1, count(*), count(*) FILTER (WHERE archived IS NULL) FROM runners;
CREATE TRIGGER runner_counts_insert AFTER INSERT ON runners BEGIN
    UPDATE runner_counts
    SET total = total + 1, active = active + (NEW.archived IS NULL) WHERE id = 1;
END;
CREATE TRIGGER runner_counts_delete AFTER DELETE ON runners BEGIN
    UPDATE runner_counts
    SET total = total - 1, active = active - (OLD.archived IS NULL) WHERE id = 1;
END;
CREATE TRIGGER runner_counts_archive AFTER UPDATE OF archived ON runners
WHEN (OLD.archived IS NULL) != (NEW.archived IS NULL) BEGIN
    UPDATE runner_counts
    SET active = active + (NEW.archived IS NULL) - (OLD.archived IS NULL) WHERE id = 1;
END;

-- The runner's name case-folded (Rust's Unicode to_lowercase, through the
-- `fold` SQL function), kept beside it so that `search` compares stored text
-- instead of folding every name of the table again on every query.
ALTER TABLE runners ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
UPDATE runners SET name_folded = fold(name);

-- The default list (active runners by name, ties by slug) walks this index
-- from its first entry: page 1 reads 8 entries and never meets an archived
-- runner, whatever the size of the registry. `runners_name_slug` still
-- serves `archived=true` and the exact `name` filter.
CREATE INDEX runners_active_name_slug ON runners (name, slug) WHERE archived IS NULL;
"#;

/// Version 3: hardware specs, the specs each runner offers, and runner keys
/// of Bencher v0.6.4's form (nothing to migrate: a key is stored as the
/// SHA-256 of its text, whatever its form, in `runners.token_hash`).
const SCHEMA_V3: &str = r#"
CREATE TABLE specs (
    -- Insertion order: the `created` sort.
    id           INTEGER PRIMARY KEY,
    uuid         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    -- As runners.name_folded: the name case-folded, for `search`.
    name_folded  TEXT NOT NULL,
    slug         TEXT NOT NULL UNIQUE,
    architecture TEXT NOT NULL CHECK (architecture IN ('x86_64', 'aarch64')),
    os           TEXT NOT NULL CHECK (os IN ('linux', 'macos', 'windows')),
    cpu          INTEGER NOT NULL CHECK (cpu BETWEEN 1 AND 2147483647),
    memory       INTEGER NOT NULL CHECK (memory >= 1),
    disk         INTEGER NOT NULL CHECK (disk >= 1),
    network      INTEGER NOT NULL CHECK (network IN (0, 1)),
    sandbox      TEXT CHECK (sandbox IN ('firecracker')),
    -- When the spec became the fallback; NULL on every other spec.
    fallback     TEXT,
    archived     TEXT,
    created      TEXT NOT NULL,
    modified     TEXT NOT NULL,
    CHECK (fallback IS NULL OR archived IS NULL)
) STRICT;
-- The name sort (ties by the unique slug) and the exact `name` filter.
CREATE INDEX specs_name_slug ON specs (name, slug);
-- At most one fallback spec: every row with a fallback has the same key
-- here, so a second one is a unique violation, whatever the code does.
CREATE UNIQUE INDEX specs_one_fallback ON specs (fallback IS NOT NULL)
    WHERE fallback IS NOT NULL;

-- The specs a runner offers. The row id is the order they were added in.
CREATE TABLE runner_specs (
    id        INTEGER PRIMARY KEY,
    runner_id INTEGER NOT NULL REFERENCES runners (id),
    spec_id   INTEGER NOT NULL REFERENCES specs (id),
    -- Also the index of a runner's specs (a runner's page reads them).
    UNIQUE (runner_id, spec_id)
) STRICT;
-- Which runners have a spec: a delete checks it.
CREATE INDEX runner_specs_spec ON runner_specs (spec_id);
"#;

/// Version 4: the audit trail.
const SCHEMA_V4: &str = r#"
-- One row per successful admin write, `token create|revoke` and `key
-- rotate`, written in the same transaction as the write. Never a secret.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    time        TEXT NOT NULL,
    -- Who: the API token's user and token id; NULL for the server program's
    -- own commands (run by whoever can open the file).
    user_uuid   TEXT,
    user_name   TEXT,
    token_uuid  TEXT,
    -- What: `runner.create`, `spec.update`, `token.revoke`, ...
    action      TEXT NOT NULL,
    target_uuid TEXT,
    target_slug TEXT,
    -- The fields that changed: a JSON object of field to new value.
    changes     TEXT NOT NULL
) STRICT;
-- `audit --runner`: a runner's rows by uuid (a slug may change).
CREATE INDEX audit_target ON audit (target_uuid);
"#;

/// Version 5: trigram indexes for `search`, so that a search reads the rows
/// that can match instead of every row. External-content FTS5 tables over
/// the searched columns, kept by triggers in the transaction of every write.
static SCHEMA_V5: LazyLock<String> = LazyLock::new(|| {
    let indexed = |table: &str| {
        format!(
            r#"CREATE VIRTUAL TABLE {table}_search USING fts5(
    name_folded, slug, uuid, content = '{table}', content_rowid = 'id', tokenize = 'trigram');
INSERT INTO {table}_search ({table}_search) VALUES ('rebuild');
CREATE TRIGGER {table}_search_insert AFTER INSERT ON {table} BEGIN
    INSERT INTO {table}_search (rowid, name_folded, slug, uuid)
        VALUES (NEW.id, NEW.name_folded, NEW.slug, NEW.uuid);
END;
CREATE TRIGGER {table}_search_delete AFTER DELETE ON {table} BEGIN
    INSERT INTO {table}_search ({table}_search, rowid, name_folded, slug, uuid)
        VALUES ('delete', OLD.id, OLD.name_folded, OLD.slug, OLD.uuid);
END;
CREATE TRIGGER {table}_search_update AFTER UPDATE OF name_folded, slug, uuid ON {table}
WHEN OLD.name_folded != NEW.name_folded OR OLD.slug != NEW.slug OR OLD.uuid != NEW.uuid BEGIN
    INSERT INTO {table}_search ({table}_search, rowid, name_folded, slug, uuid)
        VALUES ('delete', OLD.id, OLD.name_folded, OLD.slug, OLD.uuid);
    INSERT INTO {table}_search (rowid, name_folded, slug, uuid)
        VALUES (NEW.id, NEW.name_folded, NEW.slug, NEW.uuid);
END;
"#
        )
    };
    format!("\n{}\n{}", indexed("runners"), indexed("specs"))
});

/// Version 6: the signing secret's generation, counted up by each rotation,
/// so that a running server that re-reads the secret can tell a newer one
/// from an older one (and never goes back).
const SCHEMA_V6: &str = r#"
ALTER TABLE signing_key ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
"#;

/// Version 7: jobs, and what a runner's agent says of itself on its
/// channel. A runner's `channel` is when its open channel was opened (null:
/// none), cleared for every runner when a server starts.
const SCHEMA_V7: &str = r#"
ALTER TABLE runners ADD COLUMN os TEXT;
ALTER TABLE runners ADD COLUMN arch TEXT;
ALTER TABLE runners ADD COLUMN version TEXT;
ALTER TABLE runners ADD COLUMN channel TEXT;

CREATE TABLE jobs (
    -- Insertion order: the `created` sort, and "older first" among equals.
    id             INTEGER PRIMARY KEY,
    uuid           TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN
                       ('pending', 'claimed', 'running', 'completed', 'failed', 'canceled')),
    spec_id        INTEGER NOT NULL REFERENCES specs (id),
    runner_id      INTEGER REFERENCES runners (id),
    priority       INTEGER NOT NULL,
    -- Bencher's JsonJobConfig, as JSON text.
    config         TEXT NOT NULL,
    -- Seconds; also in `config`, here for the timeout rules.
    timeout        INTEGER NOT NULL CHECK (timeout > 0),
    -- JSON text of {results, error?}, once the job has ended.
    output         TEXT,
    claimed        TEXT,
    started        TEXT,
    completed      TEXT,
    last_heartbeat TEXT,
    created        TEXT NOT NULL,
    modified       TEXT NOT NULL,
    CHECK ((status = 'pending') = (runner_id IS NULL) OR status = 'canceled')
) STRICT;
-- The claim: the best pending job of one spec, in one index walk.
CREATE INDEX jobs_pending ON jobs (spec_id, priority DESC, id) WHERE status = 'pending';
-- A runner's jobs, and whether it has one claimed or running.
CREATE INDEX jobs_runner ON jobs (runner_id, status);
-- Jobs claimed or running, to resolve after a restart.
CREATE INDEX jobs_active ON jobs (status) WHERE status IN ('claimed', 'running');
CREATE INDEX jobs_spec ON jobs (spec_id);
"#;

/// Version 8: which server process holds a runner's channel, and the
/// leases of the processes serving the database. Several processes share
/// only a PostgreSQL database (its version 8 is the same); on SQLite one
/// process serves the file, clears every channel when it starts, and
/// leaves both empty. Here so that one version names one schema on both
/// engines.
const SCHEMA_V8: &str = r#"
ALTER TABLE runners ADD COLUMN channel_replica TEXT;
CREATE TABLE replicas (
    uuid TEXT PRIMARY KEY,
    seen TEXT NOT NULL
) STRICT;
"#;

/// Version 9, for speed.
///
/// The trigram indexes of version 5 without the UUID column, and without
/// column sizes (kept only for ranking, which search does not use): a UUID
/// is 34 trigrams that no other row shares, more than half of each insert's
/// index work. A search that could be part of a UUID (only hexadecimal
/// digits and hyphens) finds its UUID matches by reading the UUID index
/// instead (see `items`); any other search cannot match a UUID.
///
/// And the triggers no longer write the index row by row: FTS5 writes a
/// new segment of its index at every savepoint (each write of a group
/// commit is one, and so is each statement with a trigger), and merges
/// those segments, which was most of a create's work. The triggers queue
/// each change (`{table}_search_queue`, in the write's transaction), and
/// the writer moves the whole queue into the index in one statement just
/// before each group commit (`items::drain_search_queues`): one segment a
/// commit. A search takes the queued rows as candidates too, so that its
/// results never depend on when the queue was drained.
///
/// And two indexes for a runner's row: its specs in the order they were
/// added (read without a sort), and its claimed or running jobs (whether
/// it is busy: one probe).
static SCHEMA_V9: LazyLock<String> = LazyLock::new(|| {
    let queued = |table: &str| {
        format!(
            r#"DROP TRIGGER {table}_search_insert;
DROP TRIGGER {table}_search_delete;
DROP TRIGGER {table}_search_update;
DROP TABLE {table}_search;
{}"#,
            search_queue(table)
        )
    };
    format!("\n{}{}{V9_INDEXES}", queued("runners"), queued("specs"))
});

/// A trigram index of `table`'s names and slugs, fed by a queue (version 9's
/// design, for runners and specs; version 11's for projects).
fn search_queue(table: &str) -> String {
    format!(
        r#"CREATE VIRTUAL TABLE {table}_search USING fts5(
    name_folded, slug, content = '{table}', content_rowid = 'id', tokenize = 'trigram',
    columnsize = 0);
INSERT INTO {table}_search ({table}_search) VALUES ('rebuild');
CREATE TABLE {table}_search_queue (
    seq         INTEGER PRIMARY KEY,
    id          INTEGER NOT NULL,
    -- NULL: add the row's terms; 'delete': remove them (FTS5's command).
    command     TEXT CHECK (command = 'delete'),
    name_folded TEXT NOT NULL,
    slug        TEXT NOT NULL
) STRICT;
CREATE TRIGGER {table}_search_insert AFTER INSERT ON {table} BEGIN
    INSERT INTO {table}_search_queue (id, command, name_folded, slug)
        VALUES (NEW.id, NULL, NEW.name_folded, NEW.slug);
END;
CREATE TRIGGER {table}_search_delete AFTER DELETE ON {table} BEGIN
    INSERT INTO {table}_search_queue (id, command, name_folded, slug)
        VALUES (OLD.id, 'delete', OLD.name_folded, OLD.slug);
END;
CREATE TRIGGER {table}_search_update AFTER UPDATE OF name_folded, slug ON {table}
WHEN OLD.name_folded != NEW.name_folded OR OLD.slug != NEW.slug BEGIN
    INSERT INTO {table}_search_queue (id, command, name_folded, slug)
        VALUES (OLD.id, 'delete', OLD.name_folded, OLD.slug);
    INSERT INTO {table}_search_queue (id, command, name_folded, slug)
        VALUES (NEW.id, NULL, NEW.name_folded, NEW.slug);
END;

"#
    )
}

/// Version 9's two indexes for a runner's row.
const V9_INDEXES: &str = r#"-- A runner's specs in the order added (the index holds the row id after
-- the runner's): a runner's row reads them without a sort.
CREATE INDEX runner_specs_runner ON runner_specs (runner_id);
-- Whether a runner is busy: one probe, without a temporary table for the
-- list of statuses.
CREATE INDEX jobs_busy ON jobs (runner_id) WHERE status IN ('claimed', 'running');
"#;

/// Version 10: which runners a job was given to and taken back from. A job
/// is confirmed by its runner's `running`; one whose channel closed before
/// that goes back to the queue, and the runner it was taken from is
/// recorded here, so that a report it sends later (an agent resends its
/// results after a reconnect) is acknowledged and dropped rather than
/// refused as a report on another runner's job.
const SCHEMA_V10: &str = r#"
CREATE TABLE job_releases (
    job_id    INTEGER NOT NULL REFERENCES jobs (id),
    runner_id INTEGER NOT NULL REFERENCES runners (id),
    PRIMARY KEY (job_id, runner_id)
) STRICT, WITHOUT ROWID;
"#;

mod v11;
use v11::SCHEMA_V11;

/// Version 12: the keys that sign registry tokens (ES256, PKCS #8 DER) and
/// their self-signed certificates (DER), named by libtrust key ID. The
/// newest not retired signs; every one not retired is in the registry's
/// bundle. The first is made at open, as the signing secret.
const SCHEMA_V12: &str = r#"
CREATE TABLE registry_keys (
    id          INTEGER PRIMARY KEY,
    kid         TEXT NOT NULL UNIQUE,
    private_key BLOB NOT NULL,
    certificate BLOB NOT NULL,
    created     TEXT NOT NULL,
    retired     TEXT
) STRICT;
"#;

/// Version 13: the online runners (channel open, not archived), indexed by
/// themselves, so that the metrics count them without a scan.
const SCHEMA_V13: &str = r#"
CREATE INDEX runners_online ON runners (id) WHERE channel IS NOT NULL AND archived IS NULL;
"#;

/// Version 14: the jobs by status, kept by triggers in the transaction of
/// every write (as `runner_counts`), so that the metrics read every status,
/// the ended ones too, from one row. Counted once here from the jobs.
const SCHEMA_V14: &str = r#"
CREATE TABLE job_counts (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    pending   INTEGER NOT NULL,
    claimed   INTEGER NOT NULL,
    running   INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    processed INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    canceled  INTEGER NOT NULL
) STRICT;
INSERT INTO job_counts SELECT 1,
    count(*) FILTER (WHERE status = 'pending'),
    count(*) FILTER (WHERE status = 'claimed'),
    count(*) FILTER (WHERE status = 'running'),
    count(*) FILTER (WHERE status = 'completed'),
    count(*) FILTER (WHERE status = 'processed'),
    count(*) FILTER (WHERE status = 'failed'),
    count(*) FILTER (WHERE status = 'canceled')
FROM jobs;
CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN
    UPDATE job_counts SET
        pending = pending + (NEW.status = 'pending'),
        claimed = claimed + (NEW.status = 'claimed'),
        running = running + (NEW.status = 'running'),
        completed = completed + (NEW.status = 'completed'),
        processed = processed + (NEW.status = 'processed'),
        failed = failed + (NEW.status = 'failed'),
        canceled = canceled + (NEW.status = 'canceled');
END;
CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET
        pending = pending - (OLD.status = 'pending'),
        claimed = claimed - (OLD.status = 'claimed'),
        running = running - (OLD.status = 'running'),
        completed = completed - (OLD.status = 'completed'),
        processed = processed - (OLD.status = 'processed'),
        failed = failed - (OLD.status = 'failed'),
        canceled = canceled - (OLD.status = 'canceled');
END;
CREATE TRIGGER job_counts_status AFTER UPDATE OF status ON jobs
WHEN OLD.status <> NEW.status BEGIN
    UPDATE job_counts SET
        pending = pending + (NEW.status = 'pending') - (OLD.status = 'pending'),
        claimed = claimed + (NEW.status = 'claimed') - (OLD.status = 'claimed'),
        running = running + (NEW.status = 'running') - (OLD.status = 'running'),
        completed = completed + (NEW.status = 'completed') - (OLD.status = 'completed'),
        processed = processed + (NEW.status = 'processed') - (OLD.status = 'processed'),
        failed = failed + (NEW.status = 'failed') - (OLD.status = 'failed'),
        canceled = canceled + (NEW.status = 'canceled') - (OLD.status = 'canceled');
END;
"#;

/// The schema's migrations, in order: version N is the first N applied.
pub(crate) static MIGRATIONS: LazyLock<[&str; 14]> = LazyLock::new(|| {
    [
        SCHEMA_V1,
        SCHEMA_V2,
        SCHEMA_V3,
        SCHEMA_V4,
        SCHEMA_V5.as_str(),
        SCHEMA_V6,
        SCHEMA_V7,
        SCHEMA_V8,
        SCHEMA_V9.as_str(),
        SCHEMA_V10,
        SCHEMA_V11.as_str(),
        SCHEMA_V12,
        SCHEMA_V13,
        SCHEMA_V14,
    ]
});
