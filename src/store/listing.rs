//! What `list` reads of a store: each entry's key, server URL and
//! username, sorted by key, without secrets.
//!
//! `list` of 1000 stored entries has a budget of 3 M instructions (DESIGN.md
//! section 7), and reading the keyring's index through serde_json into a
//! map of owned strings spent most of it (bench/RESULTS.md). The index is a
//! file the helper writes itself, in one shape: `{"version":1,"entries":
//! {KEY:{"server_url":…,"username":…,"kind":…},…}}`, keys sorted, strings
//! without escapes in practice. [`Listing::read`] reads exactly that shape
//! in one pass (an entry's fields in any order), keeping spans into the
//! text; anything else (an escape, `entries` first, an unknown or repeated
//! field, an unsorted or duplicate key, a bad version, bad syntax) makes it
//! give up, and the caller reads the file with serde_json as before, so an
//! unusual or damaged index gets exactly the same result and message as
//! ever. Under the fuzzer every answer of the fast read is held to serde's.

use std::collections::BTreeMap;

use super::ListedCredential;

/// A span of the listing's text.
type Span = (u32, u32);

/// One entry: spans of its key, server URL and username in the text.
#[derive(Debug, Clone, Copy)]
struct Row {
    key: Span,
    server_url: Span,
    username: Span,
}

/// Every stored entry's key, server URL and username, sorted by key, each
/// key once.
#[derive(Debug, Default)]
pub struct Listing {
    text: String,
    rows: Vec<Row>,
}

/// One entry of a [`Listing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed<'a> {
    /// The normalized key it is filed under.
    pub key: &'a str,
    /// The server URL as given to `store`.
    pub server_url: &'a str,
    /// The username given to `store`.
    pub username: &'a str,
}

impl Listing {
    /// The listing of a store read whole (through serde).
    pub fn from_map(map: &BTreeMap<String, ListedCredential>) -> Listing {
        let mut text = String::new();
        let mut push = |s: &str| {
            let start = text.len();
            text.push_str(s);
            (span_u32(start), span_u32(text.len()))
        };
        let rows = map
            .iter()
            .map(|(key, l)| Row {
                key: push(key),
                server_url: push(&l.server_url),
                username: push(&l.username),
            })
            .collect();
        Listing { text, rows }
    }

    /// Reads an index file of exactly the shape the helper writes, or
    /// `None` for anything else, which the caller then reads with
    /// serde_json (and so accepts or refuses as it always has).
    ///
    /// # Errors
    /// Not of that shape: the bytes are handed back.
    pub fn read(bytes: Vec<u8>) -> Result<Listing, Vec<u8>> {
        // Spans are u32: the files are far smaller (jsonfile's limit), but
        // a larger one is simply not read here.
        if u32::try_from(bytes.len()).is_err() {
            return Err(bytes);
        }
        let text = String::from_utf8(bytes).map_err(std::string::FromUtf8Error::into_bytes)?;
        match (Reader { bytes: text.as_bytes(), at: 0 }).index() {
            Some(rows) => Ok(Listing { text, rows }),
            None => Err(text.into_bytes()),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Listed<'_>> + '_ {
        self.rows.iter().map(|row| self.listed(row))
    }

    /// Whether an entry is filed under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.rows.binary_search_by(|row| self.span(row.key).cmp(key)).is_ok()
    }

    fn listed(&self, row: &Row) -> Listed<'_> {
        Listed {
            key: self.span(row.key),
            server_url: self.span(row.server_url),
            username: self.span(row.username),
        }
    }

    fn span(&self, (start, end): Span) -> &str {
        // Spans are made only at character boundaries of this text.
        self.text.get(start as usize..end as usize).unwrap_or("")
    }
}

/// Equal listings list the same entries (wherever their text came from).
impl PartialEq for Listing {
    fn eq(&self, other: &Listing) -> bool {
        self.iter().eq(other.iter())
    }
}

/// A length known to fit: texts over `u32::MAX` bytes are never read.
fn span_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One pass over the index's bytes; every method answers `None` at the
/// first byte that is not of the plain shape.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn index(mut self) -> Option<Vec<Row>> {
        self.punct(b'{')?;
        self.literal(b"\"version\"")?;
        self.punct(b':')?;
        self.ws();
        self.literal(b"1")?;
        self.punct(b',')?;
        self.literal(b"\"entries\"")?;
        self.punct(b':')?;
        self.punct(b'{')?;
        let mut rows: Vec<Row> = Vec::new();
        if !self.eat(b'}') {
            loop {
                let key = self.string()?;
                // Sorted and unique, as a map the helper serialized is:
                // serde would keep the last of two equal keys; leave that
                // (and any other order) to it.
                if rows.last().is_some_and(|last| self.raw(key) <= self.raw(last.key)) {
                    return None;
                }
                self.punct(b':')?;
                rows.push(self.entry(key)?);
                if self.eat(b'}') {
                    break;
                }
                self.punct(b',')?;
            }
        }
        self.punct(b'}')?;
        self.ws();
        (self.at == self.bytes.len()).then_some(rows)
    }

    /// `{"server_url":…,"username":…[,"kind":…]}`, fields in any order,
    /// each at most once.
    fn entry(&mut self, key: Span) -> Option<Row> {
        self.punct(b'{')?;
        let (mut server_url, mut username, mut kind) = (None, None, false);
        loop {
            // The field names and kinds are matched whole, quotes included,
            // rather than scanned as strings and compared after; a field
            // already read is not matched (so consumed) again, or the next
            // branch would read `"server_url" "username":…` as one field.
            self.ws();
            if server_url.is_none() && self.literal(b"\"server_url\"").is_some() {
                self.punct(b':')?;
                server_url = Some(self.string()?);
            } else if username.is_none() && self.literal(b"\"username\"").is_some() {
                self.punct(b':')?;
                username = Some(self.string()?);
            } else if !kind && self.literal(b"\"kind\"").is_some() {
                self.punct(b':')?;
                self.ws();
                self.literal(b"\"credential\"").or_else(|| self.literal(b"\"login-token\""))?;
                kind = true;
            } else {
                return None;
            }
            if self.eat(b'}') {
                break;
            }
            self.punct(b',')?;
        }
        Some(Row { key, server_url: server_url?, username: username? })
    }

    /// A string without escapes or control characters (which JSON forbids
    /// raw), after optional whitespace: the span of its contents.
    fn string(&mut self) -> Option<Span> {
        self.punct(b'"')?;
        let start = self.at;
        let end = start + end_of_plain(&self.bytes[start..]);
        // Only the closing quote may stop it, right there: whitespace is a
        // control character inside a string. (The text is UTF-8, and a
        // quote is never inside a character.)
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        Some((span_u32(start), span_u32(end)))
    }

    /// The bytes of a span (byte order is `str` order).
    fn raw(&self, (start, end): Span) -> &[u8] {
        self.bytes.get(start as usize..end as usize).unwrap_or_default()
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Optional whitespace, then `b`.
    fn punct(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// Optional whitespace, then `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.bytes.get(self.at) == Some(&b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `lit`, after optional whitespace; nothing is consumed if
    /// it is not there.
    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        self.ws();
        if !self.bytes.get(self.at..)?.starts_with(lit) {
            return None;
        }
        self.at += lit.len();
        Some(())
    }
}

/// The length of the plain start of `bytes`: up to the first quote,
/// backslash or control character (or the end). Eight bytes at a time:
/// this loop is most of the read, and strings run to tens of bytes.
fn end_of_plain(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A high bit set in each byte of `x` below `n` (n <= 0x80); the lowest
    // such byte is exact, which is all that is asked here.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        if below(w ^ (ONES * u64::from(b'"')), 1) | below(w ^ (ONES * u64::from(b'\\')), 1) | below(w, 0x20)
            != 0
        {
            break;
        }
        at += 8;
    }
    at + bytes[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(bytes.len() - at)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use std::time::Duration;

    use crate::deadline::Deadline;
    use crate::store::EntryKind;
    use crate::store::jsonfile::{JsonMapFile, listing_of, parse};

    /// The listing by the fast read, or `None` where it leaves the file to
    /// serde_json.
    fn fast(text: &str) -> Option<Vec<(String, String, String)>> {
        let listing = Listing::read(text.as_bytes().to_vec()).ok()?;
        Some(listing.iter().map(|l| (l.key.into(), l.server_url.into(), l.username.into())).collect())
    }

    /// The listing as `list` reads it, fast or not, checked against serde.
    fn listed_by_list(text: &str) -> Vec<(String, String, String)> {
        let listing = listing_of(Path::new("index.json"), text.as_bytes().to_vec()).unwrap();
        let map = parse::<ListedCredential>(Path::new("index.json"), text.as_bytes()).unwrap();
        assert!(listing == Listing::from_map(&map), "the listing is serde's");
        listing.iter().map(|l| (l.key.into(), l.server_url.into(), l.username.into())).collect()
    }

    fn row(key: &str, url: &str, user: &str) -> (String, String, String) {
        (key.into(), url.into(), user.into())
    }

    const COMPACT: &str = r#"{"version":1,"entries":{"a.example":{"server_url":"https://a.example/","username":"alice","kind":"credential"},"b.example":{"server_url":"b.example","username":"bob"}}}"#;

    #[test]
    fn reads_the_compact_index_the_helper_writes() {
        let rows =
            vec![row("a.example", "https://a.example/", "alice"), row("b.example", "b.example", "bob")];
        assert_eq!(fast(COMPACT), Some(rows.clone()));
        assert_eq!(listed_by_list(COMPACT), rows);
    }

    #[test]
    fn reads_the_index_as_the_helper_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = JsonMapFile::new(dir.path(), "index.json", Deadline::after(Duration::from_secs(10)));
        let listed = |url: &str, user: &str, kind| ListedCredential {
            server_url: url.into(),
            username: user.into(),
            kind,
        };
        file.update::<ListedCredential, ()>(|map| {
            map.insert("b.example/t".into(), listed("https://b.example/t", "v", Some(EntryKind::LoginToken)));
            map.insert("a.example".into(), listed("a", "u", Some(EntryKind::Credential)));
            map.insert("c.example".into(), listed("c", "w", None));
            (true, ())
        })
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("index.json")).unwrap();
        let rows = vec![
            row("a.example", "a", "u"),
            row("b.example/t", "https://b.example/t", "v"),
            row("c.example", "c", "w"),
        ];
        assert_eq!(fast(&text), Some(rows.clone()));
        assert_eq!(listed_by_list(&text), rows);
    }

    #[test]
    fn an_empty_index_lists_nothing() {
        assert_eq!(fast(r#"{"version":1,"entries":{}}"#), Some(vec![]));
    }

    #[test]
    fn escapes_in_names_are_left_to_serde_and_unescaped() {
        let text =
            r#"{"version":1,"entries":{"a.example":{"server_url":"a\u00e9\"b","username":"al\\ice"}}}"#;
        assert_eq!(fast(text), None);
        assert_eq!(listed_by_list(text), vec![row("a.example", "aé\"b", "al\\ice")]);
    }

    #[test]
    fn non_ascii_names_are_read_fast() {
        let text = r#"{"version":1,"entries":{"a.example":{"server_url":"é","username":"名前"}}}"#;
        assert_eq!(fast(text), Some(vec![row("a.example", "é", "名前")]));
    }

    #[test]
    fn an_unknown_field_is_refused_as_serde_refuses_it() {
        let text = r#"{"version":1,"entries":{"a":{"server_url":"a","username":"u","secret":"s"}}}"#;
        assert_eq!(fast(text), None);
        let err = listing_of(Path::new("index.json"), text.as_bytes().to_vec()).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
        assert!(!err.contains("\"s\""), "{err}");
    }

    #[test]
    fn a_duplicate_key_is_left_to_serde_which_keeps_the_last() {
        let text = r#"{"version":1,"entries":{"a":{"server_url":"1","username":"u"},"a":{"server_url":"2","username":"v"}}}"#;
        assert_eq!(fast(text), None);
        assert_eq!(listed_by_list(text), vec![row("a", "2", "v")]);
    }

    #[test]
    fn unsorted_keys_are_left_to_serde_which_sorts_them() {
        let text = r#"{"version":1,"entries":{"b":{"server_url":"b","username":"u"},"a":{"server_url":"a","username":"v"}}}"#;
        assert_eq!(fast(text), None);
        assert_eq!(listed_by_list(text), vec![row("a", "a", "v"), row("b", "b", "u")]);
    }

    #[test]
    fn a_duplicate_field_is_refused_as_serde_refuses_it() {
        // Also a repeated name right before another field's name: read on
        // from the repeated name, the two once looked like one field.
        for entry in [
            r#"{"server_url":"a","username":"u","username":"v"}"#,
            r#"{"server_url":"a","server_url""username":"u"}"#,
            r#"{"server_url":"a","server_url" "kind":"credential","username":"u"}"#,
            r#"{"server_url":"a","username":"u","username""kind":"credential"}"#,
        ] {
            let text = format!(r#"{{"version":1,"entries":{{"a":{entry}}}}}"#);
            assert_eq!(fast(&text), None, "{entry}");
            let err = listing_of(Path::new("index.json"), text.into_bytes()).unwrap_err().to_string();
            assert!(err.contains("duplicate field"), "{entry}: {err}");
        }
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_the_file_and_position() {
        let text = &COMPACT[..COMPACT.len() - 20];
        assert_eq!(fast(text), None);
        let err = listing_of(Path::new("index.json"), text.as_bytes().to_vec()).unwrap_err().to_string();
        assert!(err.contains("index.json") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn another_version_is_an_error() {
        let text = COMPACT.replace(r#""version":1"#, r#""version":2"#);
        assert_eq!(fast(&text), None);
        let err = listing_of(Path::new("index.json"), text.into_bytes()).unwrap_err().to_string();
        assert!(err.contains("unsupported version 2"), "{err}");
    }

    #[test]
    fn a_version_that_only_starts_with_one_is_not_version_one() {
        for v in ["10", "1.0", "1e0", "01"] {
            let text = COMPACT.replace(r#""version":1"#, &format!(r#""version":{v}"#));
            assert_eq!(fast(&text), None, "{v}");
            assert!(listing_of(Path::new("index.json"), text.into_bytes()).is_err(), "{v}");
        }
    }

    #[test]
    fn an_unknown_kind_is_refused_as_serde_refuses_it() {
        let text = COMPACT.replace(r#""kind":"credential""#, r#""kind":"password""#);
        assert_eq!(fast(&text), None);
        assert!(listing_of(Path::new("index.json"), text.into_bytes()).is_err());
    }

    #[test]
    fn trailing_bytes_after_the_object_are_refused() {
        let text = format!("{COMPACT} x");
        assert_eq!(fast(&text), None);
        assert!(listing_of(Path::new("index.json"), text.into_bytes()).is_err());
    }

    #[test]
    fn a_raw_control_character_in_a_string_is_refused() {
        let text = COMPACT.replace("alice", "al\u{1}ice");
        assert_eq!(fast(&text), None);
        assert!(listing_of(Path::new("index.json"), text.into_bytes()).is_err());
    }

    #[test]
    fn raw_whitespace_inside_a_string_is_refused() {
        for ws in ["\n", "\t", "\r"] {
            let text = COMPACT.replace("alice\"", &format!("alice{ws}\""));
            assert_eq!(fast(&text), None, "{ws:?}");
            assert!(listing_of(Path::new("index.json"), text.into_bytes()).is_err(), "{ws:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut bytes = COMPACT.as_bytes().to_vec();
        let at = COMPACT.find("alice").unwrap();
        bytes[at] = 0xff;
        assert!(Listing::read(bytes.clone()).is_err());
        assert!(listing_of(Path::new("index.json"), bytes).is_err());
    }

    #[test]
    fn a_string_ends_at_its_first_quote_backslash_or_control_at_any_offset() {
        for len in 0..20 {
            for stop in [b'"', b'\\', 0x00, 0x1f] {
                let mut bytes = vec![b'a'; len];
                bytes.extend([stop, b'"', b'b']);
                assert_eq!(end_of_plain(&bytes), len, "{len} {stop}");
            }
            // Bytes at or above 0x20 (DEL and UTF-8 included) are plain.
            let bytes: Vec<u8> = [0x20, 0x7f, 0xc3, 0xa9, 0xff].iter().copied().cycle().take(len).collect();
            assert_eq!(end_of_plain(&bytes), len, "{len}");
        }
    }

    #[test]
    fn contains_key_finds_exactly_the_stored_keys() {
        let listing = Listing::read(COMPACT.as_bytes().to_vec()).unwrap();
        assert!(listing.contains_key("a.example") && listing.contains_key("b.example"));
        assert!(!listing.contains_key("a.exampl") && !listing.contains_key("c.example"));
    }
}
