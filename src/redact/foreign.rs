//! Another program's output, which may hold secrets this process never
//! held (a credential helper echoing a password it was given, a token it
//! keeps), shown only as a short excerpt: lines that assign a secret-like
//! key are dropped whole, and long opaque words and well-known token
//! formats are redacted, besides everything [`super::redact`] removes.

use super::{MARK, marks, one_line, replace_marked, truncate};

/// The longest excerpt of another program's output that messages show.
pub const MAX_EXCERPT: usize = 120;

/// Key words that make `key=value` (or `key: value`) a secret's line.
const SECRET_KEYS: [&str; 10] =
    ["pass", "pwd", "secret", "token", "auth", "cred", "key", "cookie", "session", "bearer"];

/// Prefixes of well-known token formats (GitHub, GitLab, Slack, AWS).
const TOKEN_PREFIXES: [&str; 9] =
    ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "AKIA"];

/// Another program's output (a credential helper's error, which may echo
/// anything it was given or holds) as a short excerpt for a message:
/// every line that assigns a value to a secret-like key (`password=…`,
/// `"Secret": "…"`, `token: …`) is dropped whole, long opaque words and
/// well-known token formats are redacted as well as everything [`super::redact`]
/// removes, and what is left is one line of at most `max_chars`
/// characters. Foreign text gets this stricter treatment because nothing
/// was remembered of the secrets it may hold.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let lines: Vec<String> =
        text.lines().map(|l| if is_secret_assignment(l) { MARK.to_owned() } else { l.to_owned() }).collect();
    let kept = lines.join("\n");
    // One pass of marks over the text, so that a run one rule marks does
    // not cut a word that another rule would have taken whole.
    let mut covered = marks(&kept);
    mark_opaque_words(&kept, &mut covered);
    truncate(&one_line(&replace_marked(&kept, &covered)), max_chars)
}

/// Whether `line` sets a secret-like key: `key=value` with any value, or
/// `key: value` (quoted or not) whose value looks like a secret rather
/// than a word (`pass: store not initialized` is an error, not a secret).
fn is_secret_assignment(line: &str) -> bool {
    let bytes = line.as_bytes();
    for (at, &sep) in bytes.iter().enumerate() {
        if sep != b'=' && sep != b':' {
            continue;
        }
        let before = line[..at].trim_end().trim_end_matches(['"', '\'']);
        let key_start = before
            .bytes()
            .rposition(|b| !(b.is_ascii_alphanumeric() || b"_-".contains(&b)))
            .map_or(0, |p| p + 1);
        let key = before[key_start..].to_ascii_lowercase();
        if key.is_empty() || !SECRET_KEYS.iter().any(|k| key.contains(k)) {
            continue;
        }
        let value = line[at + 1..].trim_start().trim_start_matches(['"', '\'']);
        let word: &str = value.split(|c: char| c.is_whitespace() || "\"',;".contains(c)).next().unwrap_or("");
        if word.is_empty() || word.starts_with("//") {
            continue;
        }
        if sep == b'=' || looks_secret(word) {
            return true;
        }
    }
    false
}

/// A word that is not an ordinary word: long and mixed, or with digits or
/// symbols among letters.
fn looks_secret(word: &str) -> bool {
    let letters = word.bytes().filter(u8::is_ascii_alphabetic).count();
    let others = word.len() - letters;
    let mixed_case =
        word.bytes().any(|b| b.is_ascii_uppercase()) && word.bytes().any(|b| b.is_ascii_lowercase());
    word.len() >= 6 && (others > 0 || mixed_case) && letters > 0
}

/// Words of at least 20 characters mixing letters and digits with no
/// dots or spaces (tokens, keys, base64), and words that start like a
/// well-known token.
fn mark_opaque_words(text: &str, covered: &mut [bool]) {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b"_-+/=~".contains(&b);
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !is_word(bytes[start]) {
            start += 1;
            continue;
        }
        let end = start + bytes[start..].iter().take_while(|&&b| is_word(b)).count();
        let word = &text[start..end];
        let digits = word.bytes().any(|b| b.is_ascii_digit());
        let letters = word.bytes().any(|b| b.is_ascii_alphabetic());
        let known = word.len() >= 12 && TOKEN_PREFIXES.iter().any(|p| word.starts_with(p));
        if known || (word.len() >= 20 && digits && letters) {
            covered[start..end].fill(true);
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_drops_every_line_that_assigns_a_secret() {
        let out = excerpt(
            "login failed\nuser=bob password=PlainPw999\n{\"Secret\": \"s3cr3t-V4lue\"}\ntoken: Zq81xx",
            500,
        );
        assert_eq!(out, "login failed [REDACTED] [REDACTED] [REDACTED]");
    }

    #[test]
    fn an_excerpt_keeps_an_error_that_only_names_a_secret_like_word() {
        for line in [
            "pass: store not initialized",
            "cannot read token: permission denied",
            "gpg: no secret key",
            "cannot reach https://auth.example.com:443/token",
        ] {
            assert_eq!(excerpt(line, 500), line);
        }
    }

    #[test]
    fn an_excerpt_redacts_tokens_it_was_never_told_of() {
        let out = excerpt("bad credentials ghp_16C7e42F292c6912E7710c838347Ae178B4a for docker.io", 500);
        assert_eq!(out, "bad credentials [REDACTED] for docker.io");
        assert_eq!(excerpt("key id 0123456789abcdefABCDEF0123", 500), "key id [REDACTED]");
        assert_eq!(
            excerpt("/usr/bin/docker-credential-pass failed", 500),
            "/usr/bin/docker-credential-pass failed"
        );
    }

    #[test]
    fn an_excerpt_is_one_short_line() {
        let out = excerpt(&"word ".repeat(100), MAX_EXCERPT);
        assert_eq!(out.chars().count(), MAX_EXCERPT);
        assert!(!out.contains('\n'));
    }
}
