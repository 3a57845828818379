//! The submitter side's wire views, made from the store's rows: projects,
//! keys and reports (Bencher's shapes), and a project's change set.

use uuid::Uuid;

use crate::store::model::{
    KeyRow, NameRow, ProjectChanges, ProjectRow, ReportRow, StoredResult, UserRow, Visibility,
};
use crate::types::{
    self as wire, JsonAlertCounts, JsonBranch, JsonHead, JsonIterationCounts, JsonMeasure,
    JsonMetric, JsonProject, JsonProjectKey, JsonPubUser, JsonReport, JsonReportCounts,
    JsonReportMeasure, JsonReportResult, JsonTestbed, JsonUpdateProject, JsonUserKey,
};

impl From<Visibility> for wire::Visibility {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => Self::Public,
            Visibility::Private => Self::Private,
        }
    }
}

impl From<wire::Visibility> for Visibility {
    fn from(v: wire::Visibility) -> Self {
        match v {
            wire::Visibility::Public => Self::Public,
            wire::Visibility::Private => Self::Private,
        }
    }
}

/// A project as Bencher shows it, in organization `org`.
pub fn project(row: ProjectRow, org: Uuid) -> JsonProject {
    JsonProject {
        uuid: row.uuid,
        organization: org,
        name: row.name,
        slug: row.slug,
        url: row.url,
        visibility: row.visibility.into(),
        claimed: Some(row.created),
        created: row.created,
        modified: row.modified,
    }
}

impl From<JsonUpdateProject> for ProjectChanges {
    fn from(u: JsonUpdateProject) -> Self {
        Self {
            name: u.name,
            slug: u.slug,
            archived: None,
            url: u.url.map(|url| url.map(String::from)),
            visibility: u.visibility.map(Into::into),
        }
    }
}

impl From<KeyRow> for JsonProjectKey {
    fn from(k: KeyRow) -> Self {
        Self {
            uuid: k.uuid,
            project: k.owner_uuid,
            name: k.name,
            creator: k.creator,
            creation: k.created,
            expiration: k.expires,
            revoked: k.revoked,
        }
    }
}

impl From<KeyRow> for JsonUserKey {
    fn from(k: KeyRow) -> Self {
        Self {
            uuid: k.uuid,
            user: k.owner_uuid,
            name: k.name,
            creation: k.created,
            expiration: k.expires,
            revoked: k.revoked,
        }
    }
}

/// A named thing of project `project` as Bencher's testbed (and benchmark).
fn named(n: &NameRow, project: Uuid) -> JsonTestbed {
    JsonTestbed {
        uuid: n.uuid,
        project,
        name: n.name.clone(),
        slug: n.slug.clone(),
        created: n.created,
        modified: n.created,
        archived: None,
    }
}

fn user(u: UserRow) -> JsonPubUser {
    JsonPubUser {
        uuid: u.uuid,
        slug: u.name.clone(),
        name: u.name,
    }
}

fn results(rows: &[Vec<StoredResult>], project: Uuid) -> Vec<Vec<JsonReportResult>> {
    rows.iter()
        .enumerate()
        .map(|(i, iteration)| {
            iteration
                .iter()
                .map(|r| JsonReportResult {
                    iteration: u32::try_from(i).unwrap_or(u32::MAX),
                    benchmark: named(&r.benchmark, project),
                    measures: r
                        .measures
                        .iter()
                        .map(|m| JsonReportMeasure {
                            measure: JsonMeasure {
                                uuid: m.measure.uuid,
                                project,
                                name: m.measure.name.clone(),
                                slug: m.measure.slug.clone(),
                                units: m.measure.units.clone().unwrap_or_default(),
                                created: m.measure.created,
                                modified: m.measure.created,
                                archived: None,
                            },
                            metric: JsonMetric {
                                uuid: m.metric,
                                value: m.value,
                                lower_value: m.lower_value,
                                upper_value: m.upper_value,
                            },
                        })
                        .collect(),
                })
                .collect()
        })
        .collect()
}

/// A report as Bencher shows it, in organization `org`.
pub fn report(row: ReportRow, org: Uuid) -> JsonReport {
    let p = row.project.uuid;
    let results = results(row.results.as_deref().unwrap_or_default(), p);
    let counts = JsonReportCounts {
        alerts: JsonAlertCounts {
            active: 0,
            total: 0,
        },
        results: results
            .iter()
            .map(|it| {
                let measures: std::collections::BTreeSet<Uuid> = it
                    .iter()
                    .flat_map(|r| r.measures.iter().map(|m| m.measure.uuid))
                    .collect();
                JsonIterationCounts {
                    benchmarks: u32::try_from(it.len()).unwrap_or(u32::MAX),
                    measures: u32::try_from(measures.len()).unwrap_or(u32::MAX),
                }
            })
            .collect(),
    };
    let branch = JsonBranch {
        uuid: row.branch.uuid,
        project: p,
        name: row.branch.name.clone(),
        slug: row.branch.slug.clone(),
        head: JsonHead {
            uuid: Uuid::from_u128(row.branch.uuid.as_u128() ^ 1),
            created: row.branch.created,
        },
        created: row.branch.created,
        modified: row.branch.created,
        archived: None,
    };
    JsonReport {
        uuid: row.uuid,
        user: row.user.map(user),
        testbed: named(&row.testbed, p),
        project: project(row.project, org),
        branch,
        start_time: row.start_time,
        end_time: row.end_time,
        adapter: match row.adapter {
            crate::bmf::Adapter::Json => wire::Adapter::Json,
            crate::bmf::Adapter::Magic => wire::Adapter::Magic,
        },
        results,
        alerts: Vec::new(),
        counts,
        job: row.job,
        created: row.created,
    }
}
