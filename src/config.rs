//! The configuration file: which registries are exchange registries and how
//! to exchange for each (DESIGN.md section 2).
//!
//! Parsing is separate from validation: serde reads the JSON strictly
//! (unknown fields are errors, with line and column), then [`Config::load`]
//! checks what serde cannot (URL schemes, placeholders, sources) and names
//! the registry and field at fault. A config error never touches stored
//! credentials or the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::server_url::{ServerUrl, ServerUrlError};
use crate::store::{STORE_ENV, StoreKind};

/// `urn:ietf:params:oauth:token-type:access_token`, the default subject type.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The username Docker-style registries expect beside an OAuth token.
pub const DEFAULT_USERNAME: &str = "oauth2accesstoken";
const DEFAULT_MARGIN: u64 = 60;
const DEFAULT_LIFETIME: u64 = 60;
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Where a secret comes from: the subject token, or a client secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
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
        timeout_seconds: Option<u64>,
    },
    /// The GitHub Actions job's OIDC token.
    GithubActions {
        /// The `aud` to request; default: the registry entry's audience.
        #[serde(default)]
        audience: Option<String>,
    },
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
        }
    }
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic, RFC 6749 section 2.3.1 (`client_secret_basic`).
    #[default]
    Basic,
    /// `client_id` and `client_secret` as form fields (`client_secret_post`).
    Post,
}

/// A string or a list of strings (`audience`, `resource`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
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
    /// Basic (default) or post.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// The username returned beside the exchanged token.
    #[serde(default)]
    pub username: Option<String>,
    /// Refresh this long before expiry (default 60, capped at lifetime/2).
    #[serde(default)]
    pub safety_margin_seconds: Option<u64>,
    /// Lifetime assumed when the response gives none (default 60).
    #[serde(default)]
    pub default_lifetime_seconds: Option<u64>,
    /// Extra PEM trust roots for the endpoint.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl RegistryConfig {
    /// The configured safety margin in seconds.
    pub fn safety_margin(&self) -> u64 {
        self.safety_margin_seconds.unwrap_or(DEFAULT_MARGIN)
    }

    /// The lifetime assumed when neither `expires_in` nor `exp` says.
    pub fn default_lifetime(&self) -> u64 {
        self.default_lifetime_seconds.unwrap_or(DEFAULT_LIFETIME).max(1)
    }

    /// The subject token type sent to the endpoint.
    pub fn subject_token_type(&self) -> &str {
        self.subject_token_type.as_deref().unwrap_or(TOKEN_TYPE_ACCESS_TOKEN)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: Option<StoreKind>,
    #[serde(default)]
    registries: BTreeMap<String, RegistryConfig>,
}

/// The loaded, validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it came from (`None`: no file, no exchange registries).
    pub path: Option<PathBuf>,
    /// The store chosen in the file.
    pub store: Option<StoreKind>,
    /// Exchange registries by normalized key.
    pub registries: Vec<(ServerUrl, RegistryConfig)>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: crate::fsutil::FsError,
    },
    /// The JSON is malformed or has unknown or mistyped fields.
    #[error("config file {} is invalid at line {line}, column {column}: {reason}", path.display())]
    Parse { path: PathBuf, line: usize, column: usize, reason: String },
    /// A field's value is not acceptable.
    #[error("config file {}: registries.\"{registry}\".{field}: {reason}", path.display())]
    Invalid { path: PathBuf, registry: String, field: &'static str, reason: String },
    /// `DOCKER_CREDENTIAL_EXCHANGE_STORE` has an unknown value.
    #[error("{STORE_ENV}={0:?} is not a store; use \"keyring\" or \"file\"")]
    BadStoreEnv(String),
}

impl Config {
    /// Loads the config at `path`; a missing file is an empty config.
    ///
    /// # Errors
    /// The file cannot be read, is not valid JSON of the documented shape,
    /// or a value is unacceptable: see [`ConfigError`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // The config holds no secrets but may be shared (a CI image's
        // /etc); it is read as a plain file, without the owner check.
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source: crate::fsutil::FsError::Io {
                        what: "cannot read",
                        path: path.to_owned(),
                        source: e,
                    },
                });
            }
        };
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                line: 1,
                column: 1,
                reason: format!("larger than {MAX_CONFIG_BYTES} bytes"),
            });
        }
        Config::parse(path, &bytes)
    }

    /// Parses and validates config bytes; `path` is for messages and for
    /// resolving relative paths.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            reason: crate::store::describe_json_error(&e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut registries = Vec::with_capacity(raw.registries.len());
        for (name, mut reg) in raw.registries {
            let invalid = |field: &'static str, reason: String| ConfigError::Invalid {
                path: path.to_owned(),
                registry: name.clone(),
                field,
                reason,
            };
            let key = ServerUrl::parse(&name).map_err(|e| match e {
                ServerUrlError::Empty => invalid("(key)", "a registry key is empty".into()),
                ServerUrlError::Invalid(_) => {
                    invalid("(key)", "a key is host[:port][/repository/prefix]".into())
                }
            })?;
            validate(&reg).map_err(|(field, reason)| invalid(field, reason))?;
            resolve_relative(&mut reg, base);
            if registries.iter().any(|(k, _): &(ServerUrl, RegistryConfig)| k == &key) {
                return Err(invalid("(key)", format!("names the same registry as another entry ({key})")));
            }
            registries.push((key, reg));
        }
        Ok(Config { path: Some(path.to_owned()), store: raw.store, registries })
    }

    /// The exchange entry for a request: the longest key that is a
    /// whole-segment prefix of the normalized server URL.
    pub fn lookup(&self, url: &ServerUrl) -> Option<(&ServerUrl, &RegistryConfig)> {
        self.registries
            .iter()
            .filter(|(key, _)| url.is_under(key))
            .max_by_key(|(key, _)| key.as_str().len())
            .map(|(k, r)| (k, r))
    }

    /// The store to use: the environment variable, else the file, else the
    /// keyring.
    ///
    /// # Errors
    /// The environment variable has an unknown value.
    pub fn store_kind(&self) -> Result<StoreKind, ConfigError> {
        match std::env::var(STORE_ENV).ok().filter(|v| !v.is_empty()) {
            Some(v) if v.eq_ignore_ascii_case("file") => Ok(StoreKind::File),
            Some(v) if v.eq_ignore_ascii_case("keyring") => Ok(StoreKind::Keyring),
            Some(v) => Err(ConfigError::BadStoreEnv(v)),
            None => Ok(self.store.unwrap_or(StoreKind::Keyring)),
        }
    }
}

fn validate(reg: &RegistryConfig) -> Result<(), (&'static str, String)> {
    check_endpoint(&reg.token_endpoint).map_err(|r| ("token_endpoint", r))?;
    for (field, values) in [("audience", &reg.audience), ("resource", &reg.resource)] {
        for v in values.iter().flat_map(|v| v.values()) {
            check_template(v).map_err(|r| (field, r))?;
        }
    }
    if let Some(scope) = &reg.scope {
        check_template(scope).map_err(|r| ("scope", r))?;
    }
    check_source(&reg.subject_token).map_err(|r| ("subject_token", r))?;
    match &reg.client_secret {
        Some(SourceSpec::Keyring | SourceSpec::GithubActions { .. }) => {
            return Err(("client_secret", "use an env, file or command source".into()));
        }
        Some(src) => check_source(src).map_err(|r| ("client_secret", r))?,
        None => {}
    }
    if reg.client_secret.is_some() && reg.client_id.is_none() {
        return Err(("client_id", "is required when client_secret is set".into()));
    }
    if let Some(u) = &reg.username
        && u.is_empty()
    {
        return Err(("username", "must not be empty (omit it for the default)".into()));
    }
    Ok(())
}

/// `https://` anywhere, `http://` only to a loopback host: the subject
/// token must not cross a network in clear text.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| format!("{endpoint:?} is not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use client_id and client_secret".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "{endpoint} uses http:// to a non-loopback host; the subject token would travel in clear text, use https://"
        )),
        other => Err(format!("scheme {other}:// is not supported; use https://")),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| format!("{t:?} has an unclosed '{{'"))?;
        let name = &after[..close];
        if name != "registry" && name != "repository" {
            return Err(format!("unknown placeholder {{{name}}}; use {{registry}} or {{repository}}"));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn check_source(src: &SourceSpec) -> Result<(), String> {
    match src {
        SourceSpec::Env { var } if var.is_empty() || var.contains('=') => {
            Err("var must name an environment variable".into())
        }
        SourceSpec::Command { argv, .. } if argv.is_empty() || argv[0].is_empty() => {
            Err("argv must name a program".into())
        }
        SourceSpec::Command { timeout_seconds: Some(0), .. } => {
            Err("timeout_seconds must be positive".into())
        }
        _ => Ok(()),
    }
}

fn resolve_relative(reg: &mut RegistryConfig, base: &Path) {
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    if let Some(ca) = reg.ca_file.as_mut() {
        fix(ca);
    }
    for src in [Some(&mut reg.subject_token), reg.client_secret.as_mut()].into_iter().flatten() {
        if let SourceSpec::File { path } = src {
            fix(path);
        }
    }
}

/// A request's values for the placeholders.
#[derive(Debug, Clone, Copy)]
pub struct TemplateVars<'a> {
    /// `host[:port]`.
    pub registry: &'a str,
    /// The repository path, when the request named one.
    pub repository: Option<&'a str>,
}

/// A template needs `{repository}` but the request names none.
#[derive(Debug, thiserror::Error)]
#[error(
    "registry entry \"{entry}\" uses {{repository}} in {field}, but the request for {registry} names no repository \
     (Docker, BuildKit and skopeo pass only the host); give the entry a fixed {field}, or ask for host/repository"
)]
pub struct MissingRepository {
    /// The config key.
    pub entry: String,
    /// The field with the placeholder.
    pub field: &'static str,
    /// The requested registry.
    pub registry: String,
}

/// Fills `{registry}` and `{repository}` in `template`.
///
/// # Errors
/// `{repository}` is used but the request has none.
pub fn expand(
    template: &str,
    vars: TemplateVars<'_>,
    entry: &ServerUrl,
    field: &'static str,
) -> Result<String, MissingRepository> {
    let mut out = template.replace("{registry}", vars.registry);
    if out.contains("{repository}") {
        let repo = vars.repository.ok_or_else(|| MissingRepository {
            entry: entry.to_string(),
            field,
            registry: vars.registry.to_owned(),
        })?;
        out = out.replace("{repository}", repo);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/dce/config.json"), json.as_bytes())
    }

    const MINIMAL: &str = r#"{"registries": {"r.example": {"token_endpoint": "https://sts.example/token"}}}"#;

    #[test]
    fn minimal_entry_gets_the_documented_defaults() {
        let config = parse(MINIMAL).unwrap();
        let (_, reg) = &config.registries[0];
        assert_eq!(reg.subject_token, SourceSpec::Keyring);
        assert_eq!(reg.subject_token_type(), TOKEN_TYPE_ACCESS_TOKEN);
        assert_eq!(reg.safety_margin(), 60);
        assert_eq!(reg.default_lifetime(), 60);
        assert_eq!(reg.client_auth, ClientAuth::Basic);
    }

    #[test]
    fn the_design_example_parses() {
        let json = r#"{"registries": {"registry.example.com": {
            "token_endpoint": "https://sts.example.com/oauth2/token",
            "subject_token": { "source": "keyring" },
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "audience": "https://registry.example.com",
            "resource": ["https://registry.example.com/{repository}", "urn:x"],
            "scope": "repository:{repository}:pull,push",
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "client_id": "docker",
            "client_secret": { "source": "env", "var": "STS_CLIENT_SECRET" },
            "username": "oauth2accesstoken",
            "safety_margin_seconds": 60
        }}}"#;
        let config = parse(json).unwrap();
        let (_, reg) = &config.registries[0];
        assert_eq!(reg.resource.as_ref().unwrap().values().len(), 2);
        assert_eq!(reg.client_secret, Some(SourceSpec::Env { var: "STS_CLIENT_SECRET".into() }));
    }

    #[test]
    fn unknown_field_is_an_error_naming_field_line_and_column() {
        let json = "{\"registries\": {\"r\": {\n \"token_endpoint\": \"https://s/t\",\n \"scopes\": \"x\"}}}";
        let err = parse(json).unwrap_err().to_string();
        assert!(err.contains("/etc/dce/config.json"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("column"), "{err}");
        assert!(err.contains("scopes"), "{err}");
    }

    #[test]
    fn unknown_field_inside_a_source_is_an_error() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t",
            "subject_token": {"source": "env", "var": "X", "path": "/y"}}}}"#;
        assert!(parse(json).unwrap_err().to_string().contains("path"));
    }

    #[test]
    fn unknown_source_is_an_error() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "subject_token": {"source": "vault"}}}}"#;
        assert!(parse(json).unwrap_err().to_string().contains("vault"));
    }

    #[test]
    fn plain_http_endpoint_is_refused_except_on_loopback() {
        let remote = r#"{"registries": {"r": {"token_endpoint": "http://sts.invalid/token"}}}"#;
        let err = parse(remote).unwrap_err().to_string();
        assert!(err.contains("registries.\"r\".token_endpoint"), "{err}");
        for ok in ["http://127.0.0.1:8080/t", "http://localhost/t", "http://[::1]:9/t"] {
            let json = format!(r#"{{"registries": {{"r": {{"token_endpoint": "{ok}"}}}}}}"#);
            assert!(parse(&json).is_ok(), "{ok}");
        }
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let json =
            r#"{"registries": {"r": {"token_endpoint": "https://s/t", "scope": "repository:{repo}:pull"}}}"#;
        let err = parse(json).unwrap_err().to_string();
        assert!(err.contains("scope") && err.contains("{repo}"), "{err}");
    }

    #[test]
    fn keys_are_normalized() {
        let json = r#"{"registries": {"HTTPS://R.Example/team/": {"token_endpoint": "https://s/t"}}}"#;
        assert_eq!(parse(json).unwrap().registries[0].0.as_str(), "r.example/team");
    }

    #[test]
    fn two_keys_for_one_registry_are_an_error() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t"}, "https://r/": {"token_endpoint": "https://s/t"}}}"#;
        assert!(parse(json).is_err());
    }

    #[test]
    fn lookup_takes_the_longest_whole_segment_prefix() {
        let json = r#"{"registries": {
            "r": {"token_endpoint": "https://s/host"},
            "r/team/app": {"token_endpoint": "https://s/app"}}}"#;
        let config = parse(json).unwrap();
        let find =
            |u: &str| config.lookup(&ServerUrl::parse(u).unwrap()).map(|(_, r)| r.token_endpoint.clone());
        assert_eq!(find("r/team/app/sub").as_deref(), Some("https://s/app"));
        assert_eq!(find("r/team/application").as_deref(), Some("https://s/host"));
        assert_eq!(find("https://r/").as_deref(), Some("https://s/host"));
        assert_eq!(find("other"), None);
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "ca_file": "ca.pem",
            "subject_token": {"source": "file", "path": "token"}}}}"#;
        let config = parse(json).unwrap();
        let (_, reg) = &config.registries[0];
        assert_eq!(reg.ca_file.as_deref(), Some(Path::new("/etc/dce/ca.pem")));
        assert_eq!(reg.subject_token, SourceSpec::File { path: "/etc/dce/token".into() });
    }

    #[test]
    fn client_secret_from_the_keyring_is_refused() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "client_id": "c",
            "client_secret": {"source": "keyring"}}}}"#;
        assert!(parse(json).unwrap_err().to_string().contains("client_secret"));
    }

    #[test]
    fn expand_fills_both_placeholders() {
        let key = ServerUrl::parse("r").unwrap();
        let vars = TemplateVars { registry: "r:5000", repository: Some("team/app") };
        assert_eq!(
            expand("repository:{repository}:pull@{registry}", vars, &key, "scope").unwrap(),
            "repository:team/app:pull@r:5000"
        );
    }

    #[test]
    fn expand_without_a_repository_is_an_error_never_an_empty_scope() {
        let key = ServerUrl::parse("r").unwrap();
        let vars = TemplateVars { registry: "r", repository: None };
        let err = expand("repository:{repository}:pull", vars, &key, "scope").unwrap_err().to_string();
        assert!(err.contains("registry entry \"r\"") && err.contains("scope"), "{err}");
    }

    #[test]
    fn missing_file_is_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&dir.path().join("none.json")).unwrap();
        assert!(config.registries.is_empty());
    }
}
