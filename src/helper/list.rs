//! The protocol's `list`: stored registries and exchange registries, by
//! server URL, with the username `get` would return.
//!
//! `list` of 1000 entries, configured or stored, has a budget of 3 M
//! instructions (DESIGN.md section 7): the answer borrows every name from
//! the store's listing and the config instead of copying it, and is a
//! sorted `Vec` rather than a map (bench/RESULTS.md).

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{Helper, HelperError};
use crate::config::{Config, DEFAULT_USERNAME, EntryId};
use crate::server_url::{self, ServerUrl};

/// `list`'s answer: server URL to username, sorted, each name once.
#[derive(Debug)]
pub struct ListAnswer<'a> {
    rows: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> ListAnswer<'a> {
    /// The answer from names in the order they were found, where a later
    /// name replaces an earlier equal one (as inserting into a map would).
    fn new(mut rows: Vec<(&'a str, Cow<'a, str>)>) -> ListAnswer<'a> {
        // Stable: of equal names, the one found last ends up last.
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let mut kept: Vec<(&'a str, Cow<'a, str>)> = Vec::with_capacity(rows.len());
        for row in rows {
            match kept.last_mut() {
                Some(last) if last.0 == row.0 => *last = row,
                _ => kept.push(row),
            }
        }
        ListAnswer { rows: kept }
    }
}

/// A JSON object, as a `BTreeMap<String, String>` of the same entries
/// would be.
impl Serialize for ListAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.rows.len()))?;
        for (name, username) in &self.rows {
            map.serialize_entry(name, username)?;
        }
        map.end()
    }
}

impl Helper {
    /// The protocol's `list`, handed to `answer`: stored registries and
    /// exchange registries, by server URL, with the username `get` would
    /// return. Reads the index and the config only: no keyring, no
    /// network, and of each entry only its `username` (an invalid entry is
    /// listed all the same; its `get` reports the error).
    ///
    /// # Errors
    /// The index cannot be read.
    pub fn list<R>(&self, answer: impl FnOnce(&ListAnswer<'_>) -> R) -> Result<R, HelperError> {
        let stored = self.store()?.listing()?;
        let config = self.config.as_ref().ok().filter(|c| c.ids().len() > 0);
        let mut rows: Vec<(&str, Cow<'_, str>)> =
            Vec::with_capacity(stored.len() + config.map_or(0, |c| c.ids().len()));
        for listed in stored.iter() {
            let entry = config.and_then(|c| Some((c, lookup(c, listed.key)?)));
            let username = match entry {
                Some((c, id)) => c
                    .username_of(id)
                    .or_else(|| Some(Cow::Borrowed(listed.username)).filter(|u| !u.is_empty()))
                    .unwrap_or(Cow::Borrowed(DEFAULT_USERNAME)),
                None => Cow::Borrowed(listed.username),
            };
            rows.push((listed.server_url, username));
        }
        if let Some(config) = config {
            for id in config.ids() {
                let key = config.key_text(id);
                if stored.contains_key(key) {
                    continue;
                }
                let username = config.username_of(id).unwrap_or(Cow::Borrowed(DEFAULT_USERNAME));
                rows.push((server_url::display_name(key), username));
            }
        }
        Ok(answer(&ListAnswer::new(rows)))
    }
}

/// The config entry for a stored entry's key. Keys are written
/// normalized, so one is looked up as it is rather than parsed again.
fn lookup(config: &Config, key: &str) -> Option<EntryId> {
    if server_url::is_normalized(key) {
        return config.lookup_key(key);
    }
    config.lookup(&ServerUrl::parse(key).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(rows: Vec<(&str, &str)>) -> String {
        let rows = rows.into_iter().map(|(n, u)| (n, Cow::Borrowed(u))).collect();
        serde_json::to_string(&ListAnswer::new(rows)).unwrap()
    }

    #[test]
    fn answer_is_sorted_by_name() {
        assert_eq!(json(vec![("b", "2"), ("a", "1"), ("B", "3")]), r#"{"B":"3","a":"1","b":"2"}"#);
    }

    #[test]
    fn a_name_found_later_replaces_an_earlier_one() {
        assert_eq!(
            json(vec![("r", "first"), ("a", "x"), ("r", "second"), ("r", "third")]),
            r#"{"a":"x","r":"third"}"#
        );
    }

    #[test]
    fn answer_is_what_a_map_of_the_same_inserts_serializes_to() {
        let inserts = [("z\"q", "1"), ("é", "2"), ("a", "3"), ("z\"q", "4"), ("", "5")];
        let map: std::collections::BTreeMap<&str, &str> = inserts.iter().copied().collect();
        assert_eq!(json(inserts.to_vec()), serde_json::to_string(&map).unwrap());
    }

    #[test]
    fn an_empty_answer_is_an_empty_object() {
        assert_eq!(json(vec![]), "{}");
    }

    #[test]
    fn a_stored_key_finds_the_entry_its_parsed_form_finds() {
        let text = r#"{"registries":{"r.example:5000/team":{"token_endpoint":"https://sts.example/token"},
            "docker.io":{"token_endpoint":"https://sts.example/token"}}}"#;
        let config = Config::parse(std::path::Path::new("config.json"), text.as_bytes().to_vec()).unwrap();
        for key in [
            "r.example:5000/team/app",
            "R.Example:5000/team",
            "docker.io/library/x",
            "index.docker.io/v1",
            "r.example",
        ] {
            let parsed = ServerUrl::parse(key).ok().and_then(|url| config.lookup(&url));
            assert_eq!(lookup(&config, key), parsed, "{key}");
        }
    }
}
