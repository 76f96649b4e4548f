//! The config file's shape, as serde reads it: strict (unknown fields and
//! duplicate keys are errors) and with messages in the user's words rather
//! than Rust's (`expected a whole number of seconds`, not `expected u64`).

use std::path::PathBuf;

use serde::Deserialize;

/// `urn:ietf:params:oauth:token-type:access_token`, the default subject type.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const DEFAULT_MARGIN: u64 = 60;
const DEFAULT_LIFETIME: u64 = 60;

/// Where a secret comes from: the subject token, or a client secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
#[serde(
    expecting = "an object such as {\"source\": \"keyring\"}, {\"source\": \"env\", \"var\": \"NAME\"}, \
                     {\"source\": \"file\", \"path\": \"/path\"}, {\"source\": \"command\", \"argv\": [\"prog\"]}, \
                     {\"source\": \"github-actions\"} or {\"source\": \"kubelet\"}"
)]
pub enum SourceSpec {
    /// The keyring item of this registry, put there by `login` or `store`.
    #[default]
    Keyring,
    /// An environment variable (GitLab `id_tokens`, a CI secret).
    Env {
        /// The variable's name.
        var: String,
    },
    /// A file, re-read on every use (Kubernetes projected tokens rotate).
    File {
        /// The file; relative paths are relative to the config file.
        path: PathBuf,
    },
    /// A command's trimmed stdout, with a bounded run time.
    Command {
        /// Program and arguments; no shell is involved.
        argv: Vec<String>,
        /// How long it may run (default 10 s).
        #[serde(default)]
        timeout_seconds: Option<Seconds>,
    },
    /// The GitHub Actions job's OIDC token.
    GithubActions {
        /// The `aud` to request; default: the registry entry's audience.
        #[serde(default)]
        audience: Option<String>,
    },
    /// The pod's service account token that the kubelet passes to
    /// `kubelet-credential-provider`; absent for Docker's requests.
    Kubelet,
}

impl SourceSpec {
    /// A short description for people: `keyring`, `env:VAR`, `file:/path`.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Keyring => "keyring".into(),
            SourceSpec::Env { var } => format!("env:{var}"),
            SourceSpec::File { path } => format!("file:{}", path.display()),
            SourceSpec::Command { argv, .. } => {
                format!("command:{}", argv.first().map_or("", String::as_str))
            }
            SourceSpec::GithubActions { .. } => "github-actions".into(),
            SourceSpec::Kubelet => "kubelet".into(),
        }
    }

    /// What to do when the STS rejects this source's token (`invalid_grant`):
    /// only a keyring login is renewed by logging in again.
    pub fn when_rejected(&self) -> &'static str {
        match self {
            SourceSpec::Keyring => "the STS rejected the login token: log in again with a fresh one",
            SourceSpec::Env { .. } => {
                "the STS rejected the subject token from the environment: check that it is current and issued for \
                 this STS"
            }
            SourceSpec::File { .. } => {
                "the STS rejected the subject token in the file: check that whatever writes the file keeps it \
                 current, and that it is issued for this STS"
            }
            SourceSpec::Command { .. } => {
                "the STS rejected the token the command printed: check that it prints a current token issued for \
                 this STS"
            }
            SourceSpec::GithubActions { .. } => {
                "the STS rejected the job's OIDC token: check the STS's trust policy for this repository and \
                 workflow, and the token's audience"
            }
            SourceSpec::Kubelet => {
                "the STS rejected the pod's service account token: check that it trusts the cluster's token \
                 issuer and expects the audience set in tokenAttributes.serviceAccountTokenAudience"
            }
        }
    }
}

/// A non-negative whole number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number of seconds, e.g. 60")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
        }
        d.deserialize_u64(Visitor)
    }
}

/// How the client authenticates to the token endpoint. The RFC 7591
/// names (`client_secret_basic`, `client_secret_post`) are accepted beside
/// the short ones, since providers' consoles show those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
// The variants are named for the RFCs' methods (`tls_client_auth`,
// `self_signed_tls_client_auth`), which end in the enum's own name.
#[expect(clippy::enum_variant_names)]
pub enum ClientAuth {
    /// HTTP Basic, RFC 6749 section 2.3.1 (`client_secret_basic`).
    #[default]
    #[serde(rename = "basic", alias = "client_secret_basic")]
    Basic,
    /// `client_id` and `client_secret` as form fields (`client_secret_post`).
    #[serde(rename = "post", alias = "client_secret_post")]
    Post,
    /// A JWT signed with `client_key` (RFC 7523 section 2.2, OpenID
    /// Connect Core section 9).
    #[serde(rename = "private_key_jwt")]
    PrivateKeyJwt,
    /// Mutual TLS with a CA-issued `client_certificate` (RFC 8705 2.1).
    #[serde(rename = "tls_client_auth")]
    TlsClientAuth,
    /// Mutual TLS with a self-signed `client_certificate` (RFC 8705 2.2).
    #[serde(rename = "self_signed_tls_client_auth")]
    SelfSignedTlsClientAuth,
}

impl ClientAuth {
    /// The method's RFC 7591 name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
            ClientAuth::TlsClientAuth => "tls_client_auth",
            ClientAuth::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the client proves itself with a TLS client certificate.
    pub fn is_mutual_tls(self) -> bool {
        matches!(self, ClientAuth::TlsClientAuth | ClientAuth::SelfSignedTlsClientAuth)
    }

    /// Whether the method uses `client_key`.
    pub fn uses_key(self) -> bool {
        self == ClientAuth::PrivateKeyJwt || self.is_mutual_tls()
    }
}

/// The JWS algorithm of a client assertion. Only RSA keys have a choice
/// (RS256 by default, PS256 on request); for EC and Ed25519 keys the key
/// decides, and naming another algorithm is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl KeyAlgorithm {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::RS256 => "RS256",
            KeyAlgorithm::PS256 => "PS256",
            KeyAlgorithm::ES256 => "ES256",
            KeyAlgorithm::ES384 => "ES384",
            KeyAlgorithm::EdDSA => "EdDSA",
        }
    }
}

/// A string or a list of strings (`audience`, `resource`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values, sent as repeated form fields.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values in order.
    pub fn values(&self) -> &[String] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// One exchange registry's settings, as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The RFC 8693 endpoint.
    pub token_endpoint: String,
    /// Where the login (subject) token comes from.
    #[serde(default)]
    pub subject_token: SourceSpec,
    /// `subject_token_type`; default access_token.
    #[serde(default)]
    pub subject_token_type: Option<String>,
    /// `audience` form field(s); may use `{registry}`/`{repository}`.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    /// `resource` form field(s); may use `{registry}`/`{repository}`.
    #[serde(default)]
    pub resource: Option<OneOrMany>,
    /// `scope`; may use `{registry}`/`{repository}`.
    #[serde(default)]
    pub scope: Option<String>,
    /// `requested_token_type`.
    #[serde(default)]
    pub requested_token_type: Option<String>,
    /// OAuth client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// OAuth client secret's source.
    #[serde(default)]
    pub client_secret: Option<SourceSpec>,
    /// How the client authenticates: basic (default), post,
    /// private_key_jwt, tls_client_auth or self_signed_tls_client_auth.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// The client's private key (PEM) for private_key_jwt and mutual TLS.
    #[serde(default)]
    pub client_key: Option<SourceSpec>,
    /// RS256 (default for RSA keys) or PS256; other keys decide alone.
    #[serde(default)]
    pub client_key_algorithm: Option<KeyAlgorithm>,
    /// The `kid` header of client assertions.
    #[serde(default)]
    pub client_key_id: Option<String>,
    /// The `aud` of client assertions; default: the token endpoint.
    #[serde(default)]
    pub client_assertion_audience: Option<OneOrMany>,
    /// The client's certificate chain (PEM, leaf first) for mutual TLS.
    #[serde(default)]
    pub client_certificate: Option<PathBuf>,
    /// RFC 8693 delegation: the actor token's source.
    #[serde(default)]
    pub actor_token: Option<SourceSpec>,
    /// The actor token's type URN (required with `actor_token`).
    #[serde(default)]
    pub actor_token_type: Option<String>,
    /// The username returned beside the exchanged token.
    #[serde(default)]
    pub username: Option<String>,
    /// Refresh this long before expiry (default 60, capped at lifetime/2).
    #[serde(default)]
    pub safety_margin_seconds: Option<Seconds>,
    /// Lifetime assumed when the response gives none (default 60).
    #[serde(default)]
    pub default_lifetime_seconds: Option<Seconds>,
    /// Extra PEM trust roots for the endpoint.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Service account annotations the kubelet passes that templates may
    /// use as `{annotation:KEY}`; any other annotation is ignored.
    #[serde(default)]
    pub kubelet_annotations: Vec<String>,
}

impl RegistryConfig {
    /// The configured safety margin in seconds.
    pub fn safety_margin(&self) -> u64 {
        self.safety_margin_seconds.map_or(DEFAULT_MARGIN, |s| s.0)
    }

    /// The lifetime assumed when neither `expires_in` nor `exp` says.
    pub fn default_lifetime(&self) -> u64 {
        self.default_lifetime_seconds.map_or(DEFAULT_LIFETIME, |s| s.0).max(1)
    }

    /// The subject token type sent to the endpoint.
    pub fn subject_token_type(&self) -> &str {
        self.subject_token_type.as_deref().unwrap_or(TOKEN_TYPE_ACCESS_TOKEN)
    }

    /// The username `get` returns beside an exchanged token: the config's,
    /// else the one given at `login`/`store`, else `oauth2accesstoken`.
    pub fn username_for(&self, login_username: Option<&str>) -> String {
        self.username
            .as_deref()
            .or(login_username.filter(|u| !u.is_empty()))
            .unwrap_or(super::DEFAULT_USERNAME)
            .to_owned()
    }
}
