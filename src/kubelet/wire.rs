//! The kubelet's credential provider exec API, `credentialprovider.kubelet.k8s.io/v1`:
//! one [`CredentialProviderRequest`] on stdin, one [`CredentialProviderResponse`]
//! on stdout.
//!
//! Field names, casing, optionality and the duration format follow the
//! published Go types, read in kubernetes/kubelet at commit
//! 63b3249724f7d89a8aa48f9acb3811f193c9aa68 (July 2026; identical in the
//! v0.33.0 and v0.34.0 tags for these fields):
//! `pkg/apis/credentialprovider/v1/types.go`, and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/duration.go` for `metav1.Duration`
//! (a JSON string, Go's `time.Duration.String()` on output and
//! `time.ParseDuration` on input). The kubelet side is
//! kubernetes/kubernetes `pkg/credentialprovider/plugin/plugin.go`: it
//! encodes the request with apimachinery's JSON serializer, so `kind` comes
//! before `apiVersion`, map keys are sorted, `<`, `>` and `&` are escaped as
//! `\u003c`…, and the document ends with a newline; it decodes the response
//! with a strict, case-sensitive decoder after checking that `apiVersion`
//! equals the configured one, so the response carries exactly the fields
//! below and nothing else.
//!
//! The request is read leniently (fields a later kubelet adds are ignored,
//! so a kubelet upgrade cannot break pulls), the response is written
//! exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::json::JsonError;
use crate::secret::Secret;

/// The API group and version this helper speaks, and the one the docs
/// configure.
pub const API_VERSION_V1: &str = "credentialprovider.kubelet.k8s.io/v1";
/// Every version the kubelet may send (its `apiVersions` table). The
/// response shape is the same in all three; only v1 carries the service
/// account fields, and the response echoes whichever was sent.
pub const API_VERSIONS: [&str; 3] = [
    API_VERSION_V1,
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];
/// `kind` of the request.
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
/// `kind` of the response.
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";

/// What the kubelet sends: the image being pulled and, since Kubernetes
/// 1.33 when `tokenAttributes` is configured, the pod's service account
/// token and the annotations of its service account that the config names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderRequest {
    /// Echoed in the response; one of [`API_VERSIONS`].
    pub api_version: String,
    /// Always [`REQUEST_KIND`].
    pub kind: String,
    /// The repository being pulled, as the kubelet names it: normalized,
    /// without tag or digest (`docker.io/library/nginx`), see
    /// [`super::image`].
    pub image: String,
    /// The pod's service account token for the configured audience; absent
    /// unless `tokenAttributes` is configured (Go's `omitempty`).
    #[serde(default)]
    service_account_token: Option<Secret>,
    /// The service account's annotations named by
    /// `requiredServiceAccountAnnotationKeys` and
    /// `optionalServiceAccountAnnotationKeys`; absent when there are none.
    #[serde(default)]
    pub service_account_annotations: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for CredentialProviderRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialProviderRequest")
            .field("api_version", &self.api_version)
            .field("image", &self.image)
            .field("service_account_token", &self.service_account_token.as_ref().map(Secret::fingerprint))
            .field("service_account_annotations", &self.service_account_annotations)
            .finish()
    }
}

/// Why stdin is not a request this helper can answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Not JSON, not an object, or a field of the wrong type. The message
    /// quotes no value: the token may be anywhere in the input.
    #[error("stdin is not a CredentialProviderRequest: {0}")]
    Json(#[from] JsonError),
    /// A group version the kubelet does not use; the response could not
    /// echo it in a form the kubelet accepts.
    #[error(
        "apiVersion {0:?} is not one of credentialprovider.kubelet.k8s.io/v1, v1beta1 or v1alpha1; set \
         apiVersion: credentialprovider.kubelet.k8s.io/v1 in the CredentialProviderConfig"
    )]
    ApiVersion(String),
    /// Some other object.
    #[error("kind {0:?} is not CredentialProviderRequest")]
    Kind(String),
}

impl CredentialProviderRequest {
    /// Parses the kubelet's JSON.
    ///
    /// # Errors
    /// Not a `CredentialProviderRequest` of a known version.
    pub fn parse(bytes: &[u8]) -> Result<CredentialProviderRequest, RequestError> {
        let request: CredentialProviderRequest = crate::json::from_object_slice(bytes)?;
        if !API_VERSIONS.contains(&request.api_version.as_str()) {
            return Err(RequestError::ApiVersion(crate::redact::bounded(&request.api_version, 80)));
        }
        if request.kind != REQUEST_KIND {
            return Err(RequestError::Kind(crate::redact::bounded(&request.kind, 80)));
        }
        Ok(request)
    }

    /// The pod's service account token, if the kubelet sent one (an empty
    /// string is none).
    pub fn service_account_token(&self) -> Option<&Secret> {
        self.service_account_token.as_ref().filter(|t| !t.is_empty())
    }
}

/// How the kubelet keys its in-memory cache of a response (Go's
/// `PluginCacheKeyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CacheKeyType {
    /// Per image (registry, port and path, no tag or digest): for a token
    /// that is good for the image's repository only.
    Image,
    /// Per registry (host and port): for a token good for the whole
    /// registry.
    Registry,
}

/// A `metav1.Duration`: JSON as Go's `time.Duration.String()` writes it
/// (`"0s"`, `"4m0s"`, `"1h0m0s"`, `"1.5s"`, `"300ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// Go's `time.Duration.String()`. Go counts nanoseconds in an `i64`,
    /// so longer durations are written as its maximum (about 292 years).
    pub fn to_go_string(self) -> String {
        let nanos = u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX).min(i64::MAX as u64);
        if nanos == 0 {
            return "0s".to_owned();
        }
        if nanos < 1_000_000_000 {
            // Below a second Go switches to the largest unit that keeps an
            // integer part: ns, µs (U+00B5) or ms.
            let (unit, scale) = match nanos {
                n if n < 1_000 => ("ns", 1),
                n if n < 1_000_000 => ("\u{b5}s", 1_000),
                _ => ("ms", 1_000_000),
            };
            return format!("{}{}{unit}", nanos / scale, fraction(nanos % scale, scale));
        }
        let (secs, frac) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
        let seconds = format!("{}{}s", secs % 60, fraction(frac, 1_000_000_000));
        match (secs / 3600, secs / 60 % 60) {
            (0, 0) => seconds,
            (0, m) => format!("{m}m{seconds}"),
            (h, m) => format!("{h}h{m}m{seconds}"),
        }
    }
}

/// `.` and the digits of `frac / scale` without trailing zeros; empty for 0.
fn fraction(frac: u64, scale: u64) -> String {
    if frac == 0 {
        return String::new();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!(".{}", digits.trim_end_matches('0'))
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_go_string())
    }
}

/// One credential of the response (Go's `AuthConfig`).
#[derive(Debug)]
pub struct AuthConfig {
    /// The username, e.g. `oauth2accesstoken`.
    pub username: String,
    /// The exchanged token.
    pub password: Secret,
}

impl Serialize for AuthConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("AuthConfig", 2)?;
        out.serialize_field("username", &self.username)?;
        // The one place a token leaves for the kubelet.
        out.serialize_field("password", self.password.expose())?;
        out.end()
    }
}

/// What the helper answers: credentials for the image, keyed by the
/// registry or repository they cover, and how long the kubelet may keep
/// them.
#[derive(Debug)]
pub struct CredentialProviderResponse {
    api_version: String,
    cache_key_type: CacheKeyType,
    cache_duration: Option<GoDuration>,
    auth: BTreeMap<String, AuthConfig>,
}

impl CredentialProviderResponse {
    /// A response in `api_version` (the request's). `cache_duration`
    /// `None` leaves the kubelet's `defaultCacheDuration` in force; zero
    /// tells it not to cache at all.
    pub fn new(
        api_version: &str,
        cache_key_type: CacheKeyType,
        cache_duration: Option<Duration>,
        auth: BTreeMap<String, AuthConfig>,
    ) -> CredentialProviderResponse {
        CredentialProviderResponse {
            api_version: api_version.to_owned(),
            cache_key_type,
            cache_duration: cache_duration.map(GoDuration),
            auth,
        }
    }

    /// The JSON document and a newline, as written to stdout.
    pub fn to_json_line(&self) -> String {
        // Serializing strings and maps of strings cannot fail.
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// How the kubelet keys its cache of this response.
    #[cfg(test)]
    pub fn cache_key_type(&self) -> CacheKeyType {
        self.cache_key_type
    }

    /// The credentials, by the key the kubelet matches images against.
    #[cfg(test)]
    pub fn auth(&self) -> &BTreeMap<String, AuthConfig> {
        &self.auth
    }
}

impl Serialize for CredentialProviderResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Only the fields the kubelet's strict decoder knows; the optional
        // ones left out rather than null, as Go's `omitempty` does.
        let mut out = s.serialize_struct("CredentialProviderResponse", 5)?;
        out.serialize_field("apiVersion", &self.api_version)?;
        out.serialize_field("kind", RESPONSE_KIND)?;
        out.serialize_field("cacheKeyType", &self.cache_key_type)?;
        if let Some(duration) = &self.cache_duration {
            out.serialize_field("cacheDuration", duration)?;
        }
        if !self.auth.is_empty() {
            out.serialize_field("auth", &self.auth)?;
        }
        out.end()
    }
}
