//! The HTTP edge of the store's model: the wire views (`Json*`) made from
//! the store's rows, and the store's new items and change sets made from
//! request bodies. A field renamed on the wire changes only this file.

pub mod runs;

use crate::store::StoreError;
use crate::store::model::{
    self, JobRow, NewJob, NewRunner, NewSpec, RunnerChanges, RunnerRow, SpecChanges, SpecRow,
};
use crate::types::{
    self as wire, JsonJob, JsonJobConfig, JsonNewJob, JsonNewRunner, JsonNewSpec, JsonRunner,
    JsonSpec, JsonUpdateRunner, JsonUpdateSpec,
};
use crate::validate::{TIMEOUT_DEFAULT, Timeout};

/// A field's value as the other side's type: itself, or a stored enum as
/// the wire's (and back), alone or in an `Option`.
trait Edge<T> {
    fn edge(self) -> T;
}

impl<T> Edge<T> for T {
    fn edge(self) -> T {
        self
    }
}

/// `From` both ways between a stored enum and the wire's, variant by
/// variant under the same names (a `match`: the compiler checks that each
/// side has every variant of the other).
macro_rules! same_variants {
    ($($name:ident { $($variant:ident),* $(,)? })*) => {$(
        impl From<model::$name> for wire::$name {
            fn from(value: model::$name) -> Self {
                match value {
                    $(model::$name::$variant => Self::$variant,)*
                }
            }
        }

        impl From<wire::$name> for model::$name {
            fn from(value: wire::$name) -> Self {
                match value {
                    $(wire::$name::$variant => Self::$variant,)*
                }
            }
        }

        impl Edge<wire::$name> for model::$name {
            fn edge(self) -> wire::$name {
                self.into()
            }
        }

        impl Edge<model::$name> for wire::$name {
            fn edge(self) -> model::$name {
                self.into()
            }
        }

        impl Edge<Option<wire::$name>> for Option<model::$name> {
            fn edge(self) -> Option<wire::$name> {
                self.map(Into::into)
            }
        }

        impl Edge<Option<model::$name>> for Option<wire::$name> {
            fn edge(self) -> Option<model::$name> {
                self.map(Into::into)
            }
        }
    )*};
}

same_variants!(
    Architecture { X86_64, Aarch64 }
    OperatingSystem { Linux, Macos, Windows }
    Sandbox { Firecracker }
    JobStatus { Pending, Claimed, Running, Completed, Processed, Failed, Canceled }
    RunnerStatus { Offline, Idle, Busy }
);

/// `From<$from> for $to`, field by field under the same names: a struct
/// literal, so the compiler checks that every field of `$to` is given.
macro_rules! same_fields {
    ($from:ty => $to:ty { $($field:ident),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(value: $from) -> Self {
                Self { $($field: value.$field.edge()),* }
            }
        }
    };
}

same_fields!(RunnerRow => JsonRunner {
    uuid, name, slug, specs, archived, last_heartbeat, created, modified, status, os, arch,
    version
});
same_fields!(SpecRow => JsonSpec {
    uuid, name, slug, architecture, os, cpu, memory, disk, network, sandbox, fallback, archived,
    created, modified
});
same_fields!(JsonNewRunner => NewRunner { name, slug });
same_fields!(JsonUpdateRunner => RunnerChanges { name, slug, archived });
same_fields!(JsonNewSpec => NewSpec {
    name, slug, architecture, os, cpu, memory, disk, network, sandbox, fallback
});
same_fields!(JsonUpdateSpec => SpecChanges { name, slug, archived, fallback });

impl From<JsonNewJob> for NewJob {
    fn from(new: JsonNewJob) -> Self {
        let timeout = new
            .timeout
            .unwrap_or(Timeout::try_from(TIMEOUT_DEFAULT).expect("the default timeout is valid"));
        let config = JsonJobConfig {
            registry: new.registry,
            project: new.project,
            digest: new.digest,
            image: new.image,
            entrypoint: new.entrypoint,
            cmd: new.cmd,
            env: new.env,
            timeout,
            file_paths: new.file_paths,
            build_time: new.build_time,
            file_size: new.file_size,
            iter: new.iter,
            allow_failure: new.allow_failure,
            backdate: new.backdate,
        };
        Self {
            spec: new.spec.map(Into::into),
            config: serde_json::to_value(config).expect("a job config serializes"),
            timeout: timeout.get(),
            priority: new.priority.unwrap_or(0),
        }
    }
}

impl From<&RunnerRow> for wire::JsonRunnerEvent {
    fn from(row: &RunnerRow) -> Self {
        Self {
            uuid: row.uuid,
            status: row.status.edge(),
            archived: row.archived.is_some(),
        }
    }
}

impl From<&JobRow> for wire::JsonJobEvent {
    fn from(row: &JobRow) -> Self {
        Self {
            uuid: row.uuid,
            status: row.status.edge(),
            runner: row.runner,
        }
    }
}

impl From<model::AuditRow> for wire::JsonAuditEntry {
    fn from(row: model::AuditRow) -> Self {
        Self {
            time: row.time,
            user: row.user,
            user_uuid: row.user_uuid,
            token: row.token,
            action: row.action,
            target_uuid: row.target_uuid,
            target_slug: row.target_slug,
            changes: row.changes,
        }
    }
}

impl TryFrom<JobRow> for JsonJob {
    type Error = StoreError;

    /// Fails only if the stored config or output is not what this server
    /// wrote (a database edited by hand).
    fn try_from(row: JobRow) -> Result<Self, StoreError> {
        let unreadable =
            |e: serde_json::Error| StoreError::Task(format!("job {}: stored JSON: {e}", row.uuid));
        Ok(Self {
            uuid: row.uuid,
            status: row.status.into(),
            spec: row.spec.clone().into(),
            config: serde_json::from_value(row.config.clone()).map_err(unreadable)?,
            runner: row.runner,
            claimed: row.claimed,
            started: row.started,
            completed: row.completed,
            created: row.created,
            modified: row.modified,
            output: row
                .output
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(unreadable)?,
            priority: row.priority,
            last_heartbeat: row.last_heartbeat,
        })
    }
}
