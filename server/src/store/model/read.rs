//! Each row of the store read once, from either engine: an engine says how
//! its columns hold the store's types ([`StoredRow`], in `sqlite/columns.rs`
//! and `pg/columns.rs`), and the rows below say which column is which.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    ApiTokenRow, Architecture, AuditRow, JobRow, JobStatus, KeyRow, NameRow, OperatingSystem,
    ProjectRow, ReportRow, RunnerRow, RunnerStatus, Sandbox, SpecRow, UserRow, Visibility,
};

/// A row of one engine's result, read column by column.
pub trait StoredRow {
    type Error;
    fn uuid(&self, at: usize) -> Result<Uuid, Self::Error>;
    fn opt_uuid(&self, at: usize) -> Result<Option<Uuid>, Self::Error>;
    fn text(&self, at: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, at: usize) -> Result<Option<String>, Self::Error>;
    fn time(&self, at: usize) -> Result<DateTime<Utc>, Self::Error>;
    fn opt_time(&self, at: usize) -> Result<Option<DateTime<Utc>>, Self::Error>;
    /// A list of UUIDs (a runner's specs): none is empty.
    fn uuids(&self, at: usize) -> Result<Vec<Uuid>, Self::Error>;
    fn int(&self, at: usize) -> Result<i64, Self::Error>;
    fn boolean(&self, at: usize) -> Result<bool, Self::Error>;
    fn json(&self, at: usize) -> Result<serde_json::Value, Self::Error>;
    /// Column `at` holds what the store never writes (`what`).
    fn invalid(&self, at: usize, what: String) -> Self::Error;

    /// A stored enum, by its own `parse`, or none.
    fn opt_enum<T>(
        &self,
        at: usize,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>, Self::Error> {
        match self.opt_text(at)? {
            None => Ok(None),
            Some(text) => match parse(&text) {
                Some(value) => Ok(Some(value)),
                None => Err(self.invalid(at, format!("the label `{text}`"))),
            },
        }
    }

    /// A stored enum, by its own `parse`.
    fn stored_enum<T>(&self, at: usize, parse: fn(&str) -> Option<T>) -> Result<T, Self::Error> {
        self.opt_enum(at, parse)?
            .ok_or_else(|| self.invalid(at, "NULL".to_owned()))
    }

    /// An integer that `T` holds (the table's CHECK, or its type).
    fn int_as<T: TryFrom<i64>>(&self, at: usize) -> Result<T, Self::Error> {
        let n = self.int(at)?;
        T::try_from(n).map_err(|_| self.invalid(at, format!("the number {n}")))
    }
}

/// An item's row, read from its columns from `at` on (each engine selects
/// them in this order).
pub trait ReadRow: Sized {
    fn read<R: StoredRow>(row: &R, at: usize) -> Result<Self, R::Error>;
}

/// `Ok($ty { … })`, each field read from the next column (from `$at` on)
/// by the named [`StoredRow`] method: a table of which column is which.
macro_rules! columns {
    ($row:ident, $at:expr => $ty:ident { $($field:ident: $read:ident $(($arg:expr))?),* $(,)? }) => {{
        let mut at = $at;
        let mut next = || {
            at += 1;
            at - 1
        };
        Ok($ty { $($field: $row.$read(next() $(, $arg)?)?),* })
    }};
}

impl ReadRow for RunnerRow {
    /// The columns `uuid, name, slug, specs, archived, last_heartbeat,
    /// created, modified, status, os, arch, version`.
    fn read<R: StoredRow>(row: &R, at: usize) -> Result<Self, R::Error> {
        columns!(row, at => Self {
            uuid: uuid, name: text, slug: text, specs: uuids, archived: opt_time,
            last_heartbeat: opt_time, created: time, modified: time,
            status: stored_enum(RunnerStatus::parse), os: opt_enum(OperatingSystem::parse),
            arch: opt_enum(Architecture::parse), version: opt_text,
        })
    }
}

impl ReadRow for SpecRow {
    /// The columns `uuid, name, slug, architecture, os, cpu, memory, disk,
    /// network, sandbox, fallback, archived, created, modified`.
    fn read<R: StoredRow>(row: &R, at: usize) -> Result<Self, R::Error> {
        columns!(row, at => Self {
            uuid: uuid, name: text, slug: text, architecture: stored_enum(Architecture::parse),
            os: stored_enum(OperatingSystem::parse), cpu: int_as, memory: int_as, disk: int_as,
            network: boolean, sandbox: opt_enum(Sandbox::parse), fallback: opt_time,
            archived: opt_time, created: time, modified: time,
        })
    }
}

impl ReadRow for ProjectRow {
    /// The columns `uuid, name, slug, url, visibility, archived, created,
    /// modified`.
    fn read<R: StoredRow>(row: &R, at: usize) -> Result<Self, R::Error> {
        columns!(row, at => Self {
            uuid: uuid, name: text, slug: text, url: opt_text,
            visibility: stored_enum(Visibility::parse), archived: opt_time, created: time,
            modified: time,
        })
    }
}

impl ReadRow for KeyRow {
    /// The columns `uuid, owner's uuid, name, creator, created, expires,
    /// revoked`.
    fn read<R: StoredRow>(row: &R, at: usize) -> Result<Self, R::Error> {
        columns!(row, at => Self {
            uuid: uuid, owner_uuid: uuid, name: text, creator: opt_uuid, created: time,
            expires: time, revoked: opt_time,
        })
    }
}

impl ReadRow for NameRow {
    /// The columns `uuid, name, slug, units, created`.
    fn read<R: StoredRow>(row: &R, at: usize) -> Result<Self, R::Error> {
        columns!(row, at => Self {
            uuid: uuid, name: text, slug: text, units: opt_text, created: time,
        })
    }
}

impl ReportRow {
    /// A report from the columns `uuid, adapter, start_time, end_time,
    /// job's uuid, results (JSON text or NULL), created, user's uuid, name
    /// and admin (NULL without a user)`, then its project's
    /// ([`ProjectRow`]), branch's and testbed's ([`NameRow`]).
    pub fn read<R: StoredRow>(row: &R) -> Result<Self, R::Error> {
        let results = match row.opt_text(5)? {
            Some(text) => {
                Some(serde_json::from_str(&text).map_err(|e| row.invalid(5, e.to_string()))?)
            }
            None => None,
        };
        let user = match row.opt_uuid(7)? {
            Some(uuid) => Some(UserRow {
                uuid,
                name: row.text(8)?,
                admin: row.boolean(9)?,
            }),
            None => None,
        };
        Ok(Self {
            uuid: row.uuid(0)?,
            adapter: row.stored_enum(1, |s| crate::bmf::Adapter::parse("adapter", s).ok())?,
            start_time: row.time(2)?,
            end_time: row.time(3)?,
            job: row.opt_uuid(4)?,
            results,
            created: row.time(6)?,
            user,
            project: ProjectRow::read(row, 10)?,
            branch: NameRow::read(row, 18)?,
            testbed: NameRow::read(row, 23)?,
        })
    }
}

impl AuditRow {
    /// The columns `time, user_name, user_uuid, token_uuid, action,
    /// target_uuid, target_slug, changes` (UUIDs as text).
    pub fn read<R: StoredRow>(row: &R) -> Result<Self, R::Error> {
        columns!(row, 0 => Self {
            time: time, user: opt_text, user_uuid: opt_text, token: opt_text, action: text,
            target_uuid: opt_text, target_slug: opt_text, changes: json,
        })
    }
}

impl JobRow {
    /// A job from the engines' job columns (`id, uuid, status, spec_id,
    /// config, runner's uuid, claimed, started, completed, created,
    /// modified, output, priority, last_heartbeat, timeout, runner_id,
    /// adapter, project's uuid`: the row ids are the engine's), with its
    /// spec, read apart. Its output is JSON text on both engines.
    pub fn read<R: StoredRow>(row: &R, spec: SpecRow) -> Result<Self, R::Error> {
        let output = match row.opt_text(11)? {
            Some(text) => {
                Some(serde_json::from_str(&text).map_err(|e| row.invalid(11, e.to_string()))?)
            }
            None => None,
        };
        Ok(Self {
            uuid: row.uuid(1)?,
            status: row.stored_enum(2, JobStatus::parse)?,
            spec,
            config: row.json(4)?,
            runner: row.opt_uuid(5)?,
            claimed: row.opt_time(6)?,
            started: row.opt_time(7)?,
            completed: row.opt_time(8)?,
            created: row.time(9)?,
            modified: row.time(10)?,
            output,
            priority: row.int_as(12)?,
            last_heartbeat: row.opt_time(13)?,
            timeout: row.int_as(14)?,
            adapter: row.opt_enum(16, |s| crate::bmf::Adapter::parse("adapter", s).ok())?,
            project: row.opt_uuid(17)?,
        })
    }
}

impl ApiTokenRow {
    /// The columns `uuid, user's name, admin, created, expires, revoked`.
    pub fn read<R: StoredRow>(row: &R) -> Result<Self, R::Error> {
        columns!(row, 0 => Self {
            uuid: uuid, user_name: text, admin: boolean, created: time, expires: time,
            revoked: opt_time,
        })
    }
}
