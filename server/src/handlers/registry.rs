//! Docker's token endpoint: a registry token granting what the credential
//! may do of the scopes asked for (`auth::grant` decides).

use dropshot::{HttpError, HttpResponseOk};

use crate::auth::{self, REGISTRY_SERVICE};
use crate::credential::RegistryCredential;
use crate::extract::RawQuery;
use crate::server::Context;
use crate::types::{JsonOciToken, OciTokenQuery};

pub(super) async fn token(
    cx: &Context,
    who: RegistryCredential,
    query: RawQuery<OciTokenQuery>,
) -> Result<HttpResponseOk<JsonOciToken>, HttpError> {
    let scopes = OciTokenQuery::parse(&query.open(&who), REGISTRY_SERVICE)?;
    let (subject, access) = auth::grant(&cx.store, who.0.as_ref(), &scopes).await?;
    let minted = cx.channel.oci.mint(subject, access).await?;
    Ok(HttpResponseOk(JsonOciToken {
        access_token: minted.token.clone(),
        token: minted.token,
        expires_in: minted.expires_in,
        issued_at: minted.issued,
    }))
}
