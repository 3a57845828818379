//! Version 11 of the SQLite schema (frozen): Bencher's submitter side.

use std::sync::LazyLock;

/// Version 11: Bencher's submitter side. The one organization; projects
/// (items like runners, with their own trigram index); project and user
/// keys (SHA-256 only); reports and the named things of a project they
/// refer to (branches, testbeds, benchmarks, measures: made on first use).
/// A job may belong to a run (`project_id`, `adapter`), and `processed`
/// joins the statuses: the table is rebuilt for its CHECK (SQLite cannot
/// alter one), `job_releases` with it (it refers to jobs).
pub(super) static SCHEMA_V11: LazyLock<String> =
    LazyLock::new(|| format!("{V11_TABLES}{}{V11_JOBS}", super::search_queue("projects")));

const V11_TABLES: &str = r#"
CREATE TABLE organization (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    uuid    TEXT NOT NULL,
    created TEXT NOT NULL
) STRICT;

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    name_folded TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    url         TEXT,
    visibility  TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    -- Never set (a project is deleted): an item's column.
    archived    TEXT,
    created     TEXT NOT NULL,
    modified    TEXT NOT NULL
) STRICT;
CREATE INDEX projects_name_slug ON projects (name, slug);

-- A project's keys and a user's keys: exactly one owner each.
CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE,
    user_id    INTEGER REFERENCES users (id),
    name       TEXT NOT NULL,
    -- SHA-256 of the key; the key itself is never stored.
    key_hash   BLOB NOT NULL UNIQUE,
    creator    TEXT,
    created    TEXT NOT NULL,
    expires    TEXT NOT NULL,
    revoked    TEXT,
    CHECK ((project_id IS NULL) != (user_id IS NULL))
) STRICT;
CREATE INDEX api_keys_project ON api_keys (project_id, name, id) WHERE project_id IS NOT NULL;
CREATE INDEX api_keys_user ON api_keys (user_id, name, id) WHERE user_id IS NOT NULL;

CREATE TABLE project_names (
    id         INTEGER PRIMARY KEY,
    uuid       TEXT NOT NULL UNIQUE,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('branch', 'testbed', 'benchmark', 'measure')),
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL,
    units      TEXT,
    created    TEXT NOT NULL,
    UNIQUE (project_id, kind, name)
) STRICT;
"#;

const V11_JOBS: &str = r#"
CREATE TABLE jobs_v11 (
    id             INTEGER PRIMARY KEY,
    uuid           TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN
                       ('pending', 'claimed', 'running', 'completed', 'processed', 'failed',
                        'canceled')),
    spec_id        INTEGER NOT NULL REFERENCES specs (id),
    runner_id      INTEGER REFERENCES runners (id),
    priority       INTEGER NOT NULL,
    config         TEXT NOT NULL,
    timeout        INTEGER NOT NULL CHECK (timeout > 0),
    output         TEXT,
    claimed        TEXT,
    started        TEXT,
    completed      TEXT,
    last_heartbeat TEXT,
    created        TEXT NOT NULL,
    modified       TEXT NOT NULL,
    -- A run's job: its project (none once the project is deleted) and the
    -- adapter that makes its output the report's results.
    project_id     INTEGER REFERENCES projects (id) ON DELETE SET NULL,
    adapter        TEXT CHECK (adapter IN ('magic', 'json')),
    CHECK ((status = 'pending') = (runner_id IS NULL) OR status = 'canceled')
) STRICT;
INSERT INTO jobs_v11 (id, uuid, status, spec_id, runner_id, priority, config, timeout, output,
                      claimed, started, completed, last_heartbeat, created, modified)
    SELECT id, uuid, status, spec_id, runner_id, priority, config, timeout, output,
           claimed, started, completed, last_heartbeat, created, modified FROM jobs;
CREATE TEMP TABLE job_releases_v10 AS SELECT job_id, runner_id FROM job_releases;
DROP TABLE job_releases;
DROP TABLE jobs;
ALTER TABLE jobs_v11 RENAME TO jobs;
CREATE INDEX jobs_pending ON jobs (spec_id, priority DESC, id) WHERE status = 'pending';
CREATE INDEX jobs_runner ON jobs (runner_id, status);
CREATE INDEX jobs_active ON jobs (status) WHERE status IN ('claimed', 'running');
CREATE INDEX jobs_spec ON jobs (spec_id);
CREATE INDEX jobs_busy ON jobs (runner_id) WHERE status IN ('claimed', 'running');
CREATE INDEX jobs_project ON jobs (project_id, id) WHERE project_id IS NOT NULL;
CREATE TABLE job_releases (
    job_id    INTEGER NOT NULL REFERENCES jobs (id),
    runner_id INTEGER NOT NULL REFERENCES runners (id),
    PRIMARY KEY (job_id, runner_id)
) STRICT, WITHOUT ROWID;
INSERT INTO job_releases SELECT job_id, runner_id FROM temp.job_releases_v10;
DROP TABLE temp.job_releases_v10;

CREATE TABLE reports (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT NOT NULL UNIQUE,
    project_id      INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id         INTEGER REFERENCES users (id),
    branch_id       INTEGER NOT NULL REFERENCES project_names (id),
    testbed_id      INTEGER NOT NULL REFERENCES project_names (id),
    adapter         TEXT NOT NULL CHECK (adapter IN ('magic', 'json')),
    start_time      TEXT NOT NULL,
    end_time        TEXT NOT NULL,
    job_id          INTEGER UNIQUE REFERENCES jobs (id),
    idempotency_key TEXT,
    -- Per iteration, JSON text; NULL until its job is processed.
    results         TEXT,
    created         TEXT NOT NULL,
    UNIQUE (project_id, idempotency_key)
) STRICT;
CREATE INDEX reports_project ON reports (project_id, start_time, id);
"#;
