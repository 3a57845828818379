//! The handlers of project keys and user keys: who may manage whose keys
//! (checked before any lookup), a new key shown once, and each key's view,
//! rename and revocation by its path.

use chrono::Duration;
use dropshot::{HttpError, HttpResponseDeleted, HttpResponseOk};

use super::support::{created, page};
use crate::api::{Created, ProjectKeysPage, UserKeysPage};
use crate::auth::{self, Admin, PROJECT_KEY_PREFIX, Principal, USER_KEY_PREFIX};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::server::Context;
use crate::store::{KeyOwner, KeyRef, KeyRename, KeyRow, NewKey, Projects};
use crate::types::*;
use crate::validate::Ref;

/// A key's lifetime when none is asked for: Bencher's (over 128 years).
const KEY_TTL_DEFAULT_SECONDS: i64 = u32::MAX as i64;

/// A new key of `owner`: the key (shown once) and its row.
async fn new_key(
    cx: &Context,
    owner: KeyOwner,
    body: JsonNewKey,
    actor: &crate::store::Actor,
) -> Result<(String, crate::store::KeyRow), HttpError> {
    let prefix = match owner {
        KeyOwner::Project(_) => PROJECT_KEY_PREFIX,
        KeyOwner::User(_) => USER_KEY_PREFIX,
    };
    let key = auth::new_key(prefix);
    let ttl = body
        .ttl
        .map_or(KEY_TTL_DEFAULT_SECONDS, |t| i64::from(t.get()));
    let created = crate::store::now();
    let new = NewKey {
        owner,
        name: body.name,
        hash: auth::hash_runner_key(&key),
        created,
        expires: created + Duration::seconds(ttl),
    };
    Ok((key, cx.store.create_key(new, actor).await?))
}

/// The owner of a project's keys, for an admin.
async fn project_owner(cx: &Context, admin: &Admin, r: Ref) -> Result<KeyOwner, HttpError> {
    let _ = admin;
    Ok(KeyOwner::Project(
        cx.store.item::<Projects>(&r.into()).await?.uuid,
    ))
}

/// The owner of a user's keys, once the credential may manage them.
async fn user_owner(cx: &Context, who: &Principal, r: Ref) -> Result<KeyOwner, HttpError> {
    who.may_manage_user(&r)?;
    Ok(KeyOwner::User(cx.store.user(r).await?.uuid))
}

pub(super) async fn proj_keys_get(
    cx: &Context,
    admin: Admin,
    path: PathParams<ProjectPath>,
    query: QueryParams<KeysQuery>,
) -> Result<ProjectKeysPage, HttpError> {
    let owner = project_owner(cx, &admin, path.open(&admin)?.project).await?;
    Ok(page(cx.store.list_keys(owner, query.open(&admin)?).await?))
}

pub(super) async fn proj_key_post(
    cx: &Context,
    admin: Admin,
    path: PathParams<ProjectPath>,
    body: JsonBody<JsonNewKey>,
) -> Result<Created<JsonProjectKeyCreated>, HttpError> {
    let owner = project_owner(cx, &admin, path.open(&admin)?.project).await?;
    let (key, row) = new_key(cx, owner, body.open(&admin)?, &admin.actor()).await?;
    let created_key = JsonProjectKeyCreated {
        uuid: row.uuid,
        project: row.owner_uuid,
        name: row.name,
        key,
        creation: row.created,
        expiration: row.expires,
    };
    let path = format!("projects/{}/keys", row.owner_uuid);
    Ok(created(created_key, &path, row.uuid))
}

pub(super) async fn user_keys_get(
    cx: &Context,
    who: Principal,
    path: PathParams<UserPath>,
    query: QueryParams<KeysQuery>,
) -> Result<UserKeysPage, HttpError> {
    let owner = user_owner(cx, &who, path.open(&who)?.user).await?;
    Ok(page(cx.store.list_keys(owner, query.open(&who)?).await?))
}

pub(super) async fn user_key_post(
    cx: &Context,
    who: Principal,
    path: PathParams<UserPath>,
    body: JsonBody<JsonNewKey>,
) -> Result<Created<JsonUserKeyCreated>, HttpError> {
    let owner = user_owner(cx, &who, path.open(&who)?.user).await?;
    let (key, row) = new_key(cx, owner, body.open(&who)?, &who.actor()).await?;
    let created_key = JsonUserKeyCreated {
        uuid: row.uuid,
        user: row.owner_uuid,
        name: row.name,
        key,
        creation: row.created,
        expiration: row.expires,
    };
    let path = format!("users/{}/keys", row.owner_uuid);
    Ok(created(created_key, &path, row.uuid))
}

/// What a key's path names: its owner (checked) and the key.
pub(super) enum KeyAt {
    Project(Admin, PathParams<ProjectKeyPath>),
    User(Principal, PathParams<UserKeyPath>),
}

impl KeyAt {
    /// The key the path names, once the credential may manage it, and who
    /// acts.
    async fn open(self, cx: &Context) -> Result<(KeyRef, crate::store::Actor), HttpError> {
        let (owner, uuid, actor) = match self {
            Self::Project(admin, path) => {
                let p = path.open(&admin)?;
                let owner = project_owner(cx, &admin, p.project).await?;
                (owner, p.key, admin.actor())
            }
            Self::User(who, path) => {
                let p = path.open(&who)?;
                (user_owner(cx, &who, p.user).await?, p.key, who.actor())
            }
        };
        Ok((KeyRef { owner, uuid }, actor))
    }
}

pub(super) async fn key_get<T: From<KeyRow> + View>(
    cx: &Context,
    at: KeyAt,
) -> Result<HttpResponseOk<T>, HttpError> {
    let (key, _) = at.open(cx).await?;
    Ok(HttpResponseOk(cx.store.key(key).await?.into()))
}

pub(super) async fn key_patch<T: From<KeyRow> + View>(
    cx: &Context,
    at: KeyAt,
    body: JsonBody<JsonUpdateKey>,
) -> Result<HttpResponseOk<T>, HttpError> {
    // The path's owner first (its 403), then the body (its 400).
    let (key, actor) = at.open(cx).await?;
    let row = match body.open(&key.owner)?.name {
        Some(name) => cx.store.rename_key(KeyRename { key, name }, &actor).await?,
        None => cx.store.key(key).await?,
    };
    Ok(HttpResponseOk(row.into()))
}

pub(super) async fn key_delete(cx: &Context, at: KeyAt) -> Result<HttpResponseDeleted, HttpError> {
    let (key, actor) = at.open(cx).await?;
    cx.store.revoke_key(key, &actor).await?;
    Ok(HttpResponseDeleted())
}

/// A view dropshot can answer with.
pub(super) trait View:
    serde::Serialize + schemars::JsonSchema + Send + Sync + 'static
{
}

impl<T: serde::Serialize + schemars::JsonSchema + Send + Sync + 'static> View for T {}
