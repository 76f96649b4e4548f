//! Image references as the kubelet hands them to a credential provider, and
//! the two names the helper derives from one: the server URL its config is
//! looked up by (the same lookup as a Docker `get`), and the `auth` keys the
//! kubelet matches its images against.
//!
//! What the kubelet passes (kubernetes/kubernetes
//! `pkg/kubelet/images/image_manager.go`, `pkg/util/parsers/parsers.go`): not
//! the pod spec's string, but `ParseImageName(image)`'s repository, which is
//! distribution's `ParseNormalizedNamed(image).Name()`: the registry made
//! explicit (`docker.io` for Docker Hub, `index.docker.io` folded into it),
//! Docker Hub's `library/` made explicit, and no tag or digest. So `nginx:1.25`
//! arrives as `docker.io/library/nginx` and `r.example:5000/team/app@sha256:…`
//! as `r.example:5000/team/app`. [`ImageRef::parse`] accepts the pod spec's
//! forms too (a tag, a digest, an implicit registry), because people test a
//! provider by hand with them and older kubelets may differ.
//!
//! How the kubelet uses the `auth` keys (kubernetes/kubernetes
//! `pkg/credentialprovider/keyring.go`, `URLsMatch`): a key matches an image
//! when both have the same number of dot-separated host labels, each label
//! matches (a key may use globs per label), the ports are equal, and the
//! key's path is a string prefix of the image's path. Host labels are
//! compared case-sensitively, so keys keep the registry exactly as the
//! kubelet spelled it.

use std::fmt;

use crate::server_url::{ServerUrl, ServerUrlError, is_repository_name};

/// Docker Hub, as distribution names it when an image has no registry.
const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's legacy name, which distribution folds into [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// Other names of Docker Hub that the helper's config lookup treats as
/// [`DOCKER_HUB`] (DESIGN.md section 1) but distribution keeps as written.
const DOCKER_HUB_ALIASES: [&str; 2] = [DOCKER_HUB_LEGACY, "registry-1.docker.io"];
/// distribution's limit on a normalized name (registry and repository).
const NAME_MAX: usize = 255;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Nothing at all.
    #[error("the request names no image")]
    Empty,
    /// Not an image reference; the reason, and the image shown cut short.
    #[error("{image:?} is not an image reference: {reason}")]
    Invalid {
        /// The input, redacted and bounded.
        image: String,
        /// What is wrong, in words.
        reason: &'static str,
    },
}

/// Whether credentials cover one repository or the whole registry: this
/// decides the `auth` key and the kubelet's `cacheKeyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// The image's repository only.
    Repository,
    /// Every repository on the image's registry.
    Registry,
}

/// A parsed image reference.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` as written, `docker.io` when implicit.
    registry: String,
    /// The repository path, Docker Hub's `library/` included.
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl ImageRef {
    /// Parses an image reference by distribution's grammar and
    /// normalization (`ParseNormalizedNamed`).
    ///
    /// # Errors
    /// [`ImageError::Empty`] for an empty string, [`ImageError::Invalid`]
    /// naming the rule it breaks for anything else that is not a reference.
    pub fn parse(image: &str) -> Result<ImageRef, ImageError> {
        if image.is_empty() {
            return Err(ImageError::Empty);
        }
        let invalid = |reason| ImageError::Invalid { image: crate::redact::bounded(image, 120), reason };
        if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it contains whitespace or control characters"));
        }
        if image.contains("://") {
            return Err(invalid("an image has no scheme; give host[:port]/repository"));
        }
        if is_hex64(image) {
            return Err(invalid("a 64-digit hex string is an image ID, not a name"));
        }
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => (rest, Some(check_digest(digest).map_err(invalid)?)),
            None => (image, None),
        };
        // A colon after the last slash starts the tag; one before it is a port.
        let (name, tag) = match rest.rfind(':') {
            Some(at) if !rest[at..].contains('/') => {
                (&rest[..at], Some(check_tag(&rest[at + 1..]).map_err(invalid)?))
            }
            _ => (rest, None),
        };
        let (registry, path) = split_registry(name);
        check_registry(registry).map_err(invalid)?;
        let registry = if registry == DOCKER_HUB_LEGACY { DOCKER_HUB } else { registry };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        // distribution measures the normalized name, so a short Docker Hub
        // name can be too long once `docker.io/library/` is added (found by
        // fuzzing: the kubelet's own name of it would not parse).
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(invalid("the name is longer than 255 characters"));
        }
        if !is_repository_name(&repository) {
            return Err(invalid(if repository.bytes().any(|b| b.is_ascii_uppercase()) {
                "a repository name must be lower case"
            } else {
                "the repository is not components of a-z and 0-9 joined by . _ __ or -, separated by /"
            }));
        }
        Ok(ImageRef { registry: registry.to_owned(), repository, tag, digest })
    }

    /// `host[:port]` as the kubelet writes it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `library/nginx` or `team/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference had one (the kubelet's never do).
    #[cfg(test)]
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference had one (the kubelet's never do).
    #[cfg(test)]
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`: the image as the kubelet names it, and its
    /// cache key for `cacheKeyType: Image`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The server URL the helper's config is looked up by, exactly as for a
    /// Docker `get` of `host[:port]/repository`: the host lower-cased and
    /// Docker Hub's aliases folded into `docker.io`, so one config entry
    /// serves Docker and the kubelet.
    ///
    /// # Errors
    /// None for a parsed image; the type is `ServerUrl::parse`'s.
    pub fn server_url(&self) -> Result<ServerUrl, ServerUrlError> {
        let host = self.registry.to_ascii_lowercase();
        let host = if DOCKER_HUB_ALIASES.contains(&host.as_str()) { DOCKER_HUB } else { &host };
        // Not a client's URL: a repository named `v2` is one, not the API root.
        ServerUrl::of_repository(host, &self.repository)
    }

    /// The `auth` key for credentials that cover `coverage`: the image's
    /// name, or its registry. Either matches the image under the kubelet's
    /// rules; the registry key also matches every other image there.
    pub fn auth_key(&self, coverage: Coverage) -> String {
        match coverage {
            Coverage::Repository => self.name(),
            Coverage::Registry => self.registry.clone(),
        }
    }
}

/// distribution's split: the first component is a registry when it has a
/// `.` or `:`, is `localhost`, or has an upper-case letter (a repository
/// never does); otherwise the image is on Docker Hub.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

/// `host[:port]`: DNS labels of letters, digits and inner hyphens joined by
/// dots, or an IPv6 address in brackets, and an optional decimal port.
fn check_registry(registry: &str) -> Result<(), &'static str> {
    const BAD: &str =
        "the registry is not host[:port] (letters, digits, . and - in the host; digits in the port)";
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or(BAD)?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(BAD);
        }
        match after {
            "" => (None, None),
            p => (None, Some(p.strip_prefix(':').ok_or(BAD)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        };
        if !host.split('.').all(label_ok) {
            return Err(BAD);
        }
    }
    match port {
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => Err(BAD),
        _ => Ok(()),
    }
}

/// A tag: a word character, then up to 127 word characters, `.` or `-`.
fn check_tag(tag: &str) -> Result<String, &'static str> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    ok.then(|| tag.to_owned()).ok_or("the tag is not 1 to 128 of letters, digits, _, . and - (not first)")
}

/// A digest of an algorithm the kubelet's runtime can verify: `sha256`,
/// `sha384` or `sha512`, and its lower-case hex of the right length.
fn check_digest(digest: &str) -> Result<String, &'static str> {
    const BAD: &str = "the digest is not sha256:, sha384: or sha512: and lower-case hex of that length";
    let (algorithm, hex) = digest.split_once(':').ok_or(BAD)?;
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(BAD),
    };
    let ok = hex.len() == len && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| digest.to_owned()).ok_or(BAD)
}

/// Exactly 64 lower-case hex digits: distribution refuses these as names.
fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests;
