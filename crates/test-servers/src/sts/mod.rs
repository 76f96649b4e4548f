//! A small, strict RFC 8693 token-exchange server for tests, examples and the
//! benchmark. It is also the identity provider: it mints the subject tokens it
//! later accepts (in-process with [`Sts::mint_subject_token`], or over HTTP
//! with `GET /mint` for people driving it by hand), and it imitates GitHub
//! Actions' OIDC ID-token endpoint.
//!
//! Everything is in memory and bound to 127.0.0.1. Each request runs on its
//! own thread so that a hanging request never blocks the others, and dropping
//! the `Sts` stops the server. Runtime knobs (faults, lifetimes) sit behind
//! mutexes so a test can change them while clients are talking to it.
//!
//! Routes: `POST /token` (the exchange), `GET /github-oidc` (Actions' ID
//! tokens), `GET /mint?sub=&aud=&lifetime=` (a subject token, as text),
//! `GET /stats` (request counts, as JSON).

mod client_auth;
mod mtls;
mod options;
mod shapes;
mod token;

pub use client_auth::{ASSERTION_TYPE, CLIENT_CERT_HEADER};
pub use mtls::ClientCertTrust;
pub(crate) use options::values;
pub use options::{
    AssertionClient, AudienceClaim, ClientAuthMethod, ClientCredentials, Fault, Recorded, StsOptions,
    TlsClient,
};
pub use shapes::Shape;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::json;

use crate::codec::{now_secs, unique_id};
use crate::serve::{Handler, Serving, bind_http, bind_https, lock};

pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const GITHUB_OIDC_USER_AGENT: &str = "actions/oidc-client";
/// `iss` of every subject token the built-in identity provider mints.
pub const IDP_ISSUER: &str = "local-idp";

/// An ES256 key pair.
struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_pem: String,
}

impl Keys {
    fn generate() -> Keys {
        let pair =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate a P-256 key");
        Keys {
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            // ring verifies ES256 against the uncompressed point.
            decoding: DecodingKey::from_ec_der(pair.public_key_raw()),
            public_pem: pair.public_key_pem(),
        }
    }
}

/// The server's state, shared by every request thread.
struct Shared {
    options: Mutex<StsOptions>,
    /// The fault and how many more requests it applies to (`None`: all).
    fault: Mutex<(Fault, Option<usize>)>,
    recorded: Mutex<Vec<Recorded>>,
    token_requests: AtomicUsize,
    oidc_requests: AtomicUsize,
    idp: Keys,
    sts: Keys,
    stopped: AtomicBool,
    /// Every client assertion `jti` accepted so far: a second use is a
    /// replay (RFC 7523 section 3, item 7).
    seen_jti: Mutex<HashSet<String>>,
    /// The token endpoint's URL as clients see it (the default `aud` of
    /// client assertions).
    token_url: Mutex<String>,
}

impl Handler for Shared {
    fn handle(&self, request: tiny_http::Request) {
        token::handle(self, request);
    }
    fn stopped(&self) -> &AtomicBool {
        &self.stopped
    }
}

impl Shared {
    fn new(options: StsOptions) -> Shared {
        Shared {
            options: Mutex::new(options),
            fault: Mutex::new((Fault::None, None)),
            recorded: Mutex::new(Vec::new()),
            token_requests: AtomicUsize::new(0),
            oidc_requests: AtomicUsize::new(0),
            idp: Keys::generate(),
            sts: Keys::generate(),
            stopped: AtomicBool::new(false),
            seen_jti: Mutex::new(HashSet::new()),
            token_url: Mutex::new(String::new()),
        }
    }

    fn options(&self) -> std::sync::MutexGuard<'_, StsOptions> {
        lock(&self.options)
    }

    fn mint_subject_token(&self, sub: &str, aud: &str, lifetime_secs: i64) -> String {
        let now = now_secs();
        let claims =
            json!({"iss": IDP_ISSUER, "sub": sub, "aud": aud, "iat": now, "exp": now + lifetime_secs});
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.idp.encoding)
            .expect("ES256 signing with a fresh key")
    }

    /// Signs access-token claims with the STS's key, as `POST /token` does.
    fn sign_access_token(&self, claims: &serde_json::Value) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("local-sts".to_string());
        jsonwebtoken::encode(&header, claims, &self.sts.encoding)
    }

    fn take_fault(&self) -> Fault {
        let mut guard = lock(&self.fault);
        let (fault, remaining) = &mut *guard;
        let current = fault.clone();
        if let Some(n) = remaining {
            *n = n.saturating_sub(1);
            if *n == 0 {
                *guard = (Fault::None, None);
            }
        }
        current
    }

    /// Sleeps in slices so that a dropped server does not leave threads
    /// sleeping for minutes.
    fn sleep(&self, total: Duration) {
        let start = std::time::Instant::now();
        while start.elapsed() < total && !self.stopped.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20).min(total.saturating_sub(start.elapsed())));
        }
    }
}

/// A running token-exchange server; stops on drop.
pub struct Sts {
    serving: Serving<Shared>,
    base_url: String,
    /// The mutual-TLS front, when started with [`Sts::start_mtls`]; dropped
    /// before the server it forwards to.
    front: Option<mtls::Front>,
}

impl Sts {
    /// The server on a free port; panics if it cannot listen.
    pub fn start(options: StsOptions) -> Sts {
        Sts::bind(0, options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The server on 127.0.0.1:`port` (0: a free port).
    ///
    /// # Errors
    /// The port cannot be bound.
    pub fn bind(port: u16, options: StsOptions) -> Result<Sts, String> {
        Ok(Sts::serve(bind_http(port)?, options, "http"))
    }

    /// The same server over HTTPS with the given PEM certificate chain and
    /// PKCS#8 key (e.g. from rcgen), for TLS trust tests.
    pub fn start_https(options: StsOptions, cert_pem: &str, key_pem: &str) -> Sts {
        let server = bind_https(0, cert_pem, key_pem).unwrap_or_else(|e| panic!("{e}"));
        Sts::serve(server, options, "https")
    }

    /// The server behind a mutual-TLS front (RFC 8705): clients reach it
    /// over HTTPS at [`Sts::url`] with the given server chain and PKCS#8
    /// key, and must present a client certificate that `trust` accepts;
    /// `StsOptions::tls_client` then says whose it must be.
    pub fn start_mtls(options: StsOptions, cert_pem: &str, key_pem: &str, trust: &ClientCertTrust) -> Sts {
        let mut sts = Sts::serve(bind_http(0).unwrap_or_else(|e| panic!("{e}")), options, "http");
        let front =
            mtls::Front::start(cert_pem, key_pem, trust, sts.port()).unwrap_or_else(|e| panic!("{e}"));
        sts.base_url = format!("https://127.0.0.1:{}", front.port());
        *lock(&sts.shared().token_url) = sts.url();
        sts.front = Some(front);
        sts
    }

    fn serve(server: tiny_http::Server, options: StsOptions, scheme: &str) -> Sts {
        let serving = Serving::start(server, Shared::new(options));
        let base_url = format!("{scheme}://127.0.0.1:{}", serving.port());
        let sts = Sts { serving, base_url, front: None };
        // start_mtls replaces it before any client can have the URL.
        *lock(&sts.shared().token_url) = sts.url();
        sts
    }

    fn shared(&self) -> &Shared {
        &self.serving.handler
    }

    /// The token endpoint: `http://127.0.0.1:PORT/token`.
    pub fn url(&self) -> String {
        format!("{}/token", self.base_url)
    }
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }
    pub fn port(&self) -> u16 {
        self.serving.port()
    }
    /// `http://127.0.0.1:PORT/mint`: `GET` with `sub`, `aud` and `lifetime`
    /// (seconds) in the query answers a fresh subject token as text.
    pub fn mint_url(&self) -> String {
        format!("{}/mint", self.base_url)
    }
    /// `http://127.0.0.1:PORT/github-oidc`; the client appends `?audience=`.
    pub fn oidc_url(&self) -> String {
        format!("{}/github-oidc", self.base_url)
    }
    /// The URL as GitHub really hands it out, already carrying a query, so a
    /// client must append `&audience=` rather than `?audience=`.
    pub fn oidc_url_with_query(&self) -> String {
        format!("{}/github-oidc?api-version=2.0", self.base_url)
    }
    pub fn oidc_request_token(&self) -> String {
        self.shared().options().oidc_request_token.clone()
    }
    pub fn issuer(&self) -> String {
        self.shared().options().issuer.clone()
    }
    pub fn access_token_algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
    /// Verifies access tokens this server issues (ES256).
    pub fn access_token_decoding_key(&self) -> DecodingKey {
        self.shared().sts.decoding.clone()
    }
    /// The same key as SPKI PEM.
    pub fn access_token_public_key_pem(&self) -> String {
        self.shared().sts.public_pem.clone()
    }

    /// A subject token from the built-in IdP, audience = this STS's issuer.
    /// A negative lifetime gives a token that is already expired.
    pub fn mint_subject_token(&self, sub: &str, lifetime_secs: i64) -> String {
        let aud = self.issuer();
        self.shared().mint_subject_token(sub, &aud, lifetime_secs)
    }
    pub fn mint_subject_token_for(&self, sub: &str, aud: &str, lifetime_secs: i64) -> String {
        self.shared().mint_subject_token(sub, aud, lifetime_secs)
    }

    /// An access token as an exchange would issue it (this STS's issuer and
    /// key), without an exchange: for set-up steps such as pushing the image
    /// a test then pulls through the helper.
    pub fn issue_access_token(&self, sub: &str, aud: &str, scope: &str, lifetime_secs: i64) -> String {
        let now = now_secs();
        let claims = json!({
            "iss": self.issuer(), "sub": sub, "aud": aud, "scope": scope,
            "iat": now, "exp": now + lifetime_secs, "jti": unique_id(),
        });
        self.shared().sign_access_token(&claims).expect("ES256 signing with a fresh key")
    }

    /// POST /token requests so far, failed ones included.
    pub fn requests(&self) -> usize {
        self.shared().token_requests.load(Ordering::SeqCst)
    }
    pub fn oidc_requests(&self) -> usize {
        self.shared().oidc_requests.load(Ordering::SeqCst)
    }
    /// Recorded requests to one path, any method.
    pub fn requests_to(&self, path: &str) -> usize {
        lock(&self.shared().recorded).iter().filter(|r| r.path == path).count()
    }
    /// The last POST /token request.
    pub fn last_request(&self) -> Option<Recorded> {
        let recorded = lock(&self.shared().recorded);
        recorded.iter().rev().find(|r| r.path == "/token").cloned()
    }
    /// Every request, in arrival order (`/stats` and `/mint` excepted).
    pub fn all_requests(&self) -> Vec<Recorded> {
        lock(&self.shared().recorded).clone()
    }
    pub fn reset_counts(&self) {
        self.shared().token_requests.store(0, Ordering::SeqCst);
        self.shared().oidc_requests.store(0, Ordering::SeqCst);
        lock(&self.shared().recorded).clear();
    }

    /// Applies to every following POST /token until changed.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared().fault) = (fault, None);
    }
    /// Applies to the next `times` POST /token requests, then back to normal.
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        *lock(&self.shared().fault) = (fault, Some(times));
    }
    pub fn set_lifetime(&self, secs: i64) {
        self.shared().options().lifetime_secs = secs;
    }
    /// Changes any option while running.
    pub fn update_options(&self, change: impl FnOnce(&mut StsOptions)) {
        change(&mut self.shared().options());
    }

    /// Holds every following request to the token endpoint before the
    /// server reads it, until the returned [`Hold`](crate::hold::Hold) is
    /// released or dropped: the test knows a client is inside its exchange
    /// ([`Hold::wait_for_request`](crate::hold::Hold::wait_for_request)) and
    /// acts while it waits. Faults apply once a request is let on.
    pub fn hold_exchanges(&self) -> crate::hold::Hold {
        self.serving.hold("/token")
    }
}
