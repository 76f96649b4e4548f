//! Server URLs as Docker passes them, and the normalized form under which
//! the helper files credentials.
//!
//! Docker is not consistent about how it names a registry: `docker login h`
//! stores under `h`, `docker logout` erases `h`, `http://h` and `https://h`
//! in turn, and Docker Hub appears as `https://index.docker.io/v1/`,
//! `index.docker.io`, `docker.io` or `registry-1.docker.io`. All of those
//! must find the same entry, so every lookup goes through [`ServerUrl::parse`].

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
    #[error("no credentials server URL")]
    Empty,
    /// Holds characters that no registry name has (spaces, control
    /// characters, `?`, `#`); the caller reports it as bad input.
    #[error("invalid server URL {0:?}: a registry is host[:port][/path] with no spaces, query or fragment")]
    Invalid(String),
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
        // Userinfo in a registry name would be a credential in the wrong place.
        if host.is_empty() || host.contains('@') || path.contains("//") {
            return Err(ServerUrlError::Invalid(truncate_for_message(trimmed)));
        }
        let host = host.to_ascii_lowercase();
        if DOCKER_HUB_ALIASES.contains(&host.as_str()) && (path.is_empty() || path == "v1") {
            return Ok(ServerUrl::from_parts(DOCKER_HUB, ""));
        }
        Ok(ServerUrl::from_parts(&host, path))
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

    /// Whether `prefix` names this registry or a repository prefix of it on
    /// whole path segments: `h/team/app` is under `h/team` but not under
    /// `h/te`, and `team/application` is not under `team/app`.
    pub fn is_under(&self, prefix: &ServerUrl) -> bool {
        match self.key.strip_prefix(prefix.as_str()) {
            Some("") => true,
            Some(rest) => rest.starts_with('/'),
            None => false,
        }
    }

    /// The name `list` reports for an entry filed under this key when the
    /// original spelling is unknown: Docker's own name for Docker Hub, the
    /// key itself otherwise.
    pub fn display_name(&self) -> &str {
        if self.key == DOCKER_HUB { DOCKER_HUB_LEGACY_URL } else { &self.key }
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
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

/// Bad input is echoed in errors so people see what was wrong, but never in
/// full: a pasted token must not land in a log.
pub(crate) fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
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
    fn inner_whitespace_and_userinfo_are_invalid() {
        assert!(matches!(ServerUrl::parse("a b"), Err(ServerUrlError::Invalid(_))));
        assert!(matches!(ServerUrl::parse("user:pw@host"), Err(ServerUrlError::Invalid(_))));
        assert!(matches!(ServerUrl::parse("https:///path"), Err(ServerUrlError::Invalid(_))));
    }

    #[test]
    fn prefix_matching_uses_whole_segments() {
        let req = ServerUrl::parse("h/team/application").unwrap();
        assert!(!req.is_under(&ServerUrl::parse("h/team/app").unwrap()));
        assert!(req.is_under(&ServerUrl::parse("h/team").unwrap()));
        assert!(req.is_under(&ServerUrl::parse("h").unwrap()));
        assert!(!ServerUrl::parse("hx").unwrap().is_under(&ServerUrl::parse("h").unwrap()));
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
