//! TEMPORARY: the submitter side is not on PostgreSQL yet (being written);
//! every operation answers an error. Replaced by pg/projects.rs, keys.rs
//! and reports.rs.

use uuid::Uuid;

use super::PgStore;
use super::item::PgItem;
use crate::store::error::StoreError;
use crate::store::model::{
    Actor, KeyHolder, KeyOwner, KeyQuery, KeyRow, NewKey, NewProject, NewRun, OrgRow, ProjectRef,
    ProjectRow, Projects, ReportQuery, ReportRow, RunnerKeyHash, UserRow,
};
use crate::store::operations::{KeyOps, ProjectOps, ReportOps};
use crate::validate::{ListQuery, Ref, ResourceName};

fn todo() -> StoreError {
    StoreError::Task("not on PostgreSQL yet".into())
}

impl PgItem for Projects {
    const COLUMNS: &'static str = "uuid, name, slug, url, visibility, archived, created, modified";
}

impl ProjectOps for PgStore {
    async fn organization(&self) -> Result<OrgRow, StoreError> {
        Err(todo())
    }
    async fn list_projects(&self, _q: ListQuery) -> Result<(Vec<ProjectRow>, u64), StoreError> {
        Err(todo())
    }
    async fn create_project(&self, _n: NewProject, _a: &Actor) -> Result<ProjectRow, StoreError> {
        Err(todo())
    }
    async fn delete_project(&self, _r: ProjectRef, _a: &Actor) -> Result<(), StoreError> {
        Err(todo())
    }
    async fn user(&self, _r: Ref) -> Result<UserRow, StoreError> {
        Err(todo())
    }
}

impl KeyOps for PgStore {
    async fn create_key(&self, _n: NewKey, _a: &Actor) -> Result<KeyRow, StoreError> {
        Err(todo())
    }
    async fn list_keys(&self, _o: KeyOwner, _q: KeyQuery) -> Result<(Vec<KeyRow>, u64), StoreError> {
        Err(todo())
    }
    async fn key(&self, _o: KeyOwner, _u: Uuid) -> Result<KeyRow, StoreError> {
        Err(todo())
    }
    async fn rename_key(
        &self,
        _o: KeyOwner,
        _u: Uuid,
        _n: ResourceName,
        _a: &Actor,
    ) -> Result<KeyRow, StoreError> {
        Err(todo())
    }
    async fn revoke_key(&self, _o: KeyOwner, _u: Uuid, _a: &Actor) -> Result<(), StoreError> {
        Err(todo())
    }
    async fn key_holder(&self, _h: RunnerKeyHash) -> Result<Option<KeyHolder>, StoreError> {
        Ok(None)
    }
}

impl ReportOps for PgStore {
    async fn create_run(&self, _r: NewRun, _a: &Actor) -> Result<ReportRow, StoreError> {
        Err(todo())
    }
    async fn report(&self, _p: ProjectRef, _u: Uuid) -> Result<ReportRow, StoreError> {
        Err(todo())
    }
    async fn list_reports(
        &self,
        _p: ProjectRef,
        _q: ReportQuery,
    ) -> Result<(Vec<ReportRow>, u64), StoreError> {
        Err(todo())
    }
}
