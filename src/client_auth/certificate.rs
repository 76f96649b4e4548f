//! The client certificate of mutual TLS (RFC 8705): a PEM chain, leaf
//! first, read from `client_certificate`. Before any connection the leaf's
//! validity is checked against the clock and its public key against the
//! client key, so that an expired certificate or the wrong key file is a
//! clear local error instead of a TLS alert from the far end.

use std::path::{Path, PathBuf};

use der::Decode as _;
use rustls_pki_types::pem::SectionKind;

use super::key::ClientKey;

/// PEM chains are small; a larger file is not one.
const MAX_CERTIFICATE_BYTES: u64 = 256 * 1024;

/// Why the client certificate cannot be used. Messages name the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The file cannot be read, or holds no certificate.
    #[error("the client certificate {} cannot be used: {reason}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The leaf's `notAfter` has passed.
    #[error("the client certificate {} expired at {at}; renew it", path.display())]
    Expired {
        /// The file.
        path: PathBuf,
        /// When, RFC 3339.
        at: String,
    },
    /// The leaf's `notBefore` is still ahead.
    #[error(
        "the client certificate {} is not valid before {at}; if it was just issued, check this machine's clock",
        path.display()
    )]
    NotYetValid {
        /// The file.
        path: PathBuf,
        /// When, RFC 3339.
        at: String,
    },
    /// The leaf certifies another key than `client_key`.
    #[error(
        "the client certificate {} is not for the client key: its public key differs; configure the key it was issued for",
        path.display()
    )]
    WrongKey {
        /// The file.
        path: PathBuf,
    },
    /// The key's certificate is in the file, but not first: TLS presents
    /// the first certificate as the client's own, and its issuers after.
    #[error(
        "the client certificate {} has the client key's certificate in place {position} of {count}, after its          issuer(s); put the client's own certificate first, then its issuers (TLS presents the first as the client's)",
        path.display()
    )]
    NotFirst {
        /// The file.
        path: PathBuf,
        /// Where the key's certificate is, from 1.
        position: usize,
        /// How many certificates the file holds.
        count: usize,
    },
}

/// A client certificate chain and what its leaf says.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    path: PathBuf,
    /// Every certificate of the file, leaf first, as DER.
    chain: Vec<Vec<u8>>,
    /// The leaf's validity, Unix seconds.
    pub not_before: i64,
    /// The leaf's expiry, Unix seconds.
    pub not_after: i64,
    /// The leaf's `subjectPublicKey` bits.
    public_key: Vec<u8>,
}

impl ClientCertificate {
    /// Reads the chain at `path` (symlinks followed, as Kubernetes mounts
    /// secrets).
    ///
    /// # Errors
    /// The file is missing, unreadable, not PEM, or its first certificate
    /// does not parse.
    pub fn read(path: &Path) -> Result<ClientCertificate, CertificateError> {
        let unusable = |reason: String| CertificateError::Unusable { path: path.to_owned(), reason };
        let bytes = crate::fsutil::read_regular_file(path, MAX_CERTIFICATE_BYTES)
            .map_err(|e| unusable(e.to_string()))?
            .ok_or_else(|| unusable("the file does not exist".into()))?;
        let mut chain = Vec::new();
        let mut reader = bytes.as_slice();
        loop {
            match rustls_pki_types::pem::from_buf(&mut reader) {
                Ok(None) => break,
                Ok(Some((SectionKind::Certificate, der))) => chain.push(der),
                Ok(Some(_)) => {}
                Err(_) => return Err(unusable("it is not valid PEM".into())),
            }
        }
        let Some(leaf) = chain.first() else {
            return Err(unusable("it holds no -----BEGIN CERTIFICATE----- section".into()));
        };
        let cert = x509_cert::Certificate::from_der(leaf)
            .map_err(|_| unusable("its first certificate does not parse as X.509".into()))?;
        let validity = &cert.tbs_certificate.validity;
        let secs =
            |t: &x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        let public_key = cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes().to_vec();
        Ok(ClientCertificate {
            path: path.to_owned(),
            not_before: secs(&validity.not_before),
            not_after: secs(&validity.not_after),
            public_key,
            chain,
        })
    }

    /// Checks the leaf is valid at `now`.
    ///
    /// # Errors
    /// Expired, or not yet valid.
    pub fn check_valid_at(&self, now: i64) -> Result<(), CertificateError> {
        if now >= self.not_after {
            return Err(CertificateError::Expired {
                path: self.path.clone(),
                at: crate::time::rfc3339_signed(self.not_after),
            });
        }
        if now < self.not_before {
            return Err(CertificateError::NotYetValid {
                path: self.path.clone(),
                at: crate::time::rfc3339_signed(self.not_before),
            });
        }
        Ok(())
    }

    /// Checks the leaf certifies `key`.
    ///
    /// # Errors
    /// The key is unusable, or another key's certificate, or its own
    /// certificate is in the file but not first (a chain in the wrong
    /// order, which "configure the key it was issued for" would misdirect).
    pub fn check_key(&self, key: &ClientKey) -> Result<(), super::ClientAuthError> {
        let public = key.public_key().map_err(super::ClientAuthError::KeyInvalid)?;
        if public == self.public_key {
            return Ok(());
        }
        let later = self.chain.iter().skip(1).position(|der| {
            x509_cert::Certificate::from_der(der).is_ok_and(|c| {
                c.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes() == public.as_slice()
            })
        });
        Err(match later {
            Some(at) => CertificateError::NotFirst {
                path: self.path.clone(),
                position: at + 2,
                count: self.chain.len(),
            },
            None => CertificateError::WrongKey { path: self.path.clone() },
        }
        .into())
    }

    /// The chain and the key as the TLS client presents them.
    ///
    /// # Errors
    /// reqwest refuses the pair (it should not, after the checks above).
    pub fn identity(&self, key: &ClientKey) -> Result<reqwest::Identity, CertificateError> {
        let mut pem = zeroize::Zeroizing::new(String::new());
        for der in &self.chain {
            pem.push_str(&super::pem_section("CERTIFICATE", der));
        }
        pem.push_str(&key.to_pem());
        reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| CertificateError::Unusable {
            path: self.path.clone(),
            reason: format!("the TLS library refuses it with the key: {}", crate::http::root_cause(&e)),
        })
    }
}
