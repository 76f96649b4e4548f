//! The one redaction step that every message and log line passes through
//! before it leaves the process: on stdout for Docker, on stderr for people,
//! in the log file, and in the failure records kept beside the cache.
//!
//! What is removed:
//! - every secret this process has held ([`remember`] is called by
//!   [`crate::secret::Secret::new`]), whole or in part, as it is and as
//!   base64 or percent-encoding would show it: a server that echoes the
//!   first 30 characters of a login token, or the token base64-encoded, in
//!   its error must not leak them, so any run of [`WINDOW`] bytes taken
//!   from a long secret (or its encodings) is redacted too;
//! - credentials in URLs (`scheme://user:password@host`, `user:pw@host`)
//!   and after `Basic ` or `Bearer ` (an echoed `Authorization` header);
//! - anything shaped like a JWT, which is a bearer credential whoever sent it.
//!
//! Another program's output (a credential helper's error) is shown only as
//! a short [`excerpt`], redacted more strictly (see [`foreign`]).
//!
//! Redaction comes first and shortening after, never the other way round:
//! cutting a message first could leave the head of a token that no longer
//! matches the token as a whole.

use std::collections::HashSet;
use std::sync::Mutex;

use zeroize::Zeroizing;

mod foreign;

pub use foreign::{MAX_EXCERPT, excerpt};

/// Secrets shorter than this are not redacted: they would blank out
/// ordinary words, and no registry credential is that short.
const MIN_EXACT: usize = 4;
/// Secrets at least this long are also redacted in part.
const MIN_PARTIAL: usize = 16;
/// A partial echo is any run of this many bytes taken from a long secret.
/// Eight base64 characters are 48 bits: no ordinary message contains such
/// a run by chance.
pub const WINDOW: usize = 8;
/// What a redacted run is replaced with.
pub const MARK: &str = "[REDACTED]";
/// The longest line a message is cut to at the edges.
pub const MAX_LINE: usize = 1000;

static KNOWN: Mutex<Vec<Zeroizing<String>>> = Mutex::new(Vec::new());

/// Has every later message redact `secret`.
pub fn remember(secret: &str) {
    let body = pem_body(secret);
    let secret = body.as_deref().map_or(secret, |b| b.as_str());
    if secret.len() < MIN_EXACT {
        return;
    }
    let mut known = KNOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !known.iter().any(|k| k.as_str() == secret) {
        known.push(Zeroizing::new(secret.to_owned()));
    }
}

/// The secret part of a PEM document (a client key read from its source):
/// every line but the armour (`-----BEGIN PRIVATE KEY-----`) and the
/// legacy encryption headers, joined. The armour is no secret, and
/// remembered with the key its runs would cut the label out of every later
/// message that names one ("expected -----BEGIN PRIVATE KEY-----"). `None`
/// for anything that is not armoured, or whose body is too short to stand
/// for it: then the text is remembered whole.
fn pem_body(text: &str) -> Option<Zeroizing<String>> {
    if !text.contains("-----BEGIN ") || !text.contains("-----END ") {
        return None;
    }
    let mut body = Zeroizing::new(String::with_capacity(text.len()));
    for line in text.lines().map(str::trim) {
        let armour =
            ["-----BEGIN ", "-----END ", "Proc-Type:", "DEK-Info:"].iter().any(|p| line.starts_with(p));
        if !armour {
            body.push_str(line);
        }
    }
    (body.len() >= MIN_PARTIAL).then_some(body)
}

/// Forgets every remembered secret. Only the fuzzer needs this: it makes
/// a secret per input, and a list that grows for millions of inputs would
/// slow every later run to a crawl. A real process holds a handful.
#[cfg(fuzzing)]
pub fn forget_all() {
    KNOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
}

/// `text` redacted, on one line, cut to [`MAX_LINE`] characters: the form
/// in which every message leaves the process.
pub fn line(text: &str) -> String {
    bounded(text, MAX_LINE)
}

/// An error and its causes as one text, each cause once: `what failed:
/// why`. Errors here carry their cause in their own message (so that
/// `to_string` alone says why) and also as their `source`; printing the
/// chain naively would say every cause twice.
pub fn chain<'a>(errors: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut text = String::new();
    for error in errors {
        let own = error.to_string();
        if text.is_empty() {
            text = own;
        } else if !text.contains(&own) {
            text.push_str(": ");
            text.push_str(&own);
        }
    }
    text
}

/// `text` redacted, on one line, cut to `max_chars` characters with `…`.
pub fn bounded(text: &str, max_chars: usize) -> String {
    truncate(&one_line(&redact(text)), max_chars)
}

/// `text` with every secret, URL credential and JWT replaced by [`MARK`];
/// line breaks are kept.
pub fn redact(text: &str) -> String {
    replace_marked(text, &marks(text))
}

/// Which bytes of `text` [`redact`] replaces.
fn marks(text: &str) -> Vec<bool> {
    let mut covered = vec![false; text.len()];
    {
        let known = KNOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !known.is_empty() {
            // The encodings are made here, on the rare path that redacts,
            // not when a secret is made (every cache hit makes one).
            let forms: Vec<Zeroizing<String>> = known.iter().flat_map(|s| encodings(s)).collect();
            mark_secrets(
                text,
                known.iter().map(|s| s.as_str()).chain(forms.iter().map(|s| s.as_str())),
                &mut covered,
            );
        }
    }
    mark_url_credentials(text, &mut covered);
    mark_auth_schemes(text, &mut covered);
    mark_jwts(text, &mut covered);
    covered
}

fn mark_secrets<'a>(text: &str, secrets: impl Iterator<Item = &'a str> + Clone, covered: &mut [bool]) {
    for secret in secrets.clone() {
        for (at, _) in text.match_indices(secret) {
            covered[at..at + secret.len()].fill(true);
        }
    }
    let windows: HashSet<&[u8]> =
        secrets.filter(|s| s.len() >= MIN_PARTIAL).flat_map(|s| s.as_bytes().windows(WINDOW)).collect();
    if windows.is_empty() {
        return;
    }
    for (at, window) in text.as_bytes().windows(WINDOW).enumerate() {
        if windows.contains(window) {
            covered[at..at + WINDOW].fill(true);
        }
    }
}

/// How a secret looks when a server echoes it encoded: standard and
/// URL-safe base64 (padded or not) and percent-encoding.
fn encodings(secret: &str) -> Vec<Zeroizing<String>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out: Vec<Zeroizing<String>> = vec![
        Zeroizing::new(STANDARD.encode(secret)),
        Zeroizing::new(STANDARD_NO_PAD.encode(secret)),
        Zeroizing::new(URL_SAFE_NO_PAD.encode(secret)),
        Zeroizing::new(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect()),
    ];
    out.retain(|form| form.as_str() != secret);
    out.dedup();
    out
}

/// The credential after `Basic ` or `Bearer ` (case-insensitive), as an
/// echoed `Authorization` header shows it.
fn mark_auth_schemes(text: &str, covered: &mut [bool]) {
    let lower = text.to_ascii_lowercase();
    for scheme in ["basic ", "bearer "] {
        for (at, _) in lower.match_indices(scheme) {
            let start = at + scheme.len();
            let len = text.as_bytes()[start..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(b))
                .count();
            if len >= MIN_EXACT {
                covered[start..start + len].fill(true);
            }
        }
    }
}

/// `user:password@` before a host, with or without a scheme. One pass:
/// server text is untrusted, and a quadratic scan of a megabyte of `@`
/// would outlive any deadline.
fn mark_url_credentials(text: &str, covered: &mut [bool]) {
    let mut token_start = 0;
    let mut last_colon = None;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        match b {
            b'@' if last_colon.is_some_and(|c| c >= token_start) => covered[token_start..i].fill(true),
            b':' => last_colon = Some(i),
            b if b.is_ascii_whitespace() || b"/\"'<>(),;[]{}".contains(&b) => token_start = i + 1,
            _ => {}
        }
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `eyJ…` header, a dot, a payload, a dot and an optional signature.
fn mark_jwts(text: &str, covered: &mut [bool]) {
    let bytes = text.as_bytes();
    // Each byte is scanned once: a start inside a run already scanned is
    // skipped (text of many "eyJ" would otherwise be quadratic).
    let mut scanned_until = 0;
    for (start, _) in text.match_indices("eyJ") {
        if start < scanned_until || (start > 0 && is_b64url(bytes[start - 1])) {
            continue;
        }
        let run = |from: usize| from + bytes[from..].iter().take_while(|&&b| is_b64url(b)).count();
        let header_end = run(start);
        scanned_until = header_end;
        if bytes.get(header_end) != Some(&b'.') {
            continue;
        }
        let payload_end = run(header_end + 1);
        scanned_until = payload_end;
        if payload_end == header_end + 1 || bytes.get(payload_end) != Some(&b'.') {
            continue;
        }
        let end = run(payload_end + 1);
        scanned_until = end;
        if end - start >= MIN_PARTIAL {
            covered[start..end].fill(true);
        }
    }
}

/// Replaces each maximal marked run, widened to whole characters, by one
/// [`MARK`].
fn replace_marked(text: &str, covered: &[bool]) -> String {
    if !covered.contains(&true) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_mark = false;
    for (at, c) in text.char_indices() {
        if covered[at..at + c.len_utf8()].contains(&true) {
            if !in_mark {
                out.push_str(MARK);
                in_mark = true;
            }
        } else {
            in_mark = false;
            out.push(c);
        }
    }
    out
}

/// Control characters and line breaks become spaces, runs of whitespace
/// one space: Docker shows the first line of an error, so the line must
/// hold it all.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// At most `max_chars` characters, the last one `…` when something was cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((at, _)) if text[at..].chars().nth(1).is_some() => {
            let mut out = text[..at].to_owned();
            out.push('…');
            out
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tok-0123456789abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn a_remembered_secret_is_redacted_whole() {
        remember("hunter2-secret");
        assert_eq!(redact("password hunter2-secret rejected"), "password [REDACTED] rejected");
    }

    #[test]
    fn a_partial_echo_of_a_long_secret_is_redacted() {
        remember(TOKEN);
        let echoed = &TOKEN[5..29];
        let out = redact(&format!("bad token '{echoed}…'"));
        assert!(!out.contains(&echoed[..WINDOW]), "{out}");
        assert_eq!(out, "bad token '[REDACTED]…'");
    }

    #[test]
    fn redaction_comes_before_shortening() {
        remember(TOKEN);
        let message = format!("the server says: {TOKEN}{TOKEN}");
        let out = bounded(&message, 30);
        assert!(!out.contains("0123456"), "{out}");
        assert!(out.chars().count() <= 30);
    }

    #[test]
    fn a_pem_keys_body_is_redacted_and_its_armour_is_not() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpem0body0line0one\n\
                   hRANCAAQpem0body0line0two0Zq8vX3mK1w\n-----END PRIVATE KEY-----\n";
        remember(key);
        assert_eq!(
            redact("holds no key (expected -----BEGIN PRIVATE KEY-----, EC PRIVATE KEY)"),
            "holds no key (expected -----BEGIN PRIVATE KEY-----, EC PRIVATE KEY)"
        );
        assert_eq!(redact("echoed MIGHAgEAMBMGByqGSM49 back"), "echoed [REDACTED] back");
        // Its lines run together, as a server that strips newlines echoes them.
        assert_eq!(redact("got Qgpem0body0line0onehRANCAAQpem0body0"), "got [REDACTED]");
        assert_eq!(
            redact(key),
            "-----BEGIN PRIVATE KEY-----\n[REDACTED]\n[REDACTED]\n-----END PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn a_secret_that_only_mentions_pem_armour_is_remembered_whole() {
        // (Through `pem_body` alone: remembering these would redact runs
        // of dashes in the other tests of this process.)
        for text in [
            "no armour at all, a password",
            "-----BEGIN hunter3-----END x",
            "-----BEGIN A-----\nshort\n-----END A-----",
        ] {
            assert!(pem_body(text).is_none(), "{text}");
        }
    }

    #[test]
    fn short_secrets_are_not_redacted_inside_words() {
        remember("abc");
        assert_eq!(redact("abcdef"), "abcdef");
    }

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(redact("get alice:pw4@registry.example.com"), "get [REDACTED]@registry.example.com");
        assert_eq!(redact("https://u:p@h/x"), "https://[REDACTED]@h/x");
        assert_eq!(redact("mail alice@example.com"), "mail alice@example.com");
    }

    #[test]
    fn a_secret_echoed_in_base64_or_percent_encoding_is_redacted() {
        use base64::Engine as _;
        let secret = "encoded-secret-value-0123456789";
        remember(secret);
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        assert_eq!(redact(&format!("got {b64}")), "got [REDACTED]");
        assert_eq!(redact("got encoded-secret-value-0123456789%21"), "got [REDACTED]%21");
    }

    #[test]
    fn an_echoed_authorization_header_is_redacted() {
        assert_eq!(
            redact("got Authorization: Basic ZG9ja2VyOnNlY3JldA=="),
            "got Authorization: Basic [REDACTED]"
        );
        assert_eq!(redact("bearer abcd1234efgh"), "bearer [REDACTED]");
    }

    #[test]
    fn jwt_shaped_strings_are_redacted() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        assert_eq!(redact(&format!("token {jwt} expired")), "token [REDACTED] expired");
    }

    #[test]
    fn multi_byte_text_around_a_secret_stays_valid() {
        remember("ünïcødé-secret");
        assert_eq!(redact("«ünïcødé-secret»"), "«[REDACTED]»");
    }

    #[test]
    fn one_line_joins_lines_and_drops_control_characters() {
        assert_eq!(one_line("a\n  b\r\nc\u{1b}[31m"), "a b c [31m");
    }

    #[test]
    fn a_cause_already_in_its_error_message_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read stdin: {0}")]
        struct Outer(#[from] std::io::Error);
        let outer = Outer::from(std::io::Error::other("is larger than 1048576 bytes"));
        let text =
            chain(std::iter::successors(Some(&outer as &(dyn std::error::Error + 'static)), |e| e.source()));
        assert_eq!(text, "cannot read stdin: is larger than 1048576 bytes");
    }

    #[test]
    fn a_cause_not_in_its_error_message_is_appended() {
        let error =
            anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write config.json");
        assert_eq!(chain(error.chain()), "cannot write config.json: disk full");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("äöüß", 3), "äö…");
    }
}
