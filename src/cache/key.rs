//! The cache key, in one place: every field that shapes an exchanged token
//! ([`KeyFields`], filled in by the plan from the config entry and the
//! request), the file stem they hash to ([`CacheKey`]), and the registry
//! prefix that lets a registry's entries be dropped without reading them.

use sha2::{Digest, Sha256};

use crate::secret::hex;

/// Everything that shapes an exchanged token; two requests share a cached
/// token only if all of these are equal.
#[derive(Debug, serde::Serialize)]
pub struct KeyFields<'a> {
    /// The config key of the exchange registry.
    pub registry_key: &'a str,
    /// The repository the token is scoped to, if the request named one.
    pub repository: Option<&'a str>,
    /// The token endpoint.
    pub endpoint: &'a str,
    /// Subject source, described.
    pub subject_source: &'a str,
    /// Subject token type.
    pub subject_token_type: &'a str,
    /// Resolved audiences.
    pub audience: &'a [String],
    /// Resolved resources.
    pub resource: &'a [String],
    /// Resolved scope.
    pub scope: Option<&'a str>,
    /// Requested token type.
    pub requested_token_type: Option<&'a str>,
    /// Client id.
    pub client_id: Option<&'a str>,
    /// The username the config sets, which `get` returns with the token.
    pub username: Option<&'a str>,
    /// The fingerprint of a subject that differs per request (a kubelet's
    /// service account token), so that pods do not evict each other.
    pub subject: Option<&'a str>,
    /// The fingerprint of the actor token (RFC 8693 delegation), for the
    /// same reason: a token issued to one actor is not another's. Left out
    /// of the key when absent, so entries without delegation keep the
    /// keys they had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<&'a str>,
}

/// A cache key: the file stem of one entry, `<registry hash>-<key hash>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    pub(super) stem: String,
}

impl CacheKey {
    /// The key for `fields`.
    pub fn new(fields: &KeyFields<'_>) -> CacheKey {
        let canonical = serde_json::to_vec(fields).unwrap_or_default();
        let digest = hex(&Sha256::digest(&canonical));
        CacheKey { stem: format!("{}-{}", registry_prefix(fields.registry_key), &digest[..32]) }
    }

    /// The file stem, for messages and tests.
    pub fn as_str(&self) -> &str {
        &self.stem
    }
}

/// The first 16 hex digits of the registry key's SHA-256: every file of a
/// registry starts with it, so its entries can be dropped without reading.
pub(super) fn registry_prefix(registry_key: &str) -> String {
    hex(&Sha256::digest(registry_key.as_bytes()))[..16].to_owned()
}

#[cfg(test)]
impl<'a> KeyFields<'a> {
    /// The fields of a plain keyring entry for `r.example`, varied only by
    /// `scope`: the key the unit tests of the cache and of login share.
    pub(crate) fn example(scope: Option<&'a str>) -> KeyFields<'a> {
        KeyFields {
            registry_key: "r.example",
            repository: None,
            endpoint: "https://sts/token",
            subject_source: "keyring",
            subject_token_type: "t",
            audience: &[],
            resource: &[],
            scope,
            requested_token_type: None,
            client_id: None,
            username: None,
            subject: None,
            actor: None,
        }
    }
}
