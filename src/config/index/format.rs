//! The index file's layout: a header that names the writer, the config
//! file and its identity, then a fixed-size record per entry, the entries
//! sorted by key for a binary search, and the strings. Decoding checks the
//! whole file once (a checksum and the bounds of each table); the
//! accessors check every offset again, so even a crafted file cannot make
//! them panic.

use std::path::Path;

use super::super::{Config, EntryId, TextBody};
use super::Identity;
use crate::config::StoreKind;

/// What an index file starts with.
const MAGIC: &[u8; 8] = b"dce-cidx";
/// The layout and meaning of what follows; bump on any change to either.
const FORMAT: u32 = 1;
/// The build that wrote an index: another build may read a config
/// differently (a new top-level field), so it makes its own.
const WRITER: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("DCE_BUILD_COMMIT"));
/// "None" in a 32-bit field.
const NONE: u32 = u32::MAX;
/// Header: magic, format, checksum, then the checksummed rest.
const CHECKED_FROM: usize = 8 + 4 + 8;
/// A record: name, key, value span, line, column, username (offset and
/// length each), and the entry that shares the key.
const RECORD_FIELDS: usize = 11;
const RECORD_BYTES: usize = RECORD_FIELDS * 4;

/// A checksum for damage, not for an adversary (anyone who can write the
/// cache directory can write the index): eight bytes a step, so checking a
/// 1000-entry index costs a few tens of thousands of instructions.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = 0x243f_6a88_85a3_08d3 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    let mut step = |w: u64| {
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 29;
    };
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        step(u64::from_le_bytes(word));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    step(u64::from_le_bytes(tail));
    h
}

/// The index's bytes for a config read whole. Layout (little-endian):
/// magic, format, checksum of the rest; then the writer, the config's
/// path and identity, the byte-order mark's length, the store choice,
/// the entry count, one record per entry in file order, the entries'
/// positions sorted by normalized key (then position), and the strings.
pub(super) fn encode(
    config: &Config,
    text: &TextBody,
    path: &Path,
    identity: &Identity,
    text_offset: usize,
) -> Option<Vec<u8>> {
    let n = text.entries.len();
    let mut strings = String::new();
    let mut add = |s: &str| -> Option<(u32, u32)> {
        let at = u32::try_from(strings.len()).ok()?;
        strings.push_str(s);
        Some((at, u32::try_from(s.len()).ok()?))
    };
    // Entries by normalized key, then position: runs of one key are the
    // entries that name the same registry.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| config.key_str(a).cmp(config.key_str(b)));
    let mut same_key = vec![NONE; n];
    for run in order.chunk_by(|&a, &b| config.key_str(a) == config.key_str(b)).filter(|r| r.len() > 1) {
        for &i in run {
            // The first other entry in file order, as a full read reports.
            let other = if run[0] == i { run[1] } else { run[0] };
            same_key[i] = u32::try_from(other).ok()?;
        }
    }
    let mut records = Vec::with_capacity(n * RECORD_BYTES);
    let mut lines = LineCounter::default();
    for (i, entry) in text.entries.iter().enumerate() {
        let name = add(config.name(EntryId(i)))?;
        let key = if entry.normalized { name } else { add(config.key_str(i))? };
        let (line, column) = lines.position(text.text.as_bytes(), entry.span.0);
        let username = match config.username_of(EntryId(i)) {
            Some(u) => add(&u)?,
            None => (NONE, 0),
        };
        let fields = [
            name.0,
            name.1,
            key.0,
            key.1,
            u32::try_from(entry.span.0).ok()?,
            u32::try_from(entry.span.1).ok()?,
            u32::try_from(line).ok()?,
            u32::try_from(column).ok()?,
            username.0,
            username.1,
            same_key[i],
        ];
        for v in fields {
            records.extend_from_slice(&v.to_le_bytes());
        }
    }
    let mut out = Vec::with_capacity(128 + records.len() + 4 * n + strings.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    let bytes = |out: &mut Vec<u8>, b: &[u8]| -> Option<()> {
        out.extend_from_slice(&u32::try_from(b.len()).ok()?.to_le_bytes());
        out.extend_from_slice(b);
        Some(())
    };
    bytes(&mut out, WRITER.as_bytes())?;
    bytes(&mut out, path.as_os_str().as_encoded_bytes())?;
    identity.encode(&mut out);
    out.extend_from_slice(&u32::try_from(text_offset).ok()?.to_le_bytes());
    out.push(match config.store {
        None => 0,
        Some(StoreKind::Keyring) => 1,
        Some(StoreKind::File) => 2,
    });
    out.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
    out.extend_from_slice(&records);
    for i in order {
        out.extend_from_slice(&u32::try_from(i).ok()?.to_le_bytes());
    }
    bytes(&mut out, strings.as_bytes())?;
    let sum = checksum(&out[CHECKED_FROM..]);
    out[12..CHECKED_FROM].copy_from_slice(&sum.to_le_bytes());
    Some(out)
}

/// Lines and columns of increasing offsets, in one pass over the text.
#[derive(Default)]
pub(super) struct LineCounter {
    at: usize,
    line: usize,
    line_start: usize,
}

impl LineCounter {
    /// As [`crate::json::line_column`].
    pub(super) fn position(&mut self, text: &[u8], offset: usize) -> (usize, usize) {
        if offset < self.at || offset > text.len() {
            return crate::json::line_column(text, offset);
        }
        let between = &text[self.at..offset];
        self.line += between.iter().filter(|&&b| b == b'\n').count();
        if let Some(last) = between.iter().rposition(|&b| b == b'\n') {
            self.line_start = self.at + last + 1;
        }
        self.at = offset;
        (self.line + 1, offset - self.line_start + 1)
    }
}

/// A decoded index, checked whole; its accessors still check every
/// offset, so even a crafted one cannot make them panic.
#[derive(Debug)]
pub(in crate::config) struct Index {
    bytes: Vec<u8>,
    count: usize,
    records: usize,
    sorted: usize,
    strings: usize,
    store: Option<StoreKind>,
    text_offset: usize,
}

/// Reads little-endian numbers off the front of a slice.
struct Cursor<'a>(&'a [u8], usize);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let out = self.0.get(self.1..self.1.checked_add(n)?)?;
        self.1 += n;
        Some(out)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn sized(&mut self) -> Option<&[u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

impl Index {
    pub(super) fn decode(bytes: Vec<u8>, config: &Path, identity: &Identity) -> Option<Index> {
        let mut c = Cursor(&bytes, 0);
        if c.take(8)? != MAGIC || c.u32()? != FORMAT {
            return None;
        }
        let sum = c.u64()?;
        if checksum(bytes.get(CHECKED_FROM..)?) != sum
            || c.sized()? != WRITER.as_bytes()
            || c.sized()? != config.as_os_str().as_encoded_bytes()
        {
            return None;
        }
        let mut recorded = Vec::with_capacity(56);
        identity.encode(&mut recorded);
        if c.take(recorded.len())? != recorded {
            return None;
        }
        let text_offset = c.u32()? as usize;
        let store = match c.take(1)?[0] {
            0 => None,
            1 => Some(StoreKind::Keyring),
            2 => Some(StoreKind::File),
            _ => return None,
        };
        let count = c.u32()? as usize;
        let records = c.1;
        c.take(count.checked_mul(RECORD_BYTES)?)?;
        let sorted = c.1;
        c.take(count.checked_mul(4)?)?;
        let strings_len = c.u32()? as usize;
        let strings = c.1;
        c.take(strings_len)?;
        if c.1 != bytes.len() || std::str::from_utf8(&bytes[strings..]).is_err() {
            return None;
        }
        Some(Index { bytes, count, records, sorted, strings, store, text_offset })
    }

    pub(in crate::config) fn len(&self) -> usize {
        self.count
    }

    pub(in crate::config) fn store(&self) -> Option<StoreKind> {
        self.store
    }

    /// Where the text the spans count from starts in the file (after a
    /// byte-order mark).
    pub(in crate::config) fn text_offset(&self) -> usize {
        self.text_offset
    }

    fn field(&self, i: usize, f: usize) -> u32 {
        let at = self.records + i * RECORD_BYTES + f * 4;
        self.bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map_or(NONE, u32::from_le_bytes)
    }

    fn bytes_of(&self, i: usize, f: usize) -> Option<&[u8]> {
        let (at, len) = (self.field(i, f), self.field(i, f + 1));
        if at == NONE {
            return None;
        }
        let start = self.strings.checked_add(at as usize)?;
        self.bytes.get(start..start.checked_add(len as usize)?)
    }

    fn string(&self, i: usize, f: usize) -> Option<&str> {
        std::str::from_utf8(self.bytes_of(i, f)?).ok()
    }

    /// The key of entry `i` as written.
    pub(in crate::config) fn name(&self, i: usize) -> &str {
        self.string(i, 0).unwrap_or("")
    }

    /// The normalized key of entry `i`.
    pub(in crate::config) fn key(&self, i: usize) -> &str {
        self.string(i, 2).unwrap_or("")
    }

    /// Where entry `i`'s value lies in the text.
    pub(in crate::config) fn span(&self, i: usize) -> (usize, usize) {
        (self.field(i, 4) as usize, self.field(i, 5) as usize)
    }

    /// The line and column where entry `i`'s value starts.
    pub(in crate::config) fn position(&self, i: usize) -> (usize, usize) {
        (self.field(i, 6) as usize, self.field(i, 7) as usize)
    }

    /// Entry `i`'s `username`, as [`Config::username_of`] reads it.
    pub(in crate::config) fn username(&self, i: usize) -> Option<&str> {
        self.string(i, 8)
    }

    /// The first other entry, in file order, whose key names the same
    /// registry as entry `i`'s.
    pub(in crate::config) fn same_key(&self, i: usize) -> Option<usize> {
        Some(self.field(i, 10)).filter(|&o| o != NONE && (o as usize) < self.count).map(|o| o as usize)
    }

    fn sorted(&self, k: usize) -> usize {
        let at = self.sorted + k * 4;
        self.bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize)
    }

    /// The first entry, in file order, whose normalized key is `key`:
    /// a binary search over the sorted positions.
    fn find(&self, key: &[u8]) -> Option<usize> {
        let key_of = |i| self.bytes_of(i, 2).unwrap_or_default();
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key_of(self.sorted(mid)) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < self.count).then(|| self.sorted(lo)).filter(|&i| key_of(i) == key)
    }

    /// As [`Config::lookup`]: the longest key that is `url` or a prefix of
    /// it on whole path segments, found by looking up each such prefix,
    /// longest first.
    pub(in crate::config) fn lookup(&self, url: &str) -> Option<usize> {
        let mut prefix = url.as_bytes();
        loop {
            if let Some(i) = self.find(prefix) {
                return Some(i);
            }
            prefix = &prefix[..prefix.iter().rposition(|&b| b == b'/')?];
        }
    }
}
