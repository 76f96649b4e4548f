//! A token server ("realm") speaking distribution's Token Authentication, for
//! Debian's docker-registry (distribution 2.8). It trusts access tokens issued
//! by the local STS and turns them into registry tokens, granting only the
//! intersection of what the client asks for and what the STS token's `scope`
//! claim allows.
//!
//! Distribution 2.8 verifies a registry token by the certificate chain in the
//! JWS `x5c` header against its `rootcertbundle`, insists on `aud` being a
//! JSON string equal to its `service`, and on `iss` equal to its `issuer`; the
//! shapes in [`auth`] follow from that.

mod auth;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::codec::base64_encode;
use crate::serve::{Handler, Serving, bind_http, lock};

pub struct RealmOptions {
    /// Distribution's `auth.token.service`; the `aud` of issued tokens.
    pub service: String,
    /// Distribution's `auth.token.issuer`; the `iss` of issued tokens.
    pub issuer: String,
    /// Lifetime of issued registry tokens.
    pub lifetime_secs: i64,
    /// What an STS access token must carry to be accepted.
    pub sts_issuer: String,
    pub sts_audience: String,
    pub sts_decoding_key: DecodingKey,
    pub sts_algorithm: Algorithm,
}

impl RealmOptions {
    /// Service "local-registry", issuer "local-realm", 300 s tokens, ES256.
    pub fn new(sts_issuer: &str, sts_decoding_key: DecodingKey, sts_audience: &str) -> Self {
        RealmOptions {
            service: "local-registry".to_string(),
            issuer: "local-realm".to_string(),
            lifetime_secs: 300,
            sts_issuer: sts_issuer.to_string(),
            sts_audience: sts_audience.to_string(),
            sts_decoding_key,
            sts_algorithm: Algorithm::ES256,
        }
    }
}

/// One resource access, as in distribution's `access` claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// "repository", "registry", …
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    /// `type:name:actions`, splitting at the first and last colon as
    /// distribution does (names never contain one, types may not).
    pub fn parse(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        let actions = actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect();
        Some(Access { kind: kind.to_string(), name: name.to_string(), actions })
    }

    fn to_scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// What one `/auth` request asked for and got.
#[derive(Clone, Debug)]
pub struct Grant {
    /// "GET" (Basic flow) or "POST" (OAuth refresh-token / password flow).
    pub method: String,
    pub grant_type: Option<String>,
    /// `sub` of the accepted STS token; `None` when refused.
    pub subject: Option<String>,
    pub requested: Vec<Access>,
    pub granted: Vec<Access>,
    /// Why the request was refused, if it was.
    pub error: Option<String>,
}

impl Grant {
    pub fn allows(&self, name: &str, action: &str) -> bool {
        self.granted.iter().any(|a| a.name == name && a.actions.iter().any(|x| x == action))
    }
}

/// The realm's state, shared by every request thread.
struct Shared {
    options: RealmOptions,
    encoding: EncodingKey,
    decoding: DecodingKey,
    x5c: String,
    grants: Mutex<Vec<Grant>>,
    requests: AtomicUsize,
    stopped: AtomicBool,
}

impl Handler for Shared {
    fn handle(&self, request: tiny_http::Request) {
        auth::handle(self, request);
    }
    fn stopped(&self) -> &AtomicBool {
        &self.stopped
    }
}

/// A running realm; stops on drop and removes its certificate file.
pub struct Realm {
    serving: Serving<Shared>,
    base_url: String,
    cert_pem: String,
    dir: tempfile::TempDir,
}

impl Realm {
    /// The realm on a free port, with a fresh self-signed signing
    /// certificate; panics if it cannot start.
    pub fn start(options: RealmOptions) -> Realm {
        let pair =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate a P-256 key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        params.distinguished_name.push(rcgen::DnType::CommonName, "local-realm token signer");
        let cert = params.self_signed(&pair).expect("self-sign the realm's certificate");
        let dir = tempfile::tempdir().expect("create the realm's directory");
        std::fs::write(dir.path().join("rootcert.pem"), cert.pem()).expect("write rootcert.pem");

        let shared = Shared {
            options,
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            decoding: DecodingKey::from_ec_der(pair.public_key_raw()),
            x5c: base64_encode(cert.der()),
            grants: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        };
        let serving = Serving::start(bind_http(0).unwrap_or_else(|e| panic!("{e}")), shared);
        let base_url = format!("http://127.0.0.1:{}", serving.port());
        Realm { serving, base_url, cert_pem: cert.pem(), dir }
    }

    fn shared(&self) -> &Shared {
        &self.serving.handler
    }

    /// The realm for distribution's `auth.token.realm`.
    pub fn url(&self) -> String {
        format!("{}/auth", self.base_url)
    }
    pub fn service(&self) -> &str {
        &self.shared().options.service
    }
    pub fn issuer(&self) -> &str {
        &self.shared().options.issuer
    }
    /// For distribution's `auth.token.rootcertbundle`.
    pub fn rootcert_path(&self) -> PathBuf {
        self.dir.path().join("rootcert.pem")
    }
    pub fn rootcert_pem(&self) -> &str {
        &self.cert_pem
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// Verifies registry tokens this realm issues (ES256).
    pub fn decoding_key(&self) -> DecodingKey {
        self.shared().decoding.clone()
    }
    /// Requests to any path, refused ones included.
    pub fn requests(&self) -> usize {
        self.shared().requests.load(Ordering::SeqCst)
    }
    pub fn grants(&self) -> Vec<Grant> {
        lock(&self.shared().grants).clone()
    }
    pub fn reset_counts(&self) {
        self.shared().requests.store(0, Ordering::SeqCst);
        lock(&self.shared().grants).clear();
    }
}
