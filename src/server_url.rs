//! Server URLs as Docker passes them, and the normalized form under which
//! the helper files credentials.
//!
//! Docker is not consistent about how it names a registry: `docker login h`
//! stores under `h`, `docker logout` erases `h`, `http://h` and `https://h`
//! in turn, and Docker Hub appears as `https://index.docker.io/v1/`,
//! `index.docker.io`, `docker.io` or `registry-1.docker.io`. All of those
//! must find the same entry, so every lookup goes through [`ServerUrl::parse`].
//! Some clients pass the API root (`https://h/v2/`): that is the registry
//! `h`, not a repository named `v2`.

use std::fmt;

/// The key under which Docker Hub's credentials are filed.
pub const DOCKER_HUB: &str = "docker.io";

/// The name Docker itself uses for Docker Hub, reported by `list`.
pub const DOCKER_HUB_LEGACY_URL: &str = "https://index.docker.io/v1/";

const DOCKER_HUB_ALIASES: &[&str] = &["index.docker.io", "registry-1.docker.io", "docker.io"];

/// Why a server URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerUrlError {
    /// Empty after trimming: the protocol's `no credentials server URL`.
    #[error("{}", crate::protocol_strings::ERR_NO_SERVER_URL)]
    Empty,
    /// Holds characters that no registry name has (spaces, control
    /// characters, `?`, `#`); the caller reports it as bad input. The
    /// input is shown redacted and cut short.
    #[error("invalid server URL {0:?}: a registry is host[:port][/path] with no spaces, query or fragment")]
    Invalid(String),
    /// `user:password@host`: a credential in the wrong place. The input is
    /// not repeated, since it holds a password.
    #[error(
        "invalid server URL: it contains credentials (user:password@); give the registry alone, e.g. registry.example.com"
    )]
    Credentials,
}

/// A normalized registry name: `host[:port][/path]`, scheme and trailing
/// slashes dropped, host lower-cased, Docker Hub's aliases folded into
/// [`DOCKER_HUB`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerUrl {
    key: String,
    host_len: usize,
}

impl ServerUrl {
    /// Normalizes what Docker sent.
    ///
    /// # Errors
    /// [`ServerUrlError::Empty`] for an empty or blank input and
    /// [`ServerUrlError::Invalid`] for one that cannot name a registry.
    pub fn parse(raw: &str) -> Result<ServerUrl, ServerUrlError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ServerUrlError::Empty);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#' || c == '\\') {
            return Err(ServerUrlError::Invalid(truncate_for_message(trimmed)));
        }
        let without_scheme = strip_scheme(trimmed);
        let without_slash = without_scheme.trim_end_matches('/');
        let (host, path) = match without_slash.split_once('/') {
            Some((host, path)) => (host, path.trim_matches('/')),
            None => (without_slash, ""),
        };
        // Userinfo in a registry name is a credential in the wrong place.
        if host.contains('@') {
            return Err(ServerUrlError::Credentials);
        }
        if host.is_empty() || path.contains("//") {
            return Err(ServerUrlError::Invalid(truncate_for_message(trimmed)));
        }
        let host = host.to_ascii_lowercase();
        // The registry API root is the registry itself.
        let path = if path == "v2" { "" } else { path };
        // Docker Hub by any of its names, with or without a repository
        // (`registry-1.docker.io/library/nginx` is `docker.io/library/nginx`);
        // `/v1` is the legacy index URL's, not a repository.
        if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
            let path = if path == "v1" { "" } else { path };
            return Ok(ServerUrl::from_parts(DOCKER_HUB, path));
        }
        Ok(ServerUrl::from_parts(&host, path))
    }

    /// The URL of `repository` on `registry`, for a name known to be an
    /// image's (the kubelet's): there a repository may well be named `v2`,
    /// which in a client's URL [`ServerUrl::parse`] takes for the API root.
    ///
    /// # Errors
    /// `registry` is not a registry alone, or `repository` is not an OCI
    /// repository name.
    pub fn of_repository(registry: &str, repository: &str) -> Result<ServerUrl, ServerUrlError> {
        let host = ServerUrl::parse(registry)?;
        if host.repository().is_some() || !is_repository_name(repository) {
            return Err(ServerUrlError::Invalid(truncate_for_message(&format!("{registry}/{repository}"))));
        }
        Ok(ServerUrl::from_parts(host.registry(), repository))
    }

    /// A `ServerUrl` for a string that [`is_normalized`] accepts, without
    /// parsing it again.
    pub(crate) fn from_normalized(key: &str) -> ServerUrl {
        ServerUrl { key: key.to_owned(), host_len: key.find('/').unwrap_or(key.len()) }
    }

    fn from_parts(host: &str, path: &str) -> ServerUrl {
        let mut key = String::with_capacity(host.len() + 1 + path.len());
        key.push_str(host);
        if !path.is_empty() {
            key.push('/');
            key.push_str(path);
        }
        ServerUrl { key, host_len: host.len() }
    }

    /// The whole normalized name, `host[:port][/path]`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// `host[:port]`: what `{registry}` expands to.
    pub fn registry(&self) -> &str {
        &self.key[..self.host_len]
    }

    /// The repository path after the host, if the request named one: what
    /// `{repository}` expands to.
    pub fn repository(&self) -> Option<&str> {
        let rest = &self.key[self.host_len..];
        rest.strip_prefix('/')
    }

    /// The registry alone, without the repository path.
    pub fn host_only(&self) -> ServerUrl {
        ServerUrl { key: self.registry().to_owned(), host_len: self.host_len }
    }

    /// The name `list` reports for an entry filed under this key when the
    /// original spelling is unknown: Docker's own name for Docker Hub, the
    /// key itself otherwise.
    pub fn display_name(&self) -> &str {
        display_name(&self.key)
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// Whether the normalized URL `url` is `key` or under it on whole path
/// segments, for a `key` that [`is_normalized`] accepts (the config's keys,
/// compared as text without building a `ServerUrl` for each): `h/team/app`
/// is under `h/team` but not under `h/te`, and `team/application` is not
/// under `team/app`.
pub fn is_under(url: &str, key: &str) -> bool {
    match url.strip_prefix(key) {
        Some("") => true,
        Some(rest) => rest.starts_with('/'),
        None => false,
    }
}

/// [`ServerUrl::display_name`] for a normalized key given as text.
pub(crate) fn display_name(key: &str) -> &str {
    if key == DOCKER_HUB { DOCKER_HUB_LEGACY_URL } else { key }
}

fn strip_scheme(s: &str) -> &str {
    for scheme in ["https://", "http://"] {
        // Compare bytes: slicing the str could split a multi-byte character
        // (found by fuzzing). A match means the prefix is ASCII, so the
        // rest starts on a character boundary.
        if s.as_bytes().get(..scheme.len()).is_some_and(|p| p.eq_ignore_ascii_case(scheme.as_bytes())) {
            return &s[scheme.len()..];
        }
    }
    s
}

/// Bad input is echoed in errors so people see what was wrong, but
/// redacted and never in full: a pasted token must not land in a log.
pub(crate) fn truncate_for_message(s: &str) -> String {
    crate::redact::bounded(s, 80)
}

/// Whether `raw` is already in the form [`ServerUrl::parse`] gives, so that
/// parsing it would return it unchanged: lower-case registry characters,
/// no scheme, no empty segment, no trailing slash, no Docker Hub alias and
/// no `/v2` API root. Config keys are almost always written so; they are
/// then compared as they are, with no allocation per key.
pub(crate) fn is_normalized(raw: &str) -> bool {
    /// Lower-case letters, digits and `._-:/[]`: what a normalized key holds.
    const ALLOWED: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            table[b] = c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'.' | b'_' | b'-' | b':' | b'/' | b'[' | b']');
            b += 1;
        }
        table
    };
    // One pass: this runs for every configured registry on every `get`.
    let bytes = raw.as_bytes();
    let mut host_end = bytes.len();
    let mut previous = b'/';
    for (i, &b) in bytes.iter().enumerate() {
        // `previous` starts as '/' so a leading '/' counts as "//".
        if !ALLOWED[usize::from(b)] || (b == b'/' && previous == b'/') {
            return false;
        }
        if b == b'/' && host_end == bytes.len() {
            host_end = i;
        }
        previous = b;
    }
    if bytes.is_empty() || previous == b'/' {
        return false;
    }
    let (host, path) = (&raw[..host_end], raw.get(host_end + 1..).unwrap_or(""));
    let hub_alias = DOCKER_HUB_ALIASES.contains(&host) && (host != DOCKER_HUB || path == "v1");
    // (`docker.io/…` is itself normalized; the other names and `/v1` are not.)
    !hub_alias && path != "v2"
}

/// Whether `path` is a repository name by the OCI distribution grammar:
/// slash-separated components of lower-case letters and digits, joined
/// within a component by `.`, `_`, `__` or runs of `-`. Anything else
/// (`..`, `:`, `*`, upper case, empty components) never reaches a template
/// or a token request.
pub fn is_repository_name(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_path_component)
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        // An alphanumeric run…
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // …then one separator: `.`, `_`, `__` or one or more `-`.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => i += if bytes.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_where_a_scheme_would_end_is_not_a_panic() {
        assert_eq!(key("ii7/7/\u{452}"), "ii7/7/\u{452}");
        assert_eq!(key("https:/\u{5d6}ndex.docker.io/v0/"), "https:/\u{5d6}ndex.docker.io/v0");
    }

    fn key(s: &str) -> String {
        ServerUrl::parse(s).unwrap().as_str().to_owned()
    }

    #[test]
    fn scheme_and_trailing_slash_are_dropped() {
        assert_eq!(key("https://registry.example.com/"), "registry.example.com");
        assert_eq!(key("http://registry.example.com"), "registry.example.com");
        assert_eq!(key("HTTPS://registry.example.com//"), "registry.example.com");
    }

    #[test]
    fn host_is_lower_cased_but_path_is_not() {
        assert_eq!(key("Registry.Example.COM/Team/App"), "registry.example.com/Team/App");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(key("  registry.example.com\n"), "registry.example.com");
    }

    #[test]
    fn port_is_kept() {
        let url = ServerUrl::parse("http://127.0.0.1:5000/").unwrap();
        assert_eq!(url.as_str(), "127.0.0.1:5000");
        assert_eq!(url.registry(), "127.0.0.1:5000");
        assert_eq!(url.repository(), None);
    }

    #[test]
    fn docker_hub_aliases_are_one_registry() {
        for alias in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            "https://registry-1.docker.io",
            "https://index.docker.io/v1",
        ] {
            assert_eq!(key(alias), DOCKER_HUB, "{alias}");
        }
    }

    #[test]
    fn docker_hub_aliases_with_a_repository_are_docker_hub() {
        assert_eq!(key("registry-1.docker.io/library/nginx"), "docker.io/library/nginx");
        assert_eq!(key("https://index.docker.io/v1/"), "docker.io");
    }

    #[test]
    fn docker_hub_reports_the_legacy_url() {
        assert_eq!(ServerUrl::parse("docker.io").unwrap().display_name(), DOCKER_HUB_LEGACY_URL);
    }

    #[test]
    fn logout_forms_of_one_host_are_one_key() {
        let forms = ["h.example", "http://h.example", "https://h.example"];
        let keys: Vec<String> = forms.iter().map(|f| key(f)).collect();
        assert!(keys.iter().all(|k| k == "h.example"));
    }

    #[test]
    fn repository_is_split_from_registry() {
        let url = ServerUrl::parse("https://r.example:5000/team/app/").unwrap();
        assert_eq!(url.registry(), "r.example:5000");
        assert_eq!(url.repository(), Some("team/app"));
    }

    #[test]
    fn empty_and_blank_are_the_protocol_error() {
        assert_eq!(ServerUrl::parse(""), Err(ServerUrlError::Empty));
        assert_eq!(ServerUrl::parse(" \n\t"), Err(ServerUrlError::Empty));
        assert_eq!(ServerUrlError::Empty.to_string(), "no credentials server URL");
    }

    #[test]
    fn inner_whitespace_is_invalid() {
        assert!(matches!(ServerUrl::parse("a b"), Err(ServerUrlError::Invalid(_))));
        assert!(matches!(ServerUrl::parse("https:///path"), Err(ServerUrlError::Invalid(_))));
    }

    #[test]
    fn userinfo_is_refused_without_repeating_the_password() {
        let err = ServerUrl::parse("alice:hunter2@registry.example.com").unwrap_err();
        assert_eq!(err, ServerUrlError::Credentials);
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(ServerUrl::parse("https://u:p@h/x"), Err(ServerUrlError::Credentials));
    }

    #[test]
    fn the_api_root_is_the_registry() {
        assert_eq!(key("https://registry.example.com/v2/"), "registry.example.com");
        assert_eq!(key("registry.example.com/v2"), "registry.example.com");
        assert_eq!(ServerUrl::parse("https://h.example/v2/").unwrap().repository(), None);
        assert_eq!(key("h.example/team/v2"), "h.example/team/v2");
    }

    #[test]
    fn a_normalized_key_parses_to_itself() {
        for raw in
            ["r.example", "r.example:5000/team/app", "127.0.0.1:5000", "[::1]:5000/a", "docker.io", "h/v2/x"]
        {
            assert!(is_normalized(raw), "{raw}");
            assert_eq!(key(raw), raw);
        }
    }

    #[test]
    fn keys_that_parsing_would_change_are_not_normalized() {
        for raw in [
            "R.example",
            "https://r.example",
            "r.example/",
            "index.docker.io",
            "docker.io/v1",
            "r/v2",
            "a b",
            "",
            "/x",
            "r//x",
        ] {
            assert!(!is_normalized(raw), "{raw}");
        }
    }

    #[test]
    fn repository_names_follow_the_oci_grammar() {
        for ok in ["app", "team/app", "a.b_c__d---e/f1", "0/9"] {
            assert!(is_repository_name(ok), "{ok}");
        }
        for bad in
            ["", "team/../../etc", "..", "a:b", "a*", "Team/App", "a//b", "a/", "-a", "a_", "a___b", "a.-b"]
        {
            assert!(!is_repository_name(bad), "{bad}");
        }
    }

    #[test]
    fn prefix_matching_uses_whole_segments() {
        let req = ServerUrl::parse("h/team/application").unwrap();
        assert!(!is_under(req.as_str(), "h/team/app"));
        assert!(is_under(req.as_str(), "h/team"));
        assert!(is_under(req.as_str(), "h"));
        assert!(!is_under(ServerUrl::parse("hx").unwrap().as_str(), "h"));
    }

    #[test]
    fn long_bad_input_is_truncated_in_messages() {
        let long = "x ".repeat(200);
        let ServerUrlError::Invalid(shown) = ServerUrl::parse(&long).unwrap_err() else {
            panic!("expected Invalid");
        };
        assert!(shown.chars().count() <= 81);
    }
}
