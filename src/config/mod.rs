//! The configuration file: which registries are exchange registries and how
//! to exchange for each (DESIGN.md section 2).
//!
//! Reading is lazy where it can be: a `get` on a warm cache must not cost
//! more with 1000 configured registries than with one. A full read checks
//! the JSON as a whole (syntax, unknown top-level fields) in one pass and
//! notes each registry key and where its value is ([`read`]); what it
//! learned is kept in the cache directory, and while the file is unchanged
//! later reads take it from there instead of from every byte of the file
//! ([`index`]). The entry a request matches is then deserialized, checked
//! against the other keys and validated on first use
//! ([`Config::registry`]). Commands that show every registry (`status`,
//! `doctor`) validate them all. Errors name the file, line, column and
//! field, in the user's words ([`schema`]), and never touch stored
//! credentials.

mod client;
mod index;
mod read;
pub mod schema;
mod skim;
mod store_choice;
pub mod template;
mod validate;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use schema::{ClientAuth, KeyAlgorithm, OneOrMany, RegistryConfig, SourceSpec};
pub use template::{TemplateError, TemplateVars, expand};

use crate::server_url::{self, ServerUrl};
pub use store_choice::{STORE_ENV, StoreKind};

/// The username Docker-style registries expect beside an OAuth token.
pub const DEFAULT_USERNAME: &str = "oauth2accesstoken";
const MAX_CONFIG_BYTES: u64 = crate::bounded::ONE_MIB;
/// What some editors put before the JSON.
const BYTE_ORDER_MARK: &[u8] = b"\xef\xbb\xbf";

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

/// An entry of a file read whole.
#[derive(Debug)]
struct Entry {
    /// The key as written.
    name: KeyText,
    /// Whether the key as written is already normalized (the usual case):
    /// it is then compared as it is, and normalized only when needed.
    normalized: bool,
    /// Where the entry's JSON value is in the file's text.
    span: (usize, usize),
}

/// What each entry becomes on first use.
#[derive(Debug, Default)]
struct Lazy {
    /// The normalized key: made on first use for a normalized key, at load
    /// time for any other.
    key: OnceCell<ServerUrl>,
    /// The settings, boxed: most entries of a large file are never parsed.
    parsed: OnceCell<Box<Result<RegistryConfig, ConfigError>>>,
}

/// Where a loaded config's entries are.
#[derive(Debug)]
enum Body {
    /// The file's text, read and checked by this process.
    Text(TextBody),
    /// The file's index, written by a process that read and checked this
    /// same version of the file ([`index`]).
    #[cfg_attr(not(unix), allow(dead_code))]
    Indexed(index::Indexed),
}

impl Default for Body {
    fn default() -> Self {
        Body::Text(TextBody::default())
    }
}

/// A file read whole: its text and each entry's key and span in it.
#[derive(Debug, Default)]
struct TextBody {
    text: String,
    entries: Vec<Entry>,
    /// Entries by normalized key, for the commands that go through them all
    /// (made on first use: a `get` never needs it).
    by_key: OnceCell<HashMap<String, Vec<usize>>>,
}

impl TextBody {
    fn name(&self, i: usize) -> &str {
        match &self.entries[i].name {
            KeyText::Span(start, end) => &self.text[*start..*end],
            KeyText::Unescaped(s) => s,
        }
    }
}

/// The loaded configuration.
#[derive(Debug, Default)]
pub struct Config {
    path: Option<PathBuf>,
    store: Option<StoreKind>,
    body: Body,
    /// One per entry, in file order.
    lazy: Vec<Lazy>,
}

impl Config {
    /// The file it came from, if one was named.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Every entry, in file order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = EntryId> + '_ {
        (0..self.lazy.len()).map(EntryId)
    }

    /// The key of an entry as written in the file.
    pub fn name(&self, id: EntryId) -> &str {
        match &self.body {
            Body::Text(body) => body.name(id.0),
            Body::Indexed(indexed) => indexed.index.name(id.0),
        }
    }

    /// The normalized key of an entry.
    pub fn key(&self, id: EntryId) -> &ServerUrl {
        self.lazy[id.0].key.get_or_init(|| ServerUrl::from_normalized(self.key_str(id.0)))
    }

    /// The normalized key of an entry as text, without building a
    /// `ServerUrl` for it (`list` names every entry).
    pub fn key_text(&self, id: EntryId) -> &str {
        self.key_str(id.0)
    }

    /// The normalized key of an entry as a string, without building a
    /// `ServerUrl` when the key was written normalized.
    fn key_str(&self, i: usize) -> &str {
        match &self.body {
            Body::Text(body) if body.entries[i].normalized => body.name(i),
            // Normalized when the file was read.
            Body::Text(_) => self.lazy[i].key.get().map_or("", ServerUrl::as_str),
            Body::Indexed(indexed) => indexed.index.key(i),
        }
    }

    /// The exchange entry for a request: the longest key that is a
    /// whole-segment prefix of the normalized server URL. From a file read
    /// whole, one pass over the keys, comparing strings, with nothing
    /// allocated or parsed; from an index, a binary search for each such
    /// prefix of the URL.
    pub fn lookup(&self, url: &ServerUrl) -> Option<EntryId> {
        self.lookup_key(url.as_str())
    }

    /// [`Config::lookup`] for a URL already normalized, as text: `list`
    /// looks up every stored key, and builds no `ServerUrl` for each.
    pub fn lookup_key(&self, url: &str) -> Option<EntryId> {
        if let Body::Indexed(indexed) = &self.body {
            return indexed.index.lookup(url).map(EntryId);
        }
        let mut best: Option<(usize, usize)> = None;
        for i in 0..self.lazy.len() {
            let key = self.key_str(i);
            if server_url::is_under(url, key) && best.is_none_or(|(len, _)| key.len() > len) {
                best = Some((key.len(), i));
            }
        }
        best.map(|(_, i)| EntryId(i))
    }

    /// The first entry in file order, other than `id`, whose normalized key
    /// is `id`'s.
    fn other_with_same_key(&self, id: EntryId) -> Option<EntryId> {
        let key = self.key_str(id.0);
        match &self.body {
            Body::Indexed(indexed) => indexed.index.same_key(id.0).map(EntryId),
            Body::Text(body) => match body.by_key.get() {
                Some(map) => map.get(key).into_iter().flatten().map(|&i| EntryId(i)).find(|&o| o != id),
                None => (0..self.lazy.len()).find(|&i| i != id.0 && self.key_str(i) == key).map(EntryId),
            },
        }
    }

    /// The line and column where an entry's value starts.
    fn position(&self, id: EntryId) -> (usize, usize) {
        match &self.body {
            Body::Text(body) => crate::json::line_column(body.text.as_bytes(), body.entries[id.0].span.0),
            Body::Indexed(indexed) => indexed.index.position(id.0),
        }
    }

    /// The text of an entry's value.
    fn value(&self, id: EntryId) -> Result<Cow<'_, str>, ConfigError> {
        match &self.body {
            Body::Text(body) => {
                let (start, end) = body.entries[id.0].span;
                Ok(Cow::Borrowed(&body.text[start..end]))
            }
            Body::Indexed(indexed) => {
                indexed.value(id.0, self.path.as_deref().unwrap_or(Path::new(""))).map(Cow::Owned)
            }
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
        self.lazy[id.0]
            .parsed
            .get_or_init(|| Box::new(self.check_unique(id).and_then(|()| self.parse_entry(id))))
            .as_ref()
            .as_ref()
            .map_err(Clone::clone)
    }

    fn check_unique(&self, id: EntryId) -> Result<(), ConfigError> {
        let key = self.key_str(id.0);
        let Some(other) = self.other_with_same_key(id) else { return Ok(()) };
        let same = if self.name(other) == self.name(id) {
            format!("the key {:?} appears twice", self.name(id))
        } else {
            format!("names the same registry ({key}) as the key {:?}", self.name(other))
        };
        Err(ConfigError::Invalid {
            path: self.path.clone().unwrap_or_default(),
            line: self.position(id).0,
            registry: self.name(id).to_owned(),
            field: "(key)",
            reason: same,
        })
    }

    /// Every entry with its settings or the reason it is refused, in file
    /// order: for commands that show or check the whole file. The key index
    /// is built first, so the duplicate checks cost O(entries), not
    /// O(entries²) as one `registry` call after another would.
    pub fn registries(&self) -> impl Iterator<Item = (EntryId, Result<&RegistryConfig, ConfigError>)> + '_ {
        self.index_keys();
        self.ids().map(|id| (id, self.registry(id)))
    }

    /// Builds the key index once, so that checking every entry for
    /// duplicates is O(entries) rather than O(entries²).
    /// (An index has recorded each entry's duplicate already.)
    fn index_keys(&self) {
        let Body::Text(body) = &self.body else { return };
        body.by_key.get_or_init(|| {
            let mut map: HashMap<String, Vec<usize>> = HashMap::with_capacity(self.lazy.len());
            for i in 0..self.lazy.len() {
                map.entry(self.key_str(i).to_owned()).or_default().push(i);
            }
            map
        });
    }

    /// The username an entry sets, read without validating the rest of
    /// it: `list` shows every registry and must stay cheap.
    pub fn username_of(&self, id: EntryId) -> Option<Cow<'_, str>> {
        #[derive(Deserialize)]
        struct Only {
            #[serde(default)]
            username: Option<String>,
        }
        match &self.body {
            Body::Text(body) => {
                let (start, end) = body.entries[id.0].span;
                let username = serde_json::from_str::<Only>(&body.text[start..end]).ok()?.username;
                username.filter(|u| !u.is_empty()).map(Cow::Owned)
            }
            Body::Indexed(indexed) => indexed.index.username(id.0).map(Cow::Borrowed),
        }
    }

    fn parse_entry(&self, id: EntryId) -> Result<RegistryConfig, ConfigError> {
        let path = self.path.clone().unwrap_or_default();
        let value = self.value(id)?;
        let name = self.name(id);
        let mut de = serde_json::Deserializer::from_str(&value);
        let mut reg: RegistryConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let (line0, col0) = self.position(id);
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
            line: self.position(id).0,
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
mod tests;
