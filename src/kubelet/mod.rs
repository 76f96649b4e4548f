//! `docker-credential-exchange kubelet-credential-provider`: the same helper
//! as the kubelet's image credential provider plugin (DESIGN.md section 8).
//!
//! The kubelet runs the binary with the arguments and environment of its
//! `CredentialProviderConfig`, writes one [`wire::CredentialProviderRequest`]
//! on stdin and reads one [`wire::CredentialProviderResponse`] from stdout.
//! This module owns that exchange of documents: reading and checking the
//! request, parsing its image ([`image`]), and turning the credentials the
//! helper issues for it ([`Issued`]) into the response: the `auth` key and
//! `cacheKeyType` from what the token covers, `cacheDuration` from when the
//! helper would refresh it. Anything that goes wrong is one line on stderr
//! and exit status 1, which the kubelet logs; there is never an empty
//! success.
//!
//! Getting the credentials themselves (config lookup, the `kubelet` subject
//! source, the cache, the exchange) is the helper's `get` ([`issue`]).

pub mod image;
pub mod wire;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::bounded::{ONE_MIB, ReadError};
use crate::helper::{GetOptions, Helper, HelperError, Origin};
use crate::plan::KubeletRequest;
use crate::secret::Secret;
use image::{Coverage, ImageError, ImageRef};
use wire::{AuthConfig, CacheKeyType, CredentialProviderRequest, CredentialProviderResponse, RequestError};

/// The subcommand's name, as the kubelet's config gives it in `args`.
pub const SUBCOMMAND: &str = "kubelet-credential-provider";

/// Why a request got no credentials. Each is reported on stderr with exit
/// status 1; the kubelet logs it and pulls without credentials.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// stdin could not be read, or is over 1 MiB.
    #[error("cannot read the CredentialProviderRequest on stdin: stdin {0}")]
    Stdin(#[from] ReadError),
    /// stdin is not a request this helper answers.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The request's image is not an image reference.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The helper could not issue credentials; its message.
    #[error("no credentials for {image}: {reason}")]
    Helper {
        /// The image as the kubelet named it.
        image: String,
        /// The helper's one-line reason.
        reason: String,
    },
    /// stdout could not be written.
    #[error("cannot write the CredentialProviderResponse to stdout: {0}")]
    Stdout(#[source] std::io::Error),
}

/// What the helper issued for one image, reduced to what the kubelet needs.
#[derive(Debug)]
pub struct Issued {
    /// The username beside the token, e.g. `oauth2accesstoken`.
    pub username: String,
    /// The token.
    pub password: Secret,
    /// Whether the token is good for the image's repository only, or for
    /// every repository on its registry.
    pub coverage: Coverage,
    /// How long the kubelet may keep it: until the helper itself would
    /// refresh it. `None` leaves the kubelet's `defaultCacheDuration`.
    pub cache_for: Option<Duration>,
}

impl Issued {
    /// The cache duration for a token the helper refreshes at `refresh_at`
    /// (Unix seconds), seen at `now`: the time left, and zero (do not cache)
    /// for a token already inside its refresh margin, such as a stale token
    /// returned because a refresh failed.
    pub fn cache_until(refresh_at: i64, now: i64) -> Duration {
        Duration::from_secs(u64::try_from(refresh_at.saturating_sub(now)).unwrap_or(0))
    }
}

/// The response for `request` about `image`, given what the helper issued.
pub fn respond(
    request: &CredentialProviderRequest,
    image: &ImageRef,
    issued: Issued,
) -> CredentialProviderResponse {
    let cache_key_type = match issued.coverage {
        Coverage::Repository => CacheKeyType::Image,
        Coverage::Registry => CacheKeyType::Registry,
    };
    let auth = BTreeMap::from([(
        image.auth_key(issued.coverage),
        AuthConfig { username: issued.username, password: issued.password },
    )]);
    CredentialProviderResponse::new(&request.api_version, cache_key_type, issued.cache_for, auth)
}

/// Reads one request from `stdin`, asks `issue` for its credentials and
/// writes the response to `stdout`.
///
/// # Errors
/// Any [`KubeletError`]; nothing is written to `stdout` then.
pub fn serve(
    stdin: impl Read,
    mut stdout: impl Write,
    issue: impl FnOnce(&CredentialProviderRequest, &ImageRef) -> Result<Issued, KubeletError>,
) -> Result<(), KubeletError> {
    let bytes = crate::bounded::read_to_end(stdin, ONE_MIB)?;
    let request = CredentialProviderRequest::parse(&bytes)?;
    let image = ImageRef::parse(&request.image)?;
    crate::log::debug!(
        "kubelet: credentials for {}: apiVersion={} service_account_token={} annotations={}",
        image.name(),
        request.api_version,
        request.service_account_token().map_or_else(|| "none".to_owned(), |t| t.fingerprint()),
        request.service_account_annotations.as_ref().map_or(0, |a| a.len())
    );
    let response = respond(&request, &image, issue(&request, &image)?);
    stdout
        .write_all(response.to_json_line().as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(KubeletError::Stdout)
}

/// The subcommand: the process's stdin and stdout, the helper's `get`.
///
/// # Errors
/// Any [`KubeletError`], for the caller to print on stderr.
pub fn main(helper: &Helper) -> anyhow::Result<ExitCode> {
    let stdin = crate::bounded::Stdin::until(Some(*helper.deadline()));
    serve(stdin, std::io::stdout().lock(), |request, image| issue(helper, request, image))?;
    Ok(ExitCode::SUCCESS)
}

/// The credentials for `image`: a Docker `get` for its repository, with
/// the request's service account token and annotations.
fn issue(
    helper: &Helper,
    request: &CredentialProviderRequest,
    image: &ImageRef,
) -> Result<Issued, KubeletError> {
    let failed = |reason: String| KubeletError::Helper { image: image.name(), reason };
    let url = image.server_url().map_err(|e| failed(e.to_string()))?;
    // Exchange entries only: a node has no keyring, and the plain store's
    // answer would be a message about HOME or the keychain.
    let covered = helper.config().map_err(|e| failed(e.to_string()))?.lookup(&url).is_some();
    if !covered {
        return Err(failed(format!(
            "no registry entry in {} covers it; add one (the kubelet's matchImages sent it here)",
            helper.config_path().display()
        )));
    }
    let kubelet = KubeletRequest {
        service_account_token: request.service_account_token(),
        annotations: request.service_account_annotations.as_ref(),
    };
    let answer = helper.get_with(&url, GetOptions::default(), kubelet).map_err(|e| match e {
        HelperError::NotFound { reason: Some(reason) } => failed(crate::redact::line(&reason)),
        HelperError::NotFound { reason: None } => failed(
            "no subject token: the kubelet passed no service account token (is tokenAttributes set in its \
             CredentialProviderConfig?), or the entry's subject_token source is empty here"
                .into(),
        ),
        e => failed(crate::redact::line(&e.to_string())),
    })?;
    Ok(Issued {
        username: answer.username,
        password: answer.secret,
        coverage: if answer.repository_scoped { Coverage::Repository } else { Coverage::Registry },
        cache_for: match (answer.origin, answer.schedule) {
            // A stale token served because a refresh failed: do not cache.
            (Origin::StaleCache, _) => Some(Duration::ZERO),
            (_, Some(s)) => Some(Issued::cache_until(s.refresh_at, crate::time::now())),
            (_, None) => None,
        },
    })
}

#[cfg(test)]
mod golden;
