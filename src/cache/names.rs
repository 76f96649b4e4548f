//! The names of the files the cache makes, and nothing else. The cache
//! directory may be one the user named (a project folder, `/tmp`), so
//! pruning and `cache clear` recognise a file by this grammar before they
//! touch it, and leave every other file alone.
//!
//! - `<r>-<k>.json`: a cached token (`r` 16 and `k` 32 lower-case hex digits)
//! - `<r>-<k>.lock`: its single-flight lock
//! - `<r>.generation`: the registry's login generation (and its lock)
//! - `<r>-<k>.failure`: the last failed exchange of a key (remembered)
//! - `<q>.failure`: the last failure of a request (`q` 16 hex digits)
//! - `.<one of the above>.<6 characters>.dce-tmp`: a write in progress

/// A file of the cache, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CacheFile {
    /// A cached token.
    Entry,
    /// A token's lock file.
    Lock,
    /// A registry's generation file.
    Generation,
    /// A request's last failure.
    Failure,
    /// A key's last failed exchange.
    ExchangeFailure,
    /// A temporary file of a write.
    Temporary,
}

/// The kind of a file in the cache directory, `None` if the cache did not
/// make it.
pub(super) fn parse(name: &str) -> Option<CacheFile> {
    if let Some(tmp) = name.strip_prefix('.').and_then(|n| n.strip_suffix(crate::fsutil::TMP_SUFFIX)) {
        let (target, random) = tmp.rsplit_once('.')?;
        let ours = random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric());
        return (ours && !matches!(parse(target)?, CacheFile::Temporary)).then_some(CacheFile::Temporary);
    }
    let (stem, extension) = name.rsplit_once('.')?;
    match extension {
        "json" if is_entry_stem(stem) => Some(CacheFile::Entry),
        "lock" if is_entry_stem(stem) => Some(CacheFile::Lock),
        "generation" if is_hex(stem, 16) => Some(CacheFile::Generation),
        "failure" if is_hex(stem, 16) => Some(CacheFile::Failure),
        "failure" if is_entry_stem(stem) => Some(CacheFile::ExchangeFailure),
        _ => None,
    }
}

fn is_entry_stem(stem: &str) -> bool {
    stem.split_once('-').is_some_and(|(r, k)| is_hex(r, 16) && is_hex(k, 32))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "0123456789abcdef";
    const K: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_caches_own_names_are_recognised() {
        assert_eq!(parse(&format!("{R}-{K}.json")), Some(CacheFile::Entry));
        assert_eq!(parse(&format!("{R}-{K}.lock")), Some(CacheFile::Lock));
        assert_eq!(parse(&format!("{R}.generation")), Some(CacheFile::Generation));
        assert_eq!(parse(&format!("{R}.failure")), Some(CacheFile::Failure));
        assert_eq!(parse(&format!("{R}-{K}.failure")), Some(CacheFile::ExchangeFailure));
        assert_eq!(parse(&format!(".{R}-{K}.json.aB3dE9.dce-tmp")), Some(CacheFile::Temporary));
    }

    #[test]
    fn a_users_files_are_never_taken_for_the_caches() {
        for name in [
            "package.json",
            "config.json",
            "notes.lock",
            "Cargo.lock",
            &format!("{R}-{K}.JSON"),
            &format!("{R}-{}.json", &K[..31]),
            ".package.json.aB3dE9.dce-tmp",
            ".tmp-abc",
            "failure",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }
}
