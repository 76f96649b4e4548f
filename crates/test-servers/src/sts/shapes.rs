//! Real providers' documented request shapes, which the STS can enforce on
//! top of RFC 8693 so that the recipes of docs/providers.md are tested
//! against what each provider asks for, not only against what this
//! project's own STS accepts. Each check names its source; a request
//! outside the shape is `invalid_request` with the reason.
//!
//! - Google Cloud Security Token Service, `POST https://sts.googleapis.com/v1/token`
//!   (cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token): no
//!   `Authorization` header ("using the header can cause the request to
//!   fail"); `audience` the full resource name of a workload identity pool
//!   provider; `scope` required for an external credential;
//!   `requested_token_type` required, an access token; `subject_token_type`
//!   a JWT or ID token for OIDC credentials; no client credentials.
//! - Keycloak standard token exchange (keycloak.org/securing-apps/token-exchange):
//!   a confidential client authenticates; the subject is a Keycloak access
//!   token (`subject_token_type` access_token); `audience` names target
//!   clients by client id; `requested_token_type`, if sent, an access token
//!   (or refresh token); no actor token.
//! - Okta token exchange with private_key_jwt
//!   (developer.okta.com/docs/guides/build-self-signed-jwt): the client
//!   authenticates with an assertion (checked by [`super::AssertionClient`]
//!   with the token endpoint as `aud` and at most an hour of life); the
//!   exchange names an `audience` and a `scope`; the subject is an access
//!   token.

use super::token::{OAuthError, oauth_error};
use super::{Recorded, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT, values};

/// `urn:ietf:params:oauth:token-type:id_token`.
const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// `urn:ietf:params:oauth:token-type:refresh_token`.
const TOKEN_TYPE_REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";

/// A provider whose documented request the STS enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Google Cloud's Security Token Service (workload identity federation).
    GoogleSts,
    /// Keycloak's standard token exchange (V2).
    Keycloak,
    /// An Okta (or Auth0-style) authorization server, client by private_key_jwt.
    OktaPrivateKeyJwt,
}

fn bad(why: impl Into<String>) -> OAuthError {
    oauth_error("invalid_request", why)
}

pub(super) fn check(shape: Shape, rec: &Recorded, form: &[(String, String)]) -> Result<(), OAuthError> {
    let all = |key: &str| values(form, key);
    let single = |key: &str| all(key).into_iter().next();
    match shape {
        Shape::GoogleSts => {
            if rec.header("Authorization").is_some() {
                return Err(bad("do not send the Authorization header to this method"));
            }
            for field in ["client_id", "client_secret", "client_assertion", "resource", "actor_token"] {
                if single(field).is_some() {
                    return Err(bad(format!("{field} is not a parameter of this method")));
                }
            }
            let audience = all("audience");
            let [audience] = audience.as_slice() else {
                return Err(bad("exactly one audience is required"));
            };
            if !is_workload_identity_provider(audience) {
                return Err(bad(format!(
                    "audience {audience} is not the full resource name of a workload identity pool provider"
                )));
            }
            if single("scope").is_none_or(str::is_empty) {
                return Err(bad("scope is required when exchanging an external credential"));
            }
            if single("requested_token_type") != Some(TOKEN_TYPE_ACCESS_TOKEN) {
                return Err(bad("requested_token_type is required and must be an access token"));
            }
            match single("subject_token_type") {
                Some(TOKEN_TYPE_JWT | TOKEN_TYPE_ID_TOKEN) => Ok(()),
                other => Err(bad(format!("subject_token_type {other:?} is not an OIDC token type"))),
            }
        }
        Shape::Keycloak => {
            let authenticated = rec.header("Authorization").is_some()
                || single("client_secret").is_some()
                || single("client_assertion").is_some();
            if !authenticated {
                return Err(oauth_error("invalid_client", "public clients may not exchange tokens"));
            }
            if single("subject_token_type") != Some(TOKEN_TYPE_ACCESS_TOKEN) {
                return Err(bad("subject_token_type must be urn:ietf:params:oauth:token-type:access_token"));
            }
            if let Some(t) = single("requested_token_type")
                && t != TOKEN_TYPE_ACCESS_TOKEN
                && t != TOKEN_TYPE_REFRESH_TOKEN
            {
                return Err(bad(format!("requested_token_type {t} is not supported")));
            }
            if let Some(a) = all("audience").into_iter().find(|a| a.contains("://")) {
                return Err(bad(format!("audience {a} is not a client id of this realm")));
            }
            if single("actor_token").is_some() {
                return Err(bad("actor_token is not supported"));
            }
            Ok(())
        }
        Shape::OktaPrivateKeyJwt => {
            if single("client_assertion").is_none() {
                return Err(oauth_error("invalid_client", "this client authenticates with private_key_jwt"));
            }
            if all("audience").is_empty() {
                return Err(bad("audience is required"));
            }
            if single("scope").is_none_or(str::is_empty) {
                return Err(bad("scope is required"));
            }
            if single("subject_token_type") != Some(TOKEN_TYPE_ACCESS_TOKEN) {
                return Err(bad("subject_token_type must be an access token"));
            }
            Ok(())
        }
    }
}

/// `//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`.
fn is_workload_identity_provider(audience: &str) -> bool {
    let Some(rest) = audience.strip_prefix("//iam.googleapis.com/projects/") else { return false };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(
        parts.as_slice(),
        [number, "locations", "global", "workloadIdentityPools", pool, "providers", provider]
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && !pool.is_empty() && !provider.is_empty()
    )
}
