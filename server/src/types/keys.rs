//! Wire types of project keys (`bencher_run_`) and user keys
//! (`bencher_user_`): Bencher v0.6.12's `JsonProjectKey`, `JsonUserKey` and
//! their `…Created` forms, made by one macro for both owners.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{JsonDirection, NameSort, time};
use crate::validate::{
    Invalid, Page, PerPage, QueryRules, Ref, ResourceName, SearchText, Validate, list_rule,
};

/// A key's view (never the key) and its view when made (with the key,
/// shown this once), for keys owned by a project or a user; each says its
/// own docs (schemars reads only literal doc comments).
macro_rules! key_views {
    (
        $(#[$view_doc:meta])* $view:ident,
        $(#[$created_doc:meta])* $created:ident,
        $(#[$owner_doc:meta])* $owner:ident,
        $(#[$key_doc:meta])* key
        $(, $(#[$m:meta])* $extra:ident: $ty:ty)* $(,)?
    ) => {
        $(#[$view_doc])*
        #[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
        pub struct $view {
            /// The key's UUID.
            pub uuid: Uuid,
            $(#[$owner_doc])*
            pub $owner: Uuid,
            /// Its name.
            pub name: String,
            $($(#[$m])* pub $extra: $ty,)*
            /// When it was made.
            #[serde(serialize_with = "time::serialize")]
            pub creation: DateTime<Utc>,
            /// When it stops working.
            #[serde(serialize_with = "time::serialize")]
            pub expiration: DateTime<Utc>,
            /// When it was revoked, or null while it is live.
            #[serde(serialize_with = "time::serialize_opt")]
            pub revoked: Option<DateTime<Utc>>,
        }

        $(#[$created_doc])*
        #[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
        pub struct $created {
            /// The key's UUID.
            pub uuid: Uuid,
            $(#[$owner_doc])*
            pub $owner: Uuid,
            /// Its name.
            pub name: String,
            $(#[$key_doc])*
            pub key: String,
            /// When it was made.
            #[serde(serialize_with = "time::serialize")]
            pub creation: DateTime<Utc>,
            /// When it stops working.
            #[serde(serialize_with = "time::serialize")]
            pub expiration: DateTime<Utc>,
        }
    };
}

key_views!(
    /// A project's key (Bencher's `JsonProjectKey`; never the key itself).
    JsonProjectKey,
    /// A project key just made, with the key: shown this once, kept only as
    /// its SHA-256 (Bencher's `JsonProjectKeyCreated`).
    JsonProjectKeyCreated,
    /// Its project's UUID.
    project,
    /// The key: `bencher_run_` and 30 letters and digits. Send it as
    /// `Authorization: Bearer <key>` (Bencher's CLI: `--key`).
    key,
    /// The user who made it.
    creator: Option<Uuid>,
);
key_views!(
    /// A user's key (Bencher's `JsonUserKey`; never the key itself).
    JsonUserKey,
    /// A user key just made, with the key: shown this once, kept only as its
    /// SHA-256 (Bencher's `JsonUserKeyCreated`).
    JsonUserKeyCreated,
    /// Its user's UUID.
    user,
    /// The key: `bencher_user_` and 30 letters and digits, with its user's
    /// rights. Send it as `Authorization: Bearer <key>`.
    key,
);

/// A new project or user key.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewKey {
    /// Its name: 1 to 64 bytes, no leading or trailing whitespace, no
    /// control characters.
    pub name: ResourceName,
    /// How long it works, in seconds (absent: Bencher's default, over 128
    /// years).
    pub ttl: Option<crate::validate::KeyTtl>,
}

/// A key's new name.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonUpdateKey {
    /// Its new name (absent: unchanged).
    pub name: Option<ResourceName>,
}

/// The path of one of a project's keys.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct ProjectKeyPath {
    /// The slug or UUID of a project.
    pub project: Ref,
    /// The key's UUID.
    pub key: Uuid,
}

/// The path of a user.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct UserPath {
    /// A user's name or UUID.
    pub user: Ref,
}

/// The path of one of a user's keys.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct UserKeyPath {
    /// A user's name or UUID.
    pub user: Ref,
    /// The key's UUID.
    pub key: Uuid,
}

name_list_query!(
    /// Query parameters of a key list.
    KeysQuery {
        /// Only keys with exactly this name.
        name,
        /// Only keys whose name or UUID contains this text, case-insensitively.
        search,
        /// `true`: only revoked keys; `false` (the default): only live ones
        /// (Bencher's).
        revoked: Option<bool>,
    }
);

impl QueryRules for KeysQuery {
    fn rule(param: &str) -> Option<&'static str> {
        match param {
            "revoked" => Some("`true` or `false`"),
            _ => list_rule(param),
        }
    }
}

impl Validate for KeysQuery {
    type Valid = crate::validate::KeyQuery;

    fn validate(self) -> Result<Self::Valid, Invalid> {
        Ok(crate::validate::KeyQuery {
            name: self.name.map(String::from),
            search: self.search.map(String::from),
            revoked: self.revoked.unwrap_or(false),
            descending: self.direction == Some(JsonDirection::Desc),
            per_page: self
                .per_page
                .map_or(crate::validate::PER_PAGE_DEFAULT, PerPage::get),
            page: self.page.map_or(1, Page::get),
        })
    }
}
