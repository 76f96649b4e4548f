//! Reading the config file: whole (the fast pass of [`super::skim`], else
//! serde_json, whose verdict and words count), or, when the file has not
//! changed since a full read, through its index ([`super::index`]).

use std::cell::OnceCell;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    BYTE_ORDER_MARK, Body, Config, ConfigError, Entry, KeyText, Lazy, MAX_CONFIG_BYTES, TextBody, index, skim,
};
use crate::config::StoreKind;
use crate::server_url::{self, ServerUrl, ServerUrlError};

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

    /// [`Config::load`], answered from the config's index in `index_dir`
    /// (the cache directory) while the file is the version the index was
    /// made from, and writing the index when there is none for this
    /// version ([`index`] says when that is, and why it cannot stand for
    /// another version).
    ///
    /// # Errors
    /// As [`Config::load`]: a file that has changed is read and checked
    /// again in full, so its errors are reported as ever.
    pub fn load_indexed(path: &Path, index_dir: &Path) -> Result<Config, ConfigError> {
        Config::load_indexed_at(path, index_dir, crate::time::now_ms())
    }

    /// [`Config::load_indexed`] at the time `now_ms`, which decides whether
    /// the file has settled enough to be indexed (a seam for the tests).
    pub(super) fn load_indexed_at(path: &Path, index_dir: &Path, now_ms: i64) -> Result<Config, ConfigError> {
        let read_error =
            |e: crate::fsutil::FsError| ConfigError::Read { path: path.to_owned(), reason: e.to_string() };
        let Some((file, meta)) =
            crate::fsutil::open_bounded(path, MAX_CONFIG_BYTES, crate::fsutil::Policy::Regular)
                .map_err(read_error)?
        else {
            return Ok(Config { path: Some(path.to_owned()), ..Config::default() });
        };
        let identity = index::Identity::of(&meta);
        let index_path = index::file_for(index_dir, path);
        #[cfg(unix)]
        if let Some(identity) = identity
            && let Some(index) = index::read(&index_path, path, &identity)
        {
            let values = index::Values::File { file, identity };
            return Ok(Config::from_index(path, index::Indexed { index, values }));
        }
        let bytes = crate::fsutil::read_open(&file, path, MAX_CONFIG_BYTES).map_err(read_error)?;
        let text_offset = if bytes.starts_with(BYTE_ORDER_MARK) { BYTE_ORDER_MARK.len() } else { 0 };
        let config = Config::parse(path, bytes)?;
        // Indexed only if what was read is the version identified: a write
        // during the read leaves the next reader to check the file again.
        let unchanged =
            identity.is_some() && file.metadata().ok().and_then(|m| index::Identity::of(&m)) == identity;
        if let (true, Some(identity), Body::Text(text)) = (unchanged, identity, &config.body) {
            index::write(&index_path, &config, text, &identity, text_offset, now_ms);
        }
        Ok(config)
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
        let bytes = match bytes.strip_prefix(BYTE_ORDER_MARK) {
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
        let mut lazy = Vec::with_capacity(raw_entries.len());
        for (name, span) in raw_entries {
            let written = match &name {
                KeyText::Span(start, end) => &text[*start..*end],
                KeyText::Unescaped(s) => s,
            };
            let normalized = server_url::is_normalized(written);
            let entry_lazy = Lazy::default();
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
                let _ = entry_lazy.key.set(url);
            }
            entries.push(Entry { name, normalized, span });
            lazy.push(entry_lazy);
        }
        let config = Config {
            path: Some(path.to_owned()),
            store,
            body: Body::Text(TextBody { text, entries, by_key: OnceCell::new() }),
            lazy,
        };
        // Under the fuzzer, a config read through its index is held to the
        // answers of the full read, as the fast pass is to serde_json's.
        #[cfg(fuzzing)]
        index::assert_round_trip(&config);
        Ok(config)
    }

    /// A config answered from its index.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(super) fn from_index(path: &Path, indexed: index::Indexed) -> Config {
        let lazy = std::iter::repeat_with(Lazy::default).take(indexed.index.len()).collect();
        Config {
            path: Some(path.to_owned()),
            store: indexed.index.store(),
            body: Body::Indexed(indexed),
            lazy,
        }
    }
}
