//! The front's operations of the submitter side (projects, keys, runs and
//! reports, and the keys that sign registry tokens): one line each, on whichever engine the store has, as in
//! `mod.rs`.

use uuid::Uuid;

use super::model::{
    Actor, KeyHolder, KeyOwner, KeyQuery, KeyRef, KeyRename, KeyRow, NewKey, NewProject, NewRun,
    OrgRow, ProjectRef, ProjectRow, ReportQuery, ReportRow, RunnerKeyHash, UserRow,
};
use super::model::{NewRegistryKey, RegistryKeyRow};
use super::operations::{KeyOps, ProjectOps, RegistryKeyOps, ReportOps};
use super::{Engine, Store, StoreError, pg};
use crate::validate::{ListQuery, Ref};

impl Store {
    /// The registry keys not retired, newest (the one that signs) first.
    pub async fn registry_keys(&self) -> Result<Vec<RegistryKeyRow>, StoreError> {
        on!(self, RegistryKeyOps::registry_keys())
    }

    /// Adds a new registry key, which signs from now on.
    pub async fn rotate_registry_key(
        &self,
        new: NewRegistryKey,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        on!(self, RegistryKeyOps::rotate_registry_key(new, actor))
    }

    /// Retires every registry key but the newest; their IDs.
    pub async fn retire_registry_keys(&self, actor: &Actor) -> Result<Vec<String>, StoreError> {
        on!(self, RegistryKeyOps::retire_registry_keys(actor))
    }

    /// The organization that stands for this server.
    pub async fn organization(&self) -> Result<OrgRow, StoreError> {
        on!(self, ProjectOps::organization())
    }

    /// One page of projects matching `q`, and how many match in all.
    pub async fn list_projects(&self, q: ListQuery) -> Result<(Vec<ProjectRow>, u64), StoreError> {
        on!(self, ProjectOps::list_projects(q))
    }

    /// Creates a project.
    pub async fn create_project(
        &self,
        new: NewProject,
        actor: &Actor,
    ) -> Result<ProjectRow, StoreError> {
        on!(self, ProjectOps::create_project(new, actor))
    }

    /// Deletes a project, its keys and reports (its jobs stay).
    pub async fn delete_project(&self, r: ProjectRef, actor: &Actor) -> Result<(), StoreError> {
        on!(self, ProjectOps::delete_project(r, actor))
    }

    /// A user, by UUID or name.
    pub async fn user(&self, r: Ref) -> Result<UserRow, StoreError> {
        on!(self, ProjectOps::user(r))
    }

    /// Creates a project's or a user's key (its hash only).
    pub async fn create_key(&self, new: NewKey, actor: &Actor) -> Result<KeyRow, StoreError> {
        on!(self, KeyOps::create_key(new, actor))
    }

    /// One page of `owner`'s keys, and how many match in all.
    pub async fn list_keys(
        &self,
        owner: KeyOwner,
        q: KeyQuery,
    ) -> Result<(Vec<KeyRow>, u64), StoreError> {
        on!(self, KeyOps::list_keys(owner, q))
    }

    /// One of `owner`'s keys.
    pub async fn key(&self, key: KeyRef) -> Result<KeyRow, StoreError> {
        on!(self, KeyOps::key(key))
    }

    /// Renames one of `owner`'s keys.
    pub async fn rename_key(
        &self,
        renamed: KeyRename,
        actor: &Actor,
    ) -> Result<KeyRow, StoreError> {
        on!(self, KeyOps::rename_key(renamed, actor))
    }

    /// Revokes one of `owner`'s keys.
    pub async fn revoke_key(&self, key: KeyRef, actor: &Actor) -> Result<(), StoreError> {
        on!(self, KeyOps::revoke_key(key, actor))
    }

    /// The key with this hash, and whose it is.
    pub async fn key_holder(&self, hash: RunnerKeyHash) -> Result<Option<KeyHolder>, StoreError> {
        on!(self, KeyOps::key_holder(hash))
    }

    /// Records a run (its report, and its job if it has one).
    pub async fn create_run(&self, run: NewRun, actor: &Actor) -> Result<ReportRow, StoreError> {
        on!(self, ReportOps::create_run(run, actor))
    }

    /// One report of a project.
    pub async fn report(&self, project: ProjectRef, uuid: Uuid) -> Result<ReportRow, StoreError> {
        on!(self, ReportOps::report(project, uuid))
    }

    /// One page of a project's reports, and how many match in all.
    pub async fn list_reports(
        &self,
        project: ProjectRef,
        q: ReportQuery,
    ) -> Result<(Vec<ReportRow>, u64), StoreError> {
        on!(self, ReportOps::list_reports(project, q))
    }
}
