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

mod client;
pub mod schema;
mod skim;
mod store_choice;
pub mod template;
mod validate;

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

pub use schema::{ClientAuth, KeyAlgorithm, OneOrMany, RegistryConfig, SourceSpec};
pub use template::{TemplateError, TemplateVars, expand};

use crate::server_url::{self, ServerUrl, ServerUrlError};
pub use store_choice::{STORE_ENV, StoreKind};

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

/// A registry key as written: a span of the file's text, or, if it had
/// JSON escapes, the unescaped string.
#[derive(Debug)]
enum KeyText {
    Span(usize, usize),
    Unescaped(Box<str>),
}

#[derive(Debug)]
struct Entry {
    /// The key as written.
    name: KeyText,
    /// Whether the key as written is already normalized (the usual case):
    /// it is then compared as it is, and normalized only when needed.
    normalized: bool,
    /// The normalized key: made on first use for a normalized key, at load
    /// time for any other.
    key: OnceCell<ServerUrl>,
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
    /// Entries by normalized key, for the commands that go through them all
    /// (made on first use: a `get` never needs it).
    by_key: OnceCell<HashMap<String, Vec<usize>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig<'a> {
    #[serde(default)]
    store: Option<StoreKind>,
    #[serde(default, borrow)]
    registries: RawRegistries<'a>,
}

/// A key of `registries`: borrowed from the text when it has no escapes.
enum RawKey<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawKey<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = RawKey<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a registry key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<RawKey<'a>, E> {
                Ok(RawKey::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawKey<'a>, E> {
                Ok(RawKey::Owned(v.to_owned()))
            }
        }
        d.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

/// The `registries` object with each value left unparsed. Nothing is
/// allocated per entry: a `get` on a warm cache must cost about the same
/// with 10,000 configured registries as with one.
#[derive(Default)]
struct RawRegistries<'a>(Vec<(RawKey<'a>, &'a RawValue)>);

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
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<RawKey<'a>>()? {
                    out.push((key, map.next_value::<&'a RawValue>()?));
                }
                Ok(RawRegistries(out))
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// Where `inner` lies in `outer`, which it was borrowed from.
fn span_in(outer: &str, inner: &str) -> (usize, usize) {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    (start, start + inner.len())
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
    /// relative paths. The JSON is checked as a whole; each entry is
    /// deserialized, validated and checked against the other keys on
    /// first use.
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
        // A byte-order mark from an editor is not JSON; skip it.
        let bytes = match bytes.strip_prefix(b"\xef\xbb\xbf") {
            Some(rest) => rest.to_vec(),
            None => bytes,
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
        // The fast pass, else serde_json, whose verdict and words count.
        let (store, raw_entries) = match skim::config(&text).and_then(|found| {
            let store = match found.store {
                Some((start, end)) => serde_json::from_str::<Option<StoreKind>>(&text[start..end]).ok()?,
                None => None,
            };
            let entries =
                found.registries.into_iter().map(|(key, value)| (KeyText::Span(key.0, key.1), value));
            Some((store, entries.collect::<Vec<_>>()))
        }) {
            Some(fast) => fast,
            None => {
                let raw: RawConfig<'_> = serde_json::from_str(&text).map_err(|e| {
                    let e = crate::json::JsonError::from_serde(&e, text.as_bytes());
                    parse_error(e.reason, (e.line, e.column))
                })?;
                let entries = raw.registries.0.into_iter().map(|(name, value)| {
                    let name = match name {
                        RawKey::Borrowed(s) => {
                            let (start, end) = span_in(&text, s);
                            KeyText::Span(start, end)
                        }
                        RawKey::Owned(s) => KeyText::Unescaped(s.into_boxed_str()),
                    };
                    (name, span_in(&text, value.get()))
                });
                (raw.store, entries.collect())
            }
        };
        // Under the fuzzer, the fast pass is held to serde_json's verdict.
        #[cfg(fuzzing)]
        if skim::config(&text).is_some() {
            let raw: RawConfig<'_> =
                serde_json::from_str(&text).expect("serde_json accepts what the skim accepted");
            assert_eq!(raw.store, store);
            let spans: Vec<(usize, usize)> =
                raw.registries.0.iter().map(|(_, v)| span_in(&text, v.get())).collect();
            assert_eq!(spans, raw_entries.iter().map(|(_, span)| *span).collect::<Vec<_>>());
        }
        let mut entries = Vec::with_capacity(raw_entries.len());
        for (name, span) in raw_entries {
            let written = match &name {
                KeyText::Span(start, end) => &text[*start..*end],
                KeyText::Unescaped(s) => s,
            };
            let normalized = server_url::is_normalized(written);
            let key = OnceCell::new();
            if !normalized {
                // Rare, so normalized at once: an invalid key is an error of
                // the file as a whole, like a syntax error.
                let url = ServerUrl::parse(written).map_err(|e| ConfigError::Invalid {
                    path: path.to_owned(),
                    line: crate::json::line_column(text.as_bytes(), span.0).0,
                    registry: written.to_owned(),
                    field: "(key)",
                    reason: match e {
                        ServerUrlError::Empty => "a registry key is empty".into(),
                        _ => "a key is host[:port][/repository/prefix]".into(),
                    },
                })?;
                let _ = key.set(url);
            }
            entries.push(Entry { name, normalized, key, span, parsed: OnceCell::new() });
        }
        Ok(Config { path: Some(path.to_owned()), store, text, entries, by_key: OnceCell::new() })
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

    /// The key of an entry as written in the file.
    pub fn name(&self, id: EntryId) -> &str {
        match &self.entries[id.0].name {
            KeyText::Span(start, end) => &self.text[*start..*end],
            KeyText::Unescaped(s) => s,
        }
    }

    /// The normalized key of an entry.
    pub fn key(&self, id: EntryId) -> &ServerUrl {
        self.entries[id.0].key.get_or_init(|| ServerUrl::from_normalized(self.name(id)))
    }

    /// The normalized key of an entry as a string, without building a
    /// `ServerUrl` when the key was written normalized.
    fn key_str(&self, i: usize) -> &str {
        if self.entries[i].normalized { self.name(EntryId(i)) } else { self.key(EntryId(i)).as_str() }
    }

    /// The exchange entry for a request: the longest key that is a
    /// whole-segment prefix of the normalized server URL. One pass over the
    /// keys, comparing strings; nothing is allocated or parsed.
    pub fn lookup(&self, url: &ServerUrl) -> Option<EntryId> {
        let mut best: Option<(usize, usize)> = None;
        for i in 0..self.entries.len() {
            let key = self.key_str(i);
            if url.is_under_str(key) && best.is_none_or(|(len, _)| key.len() > len) {
                best = Some((key.len(), i));
            }
        }
        best.map(|(_, i)| EntryId(i))
    }

    /// Entries whose normalized key is `key`, other than `id`.
    fn others_with_key(&self, id: EntryId, key: &str) -> Vec<EntryId> {
        match self.by_key.get() {
            Some(map) => {
                map.get(key).into_iter().flatten().map(|&i| EntryId(i)).filter(|&o| o != id).collect()
            }
            None => (0..self.entries.len())
                .filter(|&i| i != id.0 && self.key_str(i) == key)
                .map(EntryId)
                .collect(),
        }
    }

    /// An entry's settings, parsed and validated on first use. A key that
    /// another key of the file also names (the same key twice, or two
    /// spellings of one registry) is an error of both.
    ///
    /// # Errors
    /// The entry is not of the documented shape, has an unacceptable value
    /// (the error names the field), or shares its registry with another.
    pub fn registry(&self, id: EntryId) -> Result<&RegistryConfig, ConfigError> {
        let entry = &self.entries[id.0];
        entry
            .parsed
            .get_or_init(|| self.check_unique(id).and_then(|()| self.parse_entry(id)))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn check_unique(&self, id: EntryId) -> Result<(), ConfigError> {
        let key = self.key_str(id.0);
        let Some(&other) = self.others_with_key(id, key).first() else { return Ok(()) };
        let same = if self.name(other) == self.name(id) {
            format!("the key {:?} appears twice", self.name(id))
        } else {
            format!("names the same registry ({key}) as the key {:?}", self.name(other))
        };
        Err(ConfigError::Invalid {
            path: self.path.clone().unwrap_or_default(),
            line: crate::json::line_column(self.text.as_bytes(), self.entries[id.0].span.0).0,
            registry: self.name(id).to_owned(),
            field: "(key)",
            reason: same,
        })
    }

    /// Every entry's settings, or the first error: for commands that show
    /// or check the whole file.
    ///
    /// # Errors
    /// As [`Config::registry`].
    pub fn validate_all(&self) -> Result<(), ConfigError> {
        self.index_keys();
        self.ids().try_for_each(|id| self.registry(id).map(drop))
    }

    /// Builds the key index once, so that checking every entry for
    /// duplicates is O(entries) rather than O(entries²).
    fn index_keys(&self) {
        self.by_key.get_or_init(|| {
            let mut map: HashMap<String, Vec<usize>> = HashMap::with_capacity(self.entries.len());
            for i in 0..self.entries.len() {
                map.entry(self.key_str(i).to_owned()).or_default().push(i);
            }
            map
        });
    }

    /// The username an entry sets, read without validating the rest of
    /// it: `list` shows every registry and must stay cheap.
    pub fn username_of(&self, id: EntryId) -> Option<String> {
        #[derive(Deserialize)]
        struct Only {
            #[serde(default)]
            username: Option<String>,
        }
        let (start, end) = self.entries[id.0].span;
        serde_json::from_str::<Only>(&self.text[start..end]).ok()?.username.filter(|u| !u.is_empty())
    }

    fn parse_entry(&self, id: EntryId) -> Result<RegistryConfig, ConfigError> {
        let path = self.path.clone().unwrap_or_default();
        let (start, end) = self.entries[id.0].span;
        let name = self.name(id);
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
                reason: format!("registries.{name:?}{at}: {}", crate::json::describe_error(&inner)),
            }
        })?;
        validate::entry(self.key(id), &reg).map_err(|(field, reason)| ConfigError::Invalid {
            path: path.clone(),
            line: crate::json::line_column(self.text.as_bytes(), start).0,
            registry: name.to_owned(),
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
    for path in [reg.ca_file.as_mut(), reg.client_certificate.as_mut()].into_iter().flatten() {
        fix(path);
    }
    let sources = [
        Some(&mut reg.subject_token),
        reg.client_secret.as_mut(),
        reg.client_key.as_mut(),
        reg.actor_token.as_mut(),
    ];
    for src in sources.into_iter().flatten() {
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
        assert_eq!(reg.subject_token_type(), schema::TOKEN_TYPE_ACCESS_TOKEN);
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
        let config = parse(json).unwrap();
        let id = config.lookup(&ServerUrl::parse("r").unwrap()).unwrap();
        assert!(config.registry(id).unwrap_err().to_string().contains("names the same registry"));
        assert!(config.validate_all().is_err());
    }

    #[test]
    fn the_same_key_twice_is_an_error_not_the_last_one_winning() {
        let json = r#"{"registries": {"r": {"token_endpoint": "https://s/a"}, "r": {"token_endpoint": "https://s/b"}}}"#;
        let config = parse(json).unwrap();
        let id = config.lookup(&ServerUrl::parse("r").unwrap()).unwrap();
        let err = config.registry(id).unwrap_err().to_string();
        assert!(err.contains("\"r\" appears twice"), "{err}");
    }

    #[test]
    fn a_key_with_escapes_is_read_unescaped() {
        let config =
            parse(r#"{"registries": {"r\u002eexample": {"token_endpoint": "https://s/t"}}}"#).unwrap();
        let id = config.lookup(&ServerUrl::parse("r.example").unwrap()).unwrap();
        assert_eq!(config.name(id), "r.example");
        assert!(config.registry(id).is_ok());
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
    fn a_byte_order_mark_is_skipped() {
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend_from_slice(MINIMAL.as_bytes());
        assert!(Config::parse(Path::new("/etc/dce/config.json"), bytes).is_ok());
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
