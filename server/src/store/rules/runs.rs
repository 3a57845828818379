//! The rules of the submitter side, decided once for both engines: what a
//! run's job's output becomes when it completes (`process`), and what a
//! key's write records.

use crate::bmf;
use crate::store::model::{AuditAction, JobRow, JobStatus, KeyOwner, KeyRow, time_text};

use super::Move;

/// What a key's write records in the audit trail: its action (a project's
/// or a user's key) and fields; never the key or its hash.
pub struct KeyAudit {
    pub action: AuditAction,
    pub fields: serde_json::Value,
}

impl KeyAudit {
    fn of(owner: KeyOwner, at: usize, fields: serde_json::Value) -> Self {
        let (kind, uuid) = match owner {
            KeyOwner::Project(uuid) => ("project", uuid),
            KeyOwner::User(uuid) => ("user", uuid),
        };
        let mut fields = fields;
        fields[kind] = serde_json::json!(uuid);
        Self {
            action: Self::actions(owner)[at],
            fields,
        }
    }

    fn actions(owner: KeyOwner) -> [AuditAction; 3] {
        match owner {
            KeyOwner::Project(_) => [
                AuditAction::ProjectKeyCreate,
                AuditAction::ProjectKeyUpdate,
                AuditAction::ProjectKeyRevoke,
            ],
            KeyOwner::User(_) => [
                AuditAction::UserKeyCreate,
                AuditAction::UserKeyUpdate,
                AuditAction::UserKeyRevoke,
            ],
        }
    }

    /// A key made.
    pub fn created(owner: KeyOwner, row: &KeyRow) -> Self {
        let fields = serde_json::json!({
            "name": row.name, "expires": time_text(row.expires),
        });
        Self::of(owner, 0, fields)
    }

    /// A key renamed.
    pub fn renamed(owner: KeyOwner, name: &str) -> Self {
        Self::of(owner, 1, serde_json::json!({ "name": name }))
    }

    /// A key revoked.
    pub fn revoked(owner: KeyOwner) -> Self {
        Self::of(owner, 2, serde_json::json!({ "revoked": true }))
    }
}

/// What a run's job's completion becomes (Bencher's lifecycle): each
/// iteration's output (the files named by `file_paths`, else stdout) parsed
/// by the report's adapter. Parsed: the job is `processed` and the results
/// go to its report (`Move::results`); not: it is `failed` with why, and
/// its output is kept. A job without a report (`POST /v0/jobs`) stays
/// `completed`.
pub(crate) fn process(job: &JobRow, m: &mut Move) {
    let Some(adapter) = job.adapter else { return };
    if m.to != JobStatus::Completed {
        return;
    }
    let mut output = m.output.take().unwrap_or_else(|| serde_json::json!({}));
    match parse(job, adapter, &output) {
        Ok(results) => {
            m.to = JobStatus::Processed;
            m.results = Some(results);
        }
        Err(error) => {
            m.to = JobStatus::Failed;
            output["error"] = serde_json::Value::String(error);
        }
    }
    m.output = Some(output);
}

fn parse(
    job: &JobRow,
    adapter: bmf::Adapter,
    output: &serde_json::Value,
) -> Result<Vec<Vec<bmf::BenchmarkResult>>, String> {
    let file_paths = job.config.get("file_paths").is_some_and(|v| !v.is_null());
    let iterations = output
        .get("results")
        .and_then(|r| r.as_array())
        .filter(|r| !r.is_empty())
        .ok_or("the job reported no iteration's output to parse")?;
    let results = iterations
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let stdout = it.get("stdout").and_then(|s| s.as_str());
            let files: Option<std::collections::BTreeMap<String, String>> = it
                .get("output")
                .and_then(|o| serde_json::from_value(o.clone()).ok());
            bmf::parse_iteration(adapter, stdout, files.as_ref(), file_paths)
                .map_err(|e| format!("iteration {} of {}: {e}", i + 1, iterations.len()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    bmf::check_size(&results)?;
    Ok(results)
}
