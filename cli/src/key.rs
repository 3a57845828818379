//! `bencher project key ...` and `bencher user key ...`: one function over
//! both kinds of key, through [`Keys`]; each subcommand is one SDK call
//! (`list --all`, one per page).

use runners_sdk::Client;
use runners_sdk::builder::{ProjKeysGet, UserKeysGet};
use runners_sdk::types::{JsonNewKey, JsonUpdateKey, ResourceId};

use crate::list::{Named, Paged, named, paged};
use crate::parser::{
    CliKey, CliKeyCreate, CliKeyList, CliKeyOwner, CliKeyRef, CliKeyUpdate, CliOwner,
    CliProjectKeys, CliUserKeys,
};
use crate::{Output, Result};

/// The SDK's calls on one kind of key, each given the keys' owner (a
/// project's or a user's slug or UUID) and the key's UUID.
pub trait Keys: CliKeyOwner {
    /// The builder of the key list.
    type List<'a>: Paged<Sort = Self::Sort> + Named;

    /// The list of `owner`'s keys, revoked ones (only) if asked.
    fn list(client: &Client, owner: ResourceId, revoked: bool) -> Self::List<'_>;
    async fn create(client: &Client, owner: ResourceId, body: JsonNewKey) -> Result<Output>;
    async fn view(client: &Client, owner: ResourceId, key: String) -> Result<Output>;
    async fn update(
        client: &Client,
        owner: ResourceId,
        key: String,
        body: JsonUpdateKey,
    ) -> Result<Output>;
    async fn revoke(client: &Client, owner: ResourceId, key: String) -> Result<()>;
}

/// Implements [`Keys`] with the SDK's operations of one kind of key, whose
/// owner is the path parameter `$owner`.
macro_rules! keys {
    ($kind:ty, $builder:ident, $owner:ident:
        $list:ident, $create:ident, $view:ident, $update:ident, $revoke:ident) => {
        impl Keys for $kind {
            type List<'a> = $builder<'a>;

            fn list(client: &Client, owner: ResourceId, revoked: bool) -> $builder<'_> {
                let request = client.$list().$owner(owner);
                if revoked {
                    request.revoked(true)
                } else {
                    request
                }
            }
            async fn create(
                client: &Client,
                owner: ResourceId,
                body: JsonNewKey,
            ) -> Result<Output> {
                let request = client.$create().$owner(owner).body(body);
                Ok(Output::one(request.send().await?))
            }
            async fn view(client: &Client, owner: ResourceId, key: String) -> Result<Output> {
                let request = client.$view().$owner(owner).key(key);
                Ok(Output::one(request.send().await?))
            }
            async fn update(
                client: &Client,
                owner: ResourceId,
                key: String,
                body: JsonUpdateKey,
            ) -> Result<Output> {
                let request = client.$update().$owner(owner).key(key).body(body);
                Ok(Output::one(request.send().await?))
            }
            async fn revoke(client: &Client, owner: ResourceId, key: String) -> Result<()> {
                client.$revoke().$owner(owner).key(key).send().await?;
                Ok(())
            }
        }
    };
}

keys!(CliProjectKeys, ProjKeysGet, project:
    proj_keys_get, proj_key_post, proj_key_get, proj_key_patch, proj_key_delete);
keys!(CliUserKeys, UserKeysGet, user:
    user_keys_get, user_key_post, user_key_get, user_key_patch, user_key_delete);

pub async fn run<K: Keys>(client: &Client, command: CliKey<K>) -> Result<Output> {
    match command {
        CliKey::List(list) => {
            let CliKeyList {
                owner: CliOwner { owner, .. },
                name,
                search,
                revoked,
                pagination,
            } = &list;
            let new = || {
                named(
                    K::list(client, owner.clone(), *revoked),
                    name.as_ref(),
                    search.as_ref(),
                )
            };
            paged(new, pagination).await
        }
        CliKey::Create(CliKeyCreate { owner, name, ttl }) => {
            K::create(client, owner.owner, JsonNewKey { name, ttl }).await
        }
        CliKey::View(CliKeyRef { owner, uuid }) => K::view(client, owner.owner, uuid).await,
        CliKey::Update(CliKeyUpdate { key, name }) => {
            let CliKeyRef { owner, uuid } = key;
            K::update(client, owner.owner, uuid, JsonUpdateKey { name }).await
        }
        CliKey::Revoke(CliKeyRef { owner, uuid }) => {
            K::revoke(client, owner.owner, uuid).await?;
            Ok(Output::Deleted)
        }
    }
}
