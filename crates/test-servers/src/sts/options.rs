//! What a test sets and reads on the STS: its options, the faults it can
//! inject, and the requests it records.

use super::TOKEN_TYPE_JWT;

/// Which client authentication methods the server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic with form-urlencoded id and secret (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` form fields (`client_secret_post`).
    Post,
    Either,
}

#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub id: String,
    pub secret: String,
    pub method: ClientAuthMethod,
}

/// How the access token's `aud` claim is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudienceClaim {
    /// A JSON string for one audience, an array for several.
    Auto,
    /// Always a string: the first audience only.
    String,
    /// Always an array.
    Array,
}

/// A client that authenticates with `private_key_jwt` (RFC 7523 2.2):
/// its assertions are verified against `jwks`.
#[derive(Clone, Debug)]
pub struct AssertionClient {
    pub id: String,
    /// The client's public keys, a JWK Set (`{"keys": [...]}`).
    pub jwks: serde_json::Value,
    /// `aud` values accepted; empty: the token endpoint's URL only.
    pub audiences: Vec<String>,
    /// How far ahead of now an assertion's `exp` may be.
    pub max_lifetime_secs: i64,
}

impl AssertionClient {
    pub fn new(id: &str, jwks: serde_json::Value) -> AssertionClient {
        AssertionClient { id: id.to_string(), jwks, audiences: Vec::new(), max_lifetime_secs: 300 }
    }
}

/// A client that authenticates with a TLS client certificate (RFC 8705):
/// the certificate the mutual-TLS front saw must be this one. Whether the
/// chain is trusted (tls_client_auth) or self-signed is the front's
/// [`crate::sts::ClientCertTrust`].
#[derive(Clone, Debug)]
pub struct TlsClient {
    pub id: String,
    /// The registered certificate, DER.
    pub certificate_der: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct StsOptions {
    /// `iss` of issued access tokens.
    pub issuer: String,
    /// The only `subject_token_type` accepted.
    pub subject_token_type: String,
    /// Client credentials to demand; `None` accepts any or no client.
    pub client: Option<ClientCredentials>,
    /// When set, an `audience` outside this list is `invalid_target`.
    pub allowed_audiences: Option<Vec<String>>,
    /// `aud` claim when the request names no audience; else it is omitted.
    pub default_audience: Option<String>,
    pub audience_claim: AudienceClaim,
    /// `expires_in`, and the JWT lifetime unless `jwt_lifetime_secs` is set.
    pub lifetime_secs: i64,
    /// A JWT `exp` different from `expires_in`, to test "the earlier of".
    pub jwt_lifetime_secs: Option<i64>,
    /// Whether the response carries `expires_in` at all.
    pub send_expires_in: bool,
    /// Issue opaque (non-JWT) access tokens.
    pub opaque_tokens: bool,
    /// `token_type` of the response: "Bearer", or "N_A" for non-access tokens.
    pub token_type: String,
    /// The bearer token `/github-oidc` demands (ACTIONS_ID_TOKEN_REQUEST_TOKEN).
    pub oidc_request_token: String,
    /// `sub` of the ID tokens `/github-oidc` hands out.
    pub oidc_subject: String,
    /// Demand `private_key_jwt` from this client (instead of `client`).
    pub assertion_client: Option<AssertionClient>,
    /// Demand a TLS client certificate from this client (instead of
    /// `client`); only meaningful behind [`crate::sts::Sts::start_mtls`].
    pub tls_client: Option<TlsClient>,
    /// Demand an actor token (RFC 8693 2.1), which must then be one of the
    /// built-in IdP's JWTs; without it one is still verified if sent.
    pub require_actor: bool,
    /// A real provider's documented request shape to enforce as well.
    pub shape: Option<super::Shape>,
}

impl Default for StsOptions {
    fn default() -> Self {
        StsOptions {
            issuer: "local-sts".to_string(),
            subject_token_type: TOKEN_TYPE_JWT.to_string(),
            client: None,
            allowed_audiences: None,
            default_audience: None,
            audience_claim: AudienceClaim::Auto,
            lifetime_secs: 3600,
            jwt_lifetime_secs: None,
            send_expires_in: true,
            opaque_tokens: false,
            token_type: "Bearer".to_string(),
            oidc_request_token: "local-actions-request-token".to_string(),
            oidc_subject: "repo:octo/app:ref:refs/heads/main".to_string(),
            assertion_client: None,
            tls_client: None,
            require_actor: false,
            shape: None,
        }
    }
}

/// A misbehaviour of `POST /token`, injected at runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    Status500,
    /// 429 with `Retry-After`.
    TooMany {
        retry_after_secs: u64,
    },
    /// Sleep, then answer normally: longer than the client's timeout.
    Hang {
        secs: u64,
    },
    /// 200 with a body that is not JSON.
    MalformedJson,
    InvalidGrant,
    InvalidTarget,
    /// 307 to another URL.
    Redirect {
        location: String,
    },
    /// The same, chunked, without a length: the client must count.
    HugeChunkedBody {
        bytes: u64,
    },
    /// 200 with this many bytes of spaces, streamed, never held in memory,
    /// with a `Content-Length` so a client can refuse before reading.
    HugeBody {
        bytes: u64,
    },
    /// Answer normally but late, so concurrent clients overlap.
    Delay {
        millis: u64,
    },
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// The urlencoded body in order, repeated keys kept; empty if not a form.
    pub form: Vec<(String, String)>,
}

impl Recorded {
    /// Every value of a form field, in order.
    pub fn form_values(&self, key: &str) -> Vec<&str> {
        values(&self.form, key)
    }
    pub fn form_value(&self, key: &str) -> Option<&str> {
        self.form_values(key).into_iter().next()
    }
    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }
}

pub(crate) fn values<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}
