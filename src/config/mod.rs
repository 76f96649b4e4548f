//! The configuration file: which registries are exchange registries and how
//! to exchange for each (DESIGN.md section 2).
//!
//! Reading is lazy where it can be: a `get` on a warm cache must not cost
//! more with 1000 configured registries than with one. Loading checks the
//! JSON as a whole (syntax, unknown top-level fields, duplicate keys), and
//! normalizes every registry key into an index, which is O(entries); the
//! entry a request matches is then deserialized and validated on first use
//! ([`Config::registry`]). Commands that show every registry (`status`,
//! `doctor`) validate them all. Errors name the file, line, column and
//! field, in the user's words ([`schema`]), and never touch stored
//! credentials or the cache.

pub mod schema;
pub mod template;
mod validate;

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

pub use schema::{ClientAuth, OneOrMany, RegistryConfig, Seconds, SourceSpec, TOKEN_TYPE_ACCESS_TOKEN};
pub use template::{TemplateError, TemplateVars, expand};
pub use validate::check_endpoint;

use crate::server_url::{ServerUrl, ServerUrlError};
use crate::store::{STORE_ENV, StoreKind};

/// The username Docker-style registries expect beside an OAuth token.
pub const DEFAULT_USERNAME: &str = "oauth2accesstoken";
const MAX_CONFIG_BYTES: u64 = crate::bounded::ONE_MIB;

/// Why the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why, in words.
        reason: String,
    },
    /// The JSON is malformed, or a field is unknown or of the wrong type.
    #[error("config file {} is invalid at line {line}, column {column}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A field's value is not acceptable.
    #[error("config file {} (line {line}): registries.\"{registry}\".{field}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line of the registry's key.
        line: usize,
        /// The registry key as written.
        registry: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `DOCKER_CREDENTIAL_EXCHANGE_STORE` has an unknown value.
    #[error("{STORE_ENV}={0:?} is not a store; use \"keyring\" or \"file\"")]
    BadStoreEnv(String),
}

/// One registry entry of the loaded file, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(usize);

#[derive(Debug)]
struct Entry {
    /// The key as written, for messages.
    name: String,
    /// The normalized key.
    key: ServerUrl,
    /// Where the entry's JSON value is in the file's text.
    span: (usize, usize),
    parsed: OnceCell<Result<RegistryConfig, ConfigError>>,
}

/// The loaded configuration.
#[derive(Debug, Default)]
pub struct Config {
    path: Option<PathBuf>,
    store: Option<StoreKind>,
    text: String,
    entries: Vec<Entry>,
    /// Normalized key to entry: a lookup is one probe per path segment.
    index: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig<'a> {
    #[serde(default)]
    store: Option<StoreKind>,
    #[serde(default, borrow)]
    registries: RawRegistries<'a>,
}

/// The `registries` object with each value left unparsed, refusing a key
/// that appears twice (serde would silently keep the last).
#[derive(Default)]
struct RawRegistries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawRegistries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = RawRegistries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "an object of registries, e.g. {\"registry.example.com\": {\"token_endpoint\": …}}",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!("registry key {key:?} appears twice")));
                    }
                    out.push((key, map.next_value::<&'a RawValue>()?));
                }
                Ok(RawRegistries(out))
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

impl Config {
    /// Loads the config at `path`; a missing file is an empty config.
    ///
    /// # Errors
    /// The file cannot be read (or is not a regular file, or is over
    /// 1 MiB), or is not a JSON object of the documented shape.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // The config holds no secrets and may be shared (a CI image's /etc)
        // or a dotfile symlink: it is read as a plain regular file.
        match crate::fsutil::read_regular_file(path, MAX_CONFIG_BYTES) {
            Ok(Some(bytes)) => Config::parse(path, bytes),
            Ok(None) => Ok(Config { path: Some(path.to_owned()), ..Config::default() }),
            Err(e) => Err(ConfigError::Read { path: path.to_owned(), reason: e.to_string() }),
        }
    }

    /// Parses config bytes; `path` is for messages and for resolving
    /// relative paths. Entries are validated on first use.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Config, ConfigError> {
        let parse_error = |reason: String, (line, column): (usize, usize)| ConfigError::Parse {
            path: path.to_owned(),
            line,
            column,
            reason,
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = crate::json::line_column(e.as_bytes(), e.utf8_error().valid_up_to());
            parse_error("the file is not UTF-8 text".into(), at)
        })?;
        crate::json::require_object(text.as_bytes()).map_err(|e| {
            parse_error(
                format!("{}; the config is an object with \"registries\"", e.reason),
                (e.line, e.column),
            )
        })?;
        let raw: RawConfig<'_> = serde_json::from_str(&text).map_err(|e| {
            let e = crate::json::JsonError::from_serde(&e, text.as_bytes());
            parse_error(e.reason, (e.line, e.column))
        })?;
        let mut entries = Vec::with_capacity(raw.registries.0.len());
        let mut index = HashMap::with_capacity(raw.registries.0.len());
        for (name, value) in raw.registries.0 {
            let start = value.get().as_ptr() as usize - text.as_ptr() as usize;
            let span = (start, start + value.get().len());
            let invalid = |reason: String| ConfigError::Invalid {
                path: path.to_owned(),
                line: crate::json::line_column(text.as_bytes(), start).0,
                registry: name.clone(),
                field: "(key)",
                reason,
            };
            let key = ServerUrl::parse(&name).map_err(|e| match e {
                ServerUrlError::Empty => invalid("a registry key is empty".into()),
                _ => invalid("a key is host[:port][/repository/prefix]".into()),
            })?;
            if let Some(&other) = index.get(key.as_str()) {
                let other: &Entry = &entries[other];
                return Err(invalid(format!("names the same registry ({key}) as the key {:?}", other.name)));
            }
            index.insert(key.as_str().to_owned(), entries.len());
            entries.push(Entry { name, key, span, parsed: OnceCell::new() });
        }
        let store = raw.store;
        Ok(Config { path: Some(path.to_owned()), store, text, entries, index })
    }

    /// The file it came from, if one was named.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Every entry, in file order.
    pub fn ids(&self) -> impl Iterator<Item = EntryId> + '_ {
        (0..self.entries.len()).map(EntryId)
    }

    /// Whether no exchange registry is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The normalized key of an entry.
    pub fn key(&self, id: EntryId) -> &ServerUrl {
        &self.entries[id.0].key
    }

    /// The exchange entry for a request: the longest key that is a
    /// whole-segment prefix of the normalized server URL.
    pub fn lookup(&self, url: &ServerUrl) -> Option<EntryId> {
        let mut candidate = url.as_str();
        loop {
            if let Some(&i) = self.index.get(candidate) {
                return Some(EntryId(i));
            }
            let shorter = candidate.rsplit_once('/')?.0;
            if shorter.len() < url.registry().len() {
                return None;
            }
            candidate = shorter;
        }
    }

    /// An entry's settings, parsed and validated on first use.
    ///
    /// # Errors
    /// The entry is not of the documented shape or has an unacceptable
    /// value; the error names the field.
    pub fn registry(&self, id: EntryId) -> Result<&RegistryConfig, ConfigError> {
        let entry = &self.entries[id.0];
        entry.parsed.get_or_init(|| self.parse_entry(entry)).as_ref().map_err(Clone::clone)
    }

    /// Every entry's settings, or the first error: for commands that show
    /// or check the whole file.
    ///
    /// # Errors
    /// As [`Config::registry`].
    pub fn validate_all(&self) -> Result<(), ConfigError> {
        self.ids().try_for_each(|id| self.registry(id).map(drop))
    }

    fn parse_entry(&self, entry: &Entry) -> Result<RegistryConfig, ConfigError> {
        let path = self.path.clone().unwrap_or_default();
        let (start, end) = entry.span;
        let mut de = serde_json::Deserializer::from_str(&self.text[start..end]);
        let mut reg: RegistryConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let (line0, col0) = crate::json::line_column(self.text.as_bytes(), start);
            let (line, column) = if inner.line() <= 1 {
                (line0, col0 + inner.column().saturating_sub(1))
            } else {
                (line0 + inner.line() - 1, inner.column())
            };
            let at = if field == "." || field.is_empty() { String::new() } else { format!(".{field}") };
            ConfigError::Parse {
                path: path.clone(),
                line,
                column,
                reason: format!("registries.{:?}{at}: {}", entry.name, crate::json::describe_error(&inner)),
            }
        })?;
        validate::entry(&entry.key, &reg).map_err(|(field, reason)| ConfigError::Invalid {
            path: path.clone(),
            line: crate::json::line_column(self.text.as_bytes(), start).0,
            registry: entry.name.clone(),
            field,
            reason,
        })?;
        resolve_relative(&mut reg, path.parent().unwrap_or(Path::new(".")));
        Ok(reg)
    }

    /// The store to use: the environment variable, else the file, else the
    /// keyring.
    ///
    /// # Errors
    /// The environment variable has an unknown value.
    pub fn store_kind(&self) -> Result<StoreKind, ConfigError> {
        store_kind(self.store)
    }
}

/// The store chosen by `DOCKER_CREDENTIAL_EXCHANGE_STORE`, else by the
/// config (`file_choice`), else the keyring.
///
/// # Errors
/// The environment variable has an unknown value.
pub fn store_kind(file_choice: Option<StoreKind>) -> Result<StoreKind, ConfigError> {
    match std::env::var(STORE_ENV).ok().filter(|v| !v.is_empty()) {
        Some(v) if v.eq_ignore_ascii_case("file") => Ok(StoreKind::File),
        Some(v) if v.eq_ignore_ascii_case("keyring") => Ok(StoreKind::Keyring),
        Some(v) => Err(ConfigError::BadStoreEnv(crate::redact::truncate(&v, 40))),
        None => Ok(file_choice.unwrap_or(StoreKind::Keyring)),
    }
}

/// The store a config file names even when the file as a whole does not
/// parse: a trailing comma elsewhere must not send plain credentials to the
/// wrong store. Only an unambiguous `"store": "file"|"keyring"` counts.
pub fn salvage_store_choice(path: &Path) -> Option<StoreKind> {
    let bytes = crate::fsutil::read_regular_file(path, MAX_CONFIG_BYTES).ok()??;
    let text = String::from_utf8(bytes).ok()?;
    let mut found = None;
    for (at, _) in text.match_indices("\"store\"") {
        let rest = text[at + 7..].trim_start().strip_prefix(':')?.trim_start();
        let kind = if rest.starts_with("\"file\"") {
            StoreKind::File
        } else if rest.starts_with("\"keyring\"") {
            StoreKind::Keyring
        } else {
            continue;
        };
        if found.is_some_and(|k| k != kind) {
            return None;
        }
        found = Some(kind);
    }
    found
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/dce/config.json"), json.as_bytes().to_vec())
    }

    /// The only entry's settings.
    fn only(json: &str) -> Result<RegistryConfig, ConfigError> {
        let config = parse(json)?;
        let id = config.ids().next().expect("one entry");
        config.registry(id).cloned()
    }

    const MINIMAL: &str = r#"{"registries": {"r.example": {"token_endpoint": "https://sts.example/token"}}}"#;

    #[test]
    fn minimal_entry_gets_the_documented_defaults() {
        let reg = only(MINIMAL).unwrap();
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
        let reg = only(json).unwrap();
        assert_eq!(reg.resource.as_ref().unwrap().values().len(), 2);
        assert_eq!(reg.client_secret, Some(SourceSpec::Env { var: "STS_CLIENT_SECRET".into() }));
    }

    #[test]
    fn unknown_field_is_an_error_naming_file_field_line_and_column() {
        let json = "{\"registries\": {\"r\": {\n \"token_endpoint\": \"https://s/t\",\n \"scopes\": \"x\"}}}";
        let err = only(json).unwrap_err().to_string();
        assert!(err.contains("/etc/dce/config.json"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("column"), "{err}");
        assert!(err.contains("scopes"), "{err}");
    }

    #[test]
    fn unknown_field_inside_a_source_is_an_error() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t",
            "subject_token": {"source": "env", "var": "X", "path": "/y"}}}}"#;
        assert!(only(json).unwrap_err().to_string().contains("path"));
    }

    #[test]
    fn unknown_source_is_an_error() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "subject_token": {"source": "vault"}}}}"#;
        assert!(only(json).unwrap_err().to_string().contains("vault"));
    }

    #[test]
    fn a_wrongly_typed_source_is_explained_in_the_users_words() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "subject_token": "env"}}}"#;
        let err = only(json).unwrap_err().to_string();
        assert!(err.contains("registries.\"r\".subject_token"), "{err}");
        assert!(err.contains("{\"source\": \"env\", \"var\": \"NAME\"}"), "{err}");
        assert!(!err.contains("SourceSpec") && !err.contains("enum"), "{err}");
    }

    #[test]
    fn a_wrongly_typed_number_of_seconds_is_explained_in_the_users_words() {
        let json =
            r#"{"registries": {"r": {"token_endpoint": "https://s/t", "safety_margin_seconds": "60"}}}"#;
        let err = only(json).unwrap_err().to_string();
        assert!(err.contains("safety_margin_seconds") && err.contains("whole number of seconds"), "{err}");
        assert!(!err.contains("u64"), "{err}");
    }

    #[test]
    fn a_trailing_comma_is_reported_on_its_own_line() {
        let json = "{\"registries\": {\n  \"r\": {\"token_endpoint\": \"https://s/t\"},\n}\n}";
        let err = parse(json).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{err}");
    }

    #[test]
    fn plain_http_endpoint_is_refused_except_on_loopback() {
        let remote = r#"{"registries": {"r": {"token_endpoint": "http://sts.invalid/token"}}}"#;
        let err = only(remote).unwrap_err().to_string();
        assert!(err.contains("registries.\"r\".token_endpoint"), "{err}");
        for ok in ["http://127.0.0.1:8080/t", "http://localhost/t", "http://[::1]:9/t"] {
            let json = format!(r#"{{"registries": {{"r": {{"token_endpoint": "{ok}"}}}}}}"#);
            assert!(only(&json).is_ok(), "{ok}");
        }
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let json =
            r#"{"registries": {"r": {"token_endpoint": "https://s/t", "scope": "repository:{repo}:pull"}}}"#;
        let err = only(json).unwrap_err().to_string();
        assert!(err.contains("scope") && err.contains("{repo}"), "{err}");
    }

    #[test]
    fn keys_are_normalized() {
        let config =
            parse(r#"{"registries": {"HTTPS://R.Example/team/": {"token_endpoint": "https://s/t"}}}"#);
        let config = config.unwrap();
        assert_eq!(config.key(config.ids().next().unwrap()).as_str(), "r.example/team");
    }

    #[test]
    fn two_keys_for_one_registry_are_an_error() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t"}, "https://r/": {"token_endpoint": "https://s/t"}}}"#;
        assert!(parse(json).unwrap_err().to_string().contains("names the same registry"));
    }

    #[test]
    fn the_same_key_twice_is_an_error_not_the_last_one_winning() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/a"}, "r": {"token_endpoint": "https://s/b"}}}"#;
        let err = parse(json).unwrap_err().to_string();
        assert!(err.contains("\"r\" appears twice"), "{err}");
    }

    #[test]
    fn a_field_twice_in_an_entry_is_an_error() {
        let json =
            r#"{"registries": {"r": {"token_endpoint": "https://s/a", "token_endpoint": "https://s/b"}}}"#;
        assert!(only(json).unwrap_err().to_string().contains("duplicate field"));
    }

    #[test]
    fn a_key_with_a_path_that_is_not_a_repository_name_is_an_error() {
        let json = r#"{"registries": {"r/Team/App": {"token_endpoint": "https://s/t"}}}"#;
        assert!(only(json).unwrap_err().to_string().contains("not a repository name"));
    }

    #[test]
    fn a_json_array_is_not_a_config() {
        let err = parse("[]").unwrap_err().to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
    }

    #[test]
    fn lookup_takes_the_longest_whole_segment_prefix() {
        let json = r#"{"registries": {
            "r": {"token_endpoint": "https://s/host"},
            "r/team/app": {"token_endpoint": "https://s/app"}}}"#;
        let config = parse(json).unwrap();
        let find = |u: &str| {
            config
                .lookup(&ServerUrl::parse(u).unwrap())
                .map(|id| config.registry(id).unwrap().token_endpoint.clone())
        };
        assert_eq!(find("r/team/app/sub").as_deref(), Some("https://s/app"));
        assert_eq!(find("r/team/application").as_deref(), Some("https://s/host"));
        assert_eq!(find("https://r/").as_deref(), Some("https://s/host"));
        assert_eq!(find("other"), None);
        assert_eq!(find("rx"), None);
    }

    #[test]
    fn one_bad_entry_does_not_stop_another_from_being_used() {
        let json = r#"{"registries": {
            "good": {"token_endpoint": "https://s/t"},
            "bad": {"token_endpoint": "https://s/t", "scopes": "x"}}}"#;
        let config = parse(json).unwrap();
        let good = config.lookup(&ServerUrl::parse("good").unwrap()).unwrap();
        let bad = config.lookup(&ServerUrl::parse("bad").unwrap()).unwrap();
        assert!(config.registry(good).is_ok());
        assert!(config.registry(bad).is_err());
        assert!(config.validate_all().is_err());
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "ca_file": "ca.pem",
            "subject_token": {"source": "file", "path": "token"}}}}"#;
        let reg = only(json).unwrap();
        assert_eq!(reg.ca_file.as_deref(), Some(Path::new("/etc/dce/ca.pem")));
        assert_eq!(reg.subject_token, SourceSpec::File { path: "/etc/dce/token".into() });
    }

    #[test]
    fn client_secret_from_the_keyring_is_refused() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "client_id": "c",
            "client_secret": {"source": "keyring"}}}}"#;
        assert!(only(json).unwrap_err().to_string().contains("client_secret"));
    }

    #[test]
    fn the_store_choice_survives_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{\"store\": \"file\", \"registries\": {,}}").unwrap();
        assert!(Config::load(&path).is_err());
        assert_eq!(salvage_store_choice(&path), Some(StoreKind::File));
    }

    #[test]
    fn missing_file_is_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&dir.path().join("none.json")).unwrap();
        assert!(config.is_empty());
    }
}
