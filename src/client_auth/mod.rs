//! How the helper proves the client's identity to a token endpoint with a
//! key rather than a shared secret (DESIGN.md section 2): a signed client
//! assertion (`private_key_jwt`, RFC 7523 section 2.2) or a TLS client
//! certificate (`tls_client_auth` and `self_signed_tls_client_auth`,
//! RFC 8705). Client secrets stay in [`crate::exchange`].
//!
//! All of it runs on the cold path only, once per exchange: the key is
//! read from its source, parsed and used, and dropped (wiped) with the
//! request. A cache hit reads none of it and does no crypto.

pub mod assertion;
pub mod certificate;
pub mod key;

use std::path::Path;

use crate::config::{ClientAuth, KeyAlgorithm, OneOrMany, RegistryConfig, SourceSpec};
use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::source::SourceError;

pub use certificate::{CertificateError, ClientCertificate};
pub use key::{ClientKey, KeyError};

/// `client_assertion_type` of RFC 7523 section 2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why the client's key material cannot be used. Messages name the source
/// or the file and what is wrong, never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    /// The key's source failed (a command that exits non-zero, a file
    /// that cannot be read).
    #[error("the client key ({source_name}) cannot be read: {reason}")]
    KeyUnreadable {
        /// The source, described.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The source has nothing (the variable unset, the file absent).
    #[error("the client key ({0}) is not available")]
    KeyMissing(String),
    /// A key file others can read: the key is no longer the client's alone.
    /// (Unix only: Windows files have no mode bits to check.)
    #[cfg(unix)]
    #[error(
        "the client key file {path} can be read by other users (mode {mode:03o}); restrict it (chmod 600 {path}, or defaultMode: 0400 for a Kubernetes secret volume)"
    )]
    KeyFileExposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The text is not a usable key.
    #[error("the client key {0}")]
    KeyInvalid(#[from] KeyError),
    /// The certificate is unusable, expired, early, or for another key.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// Signing failed (ring refused the key as it signed).
    #[error("the client key cannot sign a {alg} client assertion: {reason}")]
    Sign {
        /// The algorithm.
        alg: &'static str,
        /// Why, in ring's words (no key material).
        reason: String,
    },
}

/// The key-based settings of one entry, borrowed from its config.
#[derive(Debug, Clone, Copy)]
pub struct KeySettings<'a> {
    /// The method (`private_key_jwt` or one of the two mTLS ones).
    pub method: ClientAuth,
    /// The client id: `iss` and `sub` of assertions.
    pub client_id: &'a str,
    /// Where the private key comes from.
    pub key: &'a SourceSpec,
    /// RS256 or PS256 for an RSA key.
    pub algorithm: Option<KeyAlgorithm>,
    /// The `kid` header.
    pub key_id: Option<&'a str>,
    /// `aud` of assertions instead of the endpoint.
    pub assertion_audience: Option<&'a OneOrMany>,
    /// The certificate chain for mutual TLS.
    pub certificate: Option<&'a Path>,
}

impl<'a> KeySettings<'a> {
    /// The settings of `reg` if it authenticates with a key.
    pub fn of(reg: &'a RegistryConfig) -> Option<KeySettings<'a>> {
        if !reg.client_auth.uses_key() {
            return None;
        }
        Some(KeySettings {
            method: reg.client_auth,
            client_id: reg.client_id.as_deref()?,
            key: reg.client_key.as_ref()?,
            algorithm: reg.client_key_algorithm,
            key_id: reg.client_key_id.as_deref(),
            assertion_audience: reg.client_assertion_audience.as_ref(),
            certificate: reg.client_certificate.as_deref(),
        })
    }
}

/// What one exchange carries to authenticate the client with a key.
#[derive(Default)]
pub struct Proof {
    /// `client_assertion` (private_key_jwt) of the first attempt.
    pub assertion: Option<Secret>,
    /// The TLS client identity (mutual TLS).
    pub identity: Option<reqwest::Identity>,
    /// What signs a fresh assertion for each retry.
    signer: Option<Signer>,
}

/// The key and claims' inputs of private_key_jwt, kept for retries.
struct Signer {
    key: ClientKey,
    algorithm: Option<KeyAlgorithm>,
    key_id: Option<String>,
    client_id: String,
    audience: Vec<String>,
}

impl Proof {
    /// `rb` with the form body of attempt `attempt` (from 1): `form`, and
    /// with private_key_jwt the assertion, the first one on the first
    /// attempt and a fresh one on each retry.
    pub fn with_form(
        &self,
        rb: reqwest::RequestBuilder,
        form: &[(&'static str, &str)],
        attempt: u32,
    ) -> reqwest::RequestBuilder {
        let Some(first) = &self.assertion else { return rb.form(form) };
        let fresh = if attempt > 1 { self.fresh_assertion() } else { None };
        let assertion = fresh.as_ref().unwrap_or(first);
        let mut full = form.to_vec();
        full.push(("client_assertion_type", ASSERTION_TYPE));
        full.push(("client_assertion", assertion.expose()));
        // Serialized here, while the fresh assertion is alive.
        rb.form(&full)
    }

    /// A new assertion (a new `jti`, `iat` now) for a retried request: a
    /// server that recorded the first one's `jti` before failing would
    /// refuse the same assertion again as a replay. `None` without a key,
    /// or should signing fail this time (the first assertion then serves).
    pub fn fresh_assertion(&self) -> Option<Secret> {
        let s = self.signer.as_ref()?;
        let claims = assertion::Claims::new(&s.client_id, s.audience.clone(), crate::time::now());
        assertion::sign(&s.key, s.algorithm, s.key_id.as_deref(), &claims).ok()
    }
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("assertion", &self.assertion.as_ref().map(Secret::fingerprint))
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// Reads the key and makes the proof for one request to `endpoint`: a
/// fresh assertion, or the TLS identity after checking the certificate's
/// dates and that it is the key's.
///
/// # Errors
/// See [`ClientAuthError`].
pub fn prove(
    settings: &KeySettings<'_>,
    endpoint: &str,
    deadline: &Deadline,
) -> Result<Proof, ClientAuthError> {
    let key = read_key(settings.key, deadline)?;
    let now = crate::time::now();
    if settings.method == ClientAuth::PrivateKeyJwt {
        let audience =
            settings.assertion_audience.map_or_else(|| vec![endpoint.to_owned()], |a| a.values().to_vec());
        let claims = assertion::Claims::new(settings.client_id, audience.clone(), now);
        let assertion = assertion::sign(&key, settings.algorithm, settings.key_id, &claims)?;
        let signer = Signer {
            key,
            algorithm: settings.algorithm,
            key_id: settings.key_id.map(str::to_owned),
            client_id: settings.client_id.to_owned(),
            audience,
        };
        return Ok(Proof { assertion: Some(assertion), identity: None, signer: Some(signer) });
    }
    let Some(path) = settings.certificate else {
        // Validation requires it; kept as an error rather than a panic.
        return Err(CertificateError::Unusable {
            path: "(client_certificate)".into(),
            reason: "not set".into(),
        }
        .into());
    };
    let cert = ClientCertificate::read(path)?;
    // The key first: it finds out which certificate is the client's, and
    // the dates that matter are that one's.
    cert.check_key(&key)?;
    cert.check_valid_at(now)?;
    Ok(Proof { assertion: None, identity: Some(cert.identity(&key)?), signer: None })
}

/// Reads and parses the key from its source. A key file that others can
/// read is refused: the key would no longer prove anything.
///
/// # Errors
/// The source fails or is empty, the file is exposed, or the text is not a
/// usable key.
pub fn read_key(spec: &SourceSpec, deadline: &Deadline) -> Result<ClientKey, ClientAuthError> {
    if let SourceSpec::File { path } = spec {
        check_key_file(path)?;
    }
    let text = crate::source::read(spec, deadline)
        .map_err(|e| unreadable(spec, &e))?
        .ok_or_else(|| ClientAuthError::KeyMissing(spec.describe()))?;
    Ok(ClientKey::from_pem(text.expose().as_bytes())?)
}

fn unreadable(spec: &SourceSpec, e: &SourceError) -> ClientAuthError {
    // The source module words its errors for subject tokens; the reason
    // after the colon is what matters here.
    let text = e.to_string().replace("subject token ", "").replace("the subject token file", "the file");
    ClientAuthError::KeyUnreadable { source_name: spec.describe(), reason: text }
}

/// The permission bits of a key file that matter: `Ok(Some(mode))` when
/// its group may read it (worth a warning), an error when others may.
///
/// # Errors
/// [`ClientAuthError::KeyFileExposed`].
pub fn check_key_file(path: &Path) -> Result<Option<u32>, ClientAuthError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A missing file is the source's own "not available" a moment later.
        let Ok(meta) = std::fs::metadata(path) else { return Ok(None) };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(ClientAuthError::KeyFileExposed { path: path.display().to_string(), mode });
        }
        if mode & 0o070 != 0 {
            return Ok(Some(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(None)
}

/// What to do about a TLS alert from the endpoint that is about client
/// certificates (rustls words it "received fatal alert: NAME"): the
/// endpoint wants mutual TLS the entry does not do, or refuses the
/// certificate it was shown.
pub fn tls_alert_hint(reason: &str, method: ClientAuth) -> Option<&'static str> {
    let alert = reason.split("received fatal alert: ").nth(1)?;
    let name = alert.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("");
    match (name, method.is_mutual_tls()) {
        ("CertificateRequired" | "HandshakeFailure", false) => Some(
            "the endpoint may want a TLS client certificate: set client_auth to tls_client_auth or \
             self_signed_tls_client_auth with client_certificate and client_key",
        ),
        ("CertificateRequired", true) => Some("the endpoint did not accept the client certificate as sent"),
        (
            // DecryptError: a certificate named for a trusted issuer but
            // not signed by it.
            "BadCertificate" | "UnknownCA" | "CertificateUnknown" | "CertificateExpired" | "AccessDenied"
            | "DecryptError",
            true,
        ) => Some(
            "the endpoint refused client_certificate: check that it trusts the certificate's issuer (or, self-signed, has it registered)",
        ),
        _ => None,
    }
}

/// One PEM section of `der` under `label`, lines of 64 characters.
fn pem_section(label: &str, der: &[u8]) -> zeroize::Zeroizing<String> {
    use base64::Engine as _;
    let encoded = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = zeroize::Zeroizing::new(String::with_capacity(encoded.len() + encoded.len() / 64 + 64));
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests;
