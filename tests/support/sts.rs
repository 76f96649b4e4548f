//! A small, strict RFC 8693 token-exchange server for tests, examples and the
//! benchmark. It is also the identity provider: it mints the subject tokens it
//! later accepts, and it imitates GitHub Actions' OIDC ID-token endpoint.
//!
//! Everything is in memory and bound to 127.0.0.1:0. Each request runs on its
//! own thread so that a hanging request never blocks the others, and dropping
//! the `Sts` stops the server. Runtime knobs (faults, lifetimes) sit behind
//! mutexes so a test can change them while clients are talking to it.
//!
//! This file is included both as `mod sts;` from `tests/support/mod.rs` and by
//! `#[path]` from `examples/sts.rs`, so it refers to no other support module.
#![allow(dead_code)]

use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const GITHUB_OIDC_USER_AGENT: &str = "actions/oidc-client";
/// `iss` of every subject token the built-in identity provider mints.
pub const IDP_ISSUER: &str = "local-idp";
/// Request bodies above this are refused; nothing legitimate comes close.
const MAX_BODY: u64 = 1024 * 1024;
/// Parameters RFC 6749 section 3.2 forbids repeating; `audience` and
/// `resource` are deliberately absent because RFC 8693 allows them to repeat.
const SINGLE_VALUED: &[&str] = &[
    "grant_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "scope",
    "client_id",
    "client_secret",
];

/// Which client authentication methods the server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic with form-urlencoded id and secret (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` form fields (`client_secret_post`).
    Post,
    Either,
}

#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub id: String,
    pub secret: String,
    pub method: ClientAuthMethod,
}

/// How the access token's `aud` claim is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudienceClaim {
    /// A JSON string for one audience, an array for several.
    Auto,
    /// Always a string: the first audience only.
    String,
    /// Always an array.
    Array,
}

#[derive(Clone, Debug)]
pub struct StsOptions {
    /// `iss` of issued access tokens.
    pub issuer: String,
    /// The only `subject_token_type` accepted.
    pub subject_token_type: String,
    /// Client credentials to demand; `None` accepts any or no client.
    pub client: Option<ClientCredentials>,
    /// When set, an `audience` outside this list is `invalid_target`.
    pub allowed_audiences: Option<Vec<String>>,
    /// `aud` claim when the request names no audience; else it is omitted.
    pub default_audience: Option<String>,
    pub audience_claim: AudienceClaim,
    /// `expires_in`, and the JWT lifetime unless `jwt_lifetime_secs` is set.
    pub lifetime_secs: i64,
    /// A JWT `exp` different from `expires_in`, to test "the earlier of".
    pub jwt_lifetime_secs: Option<i64>,
    /// Whether the response carries `expires_in` at all.
    pub send_expires_in: bool,
    /// Issue opaque (non-JWT) access tokens.
    pub opaque_tokens: bool,
    /// `token_type` of the response: "Bearer", or "N_A" for non-access tokens.
    pub token_type: String,
    /// The bearer token `/github-oidc` demands (ACTIONS_ID_TOKEN_REQUEST_TOKEN).
    pub oidc_request_token: String,
    /// `sub` of the ID tokens `/github-oidc` hands out.
    pub oidc_subject: String,
}

impl Default for StsOptions {
    fn default() -> Self {
        StsOptions {
            issuer: "local-sts".to_string(),
            subject_token_type: TOKEN_TYPE_JWT.to_string(),
            client: None,
            allowed_audiences: None,
            default_audience: None,
            audience_claim: AudienceClaim::Auto,
            lifetime_secs: 3600,
            jwt_lifetime_secs: None,
            send_expires_in: true,
            opaque_tokens: false,
            token_type: "Bearer".to_string(),
            oidc_request_token: "local-actions-request-token".to_string(),
            oidc_subject: "repo:octo/app:ref:refs/heads/main".to_string(),
        }
    }
}

/// A misbehaviour of `POST /token`, injected at runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    Status500,
    /// 429 with `Retry-After`.
    TooMany {
        retry_after_secs: u64,
    },
    /// Sleep, then answer normally: longer than the client's timeout.
    Hang {
        secs: u64,
    },
    /// 200 with a body that is not JSON.
    MalformedJson,
    InvalidGrant,
    InvalidTarget,
    /// 307 to another URL.
    Redirect {
        location: String,
    },
    /// The same, chunked, without a length: the client must count.
    HugeChunkedBody {
        bytes: u64,
    },
    /// 200 with this many bytes of spaces, streamed, never held in memory,
    /// with a `Content-Length` so a client can refuse before reading.
    HugeBody {
        bytes: u64,
    },
    /// Answer normally but late, so concurrent clients overlap.
    Delay {
        millis: u64,
    },
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// The urlencoded body in order, repeated keys kept; empty if not a form.
    pub form: Vec<(String, String)>,
}

impl Recorded {
    /// Every value of a form field, in order.
    pub fn form_values(&self, key: &str) -> Vec<&str> {
        values(&self.form, key)
    }
    pub fn form_value(&self, key: &str) -> Option<&str> {
        self.form_values(key).into_iter().next()
    }
    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_pem: String,
}

impl Keys {
    fn generate() -> Keys {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Keys {
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            // ring verifies ES256 against the uncompressed point.
            decoding: DecodingKey::from_ec_der(pair.public_key_raw()),
            public_pem: pair.public_key_pem(),
        }
    }
}

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
}

/// A running token-exchange server; stops on drop.
pub struct Sts {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    acceptor: Option<JoinHandle<()>>,
    base_url: String,
}

impl Sts {
    pub fn start(options: StsOptions) -> Sts {
        Sts::serve(tiny_http::Server::http("127.0.0.1:0").unwrap(), options, "http")
    }

    /// The same server over HTTPS with the given PEM certificate chain and
    /// PKCS#8 key (e.g. from rcgen), for TLS trust tests.
    pub fn start_https(options: StsOptions, cert_pem: &str, key_pem: &str) -> Sts {
        let ssl = tiny_http::SslConfig {
            certificate: cert_pem.as_bytes().to_vec(),
            private_key: key_pem.as_bytes().to_vec(),
        };
        Sts::serve(tiny_http::Server::https("127.0.0.1:0", ssl).unwrap(), options, "https")
    }

    fn serve(server: tiny_http::Server, options: StsOptions, scheme: &str) -> Sts {
        let server = Arc::new(server);
        let port = server.server_addr().to_ip().unwrap().port();
        let shared = Arc::new(Shared {
            options: Mutex::new(options),
            fault: Mutex::new((Fault::None, None)),
            recorded: Mutex::new(Vec::new()),
            token_requests: AtomicUsize::new(0),
            oidc_requests: AtomicUsize::new(0),
            idp: Keys::generate(),
            sts: Keys::generate(),
            stopped: AtomicBool::new(false),
        });
        let (s, sh) = (Arc::clone(&server), Arc::clone(&shared));
        let acceptor = std::thread::spawn(move || {
            loop {
                match s.recv() {
                    Ok(request) => {
                        let sh = Arc::clone(&sh);
                        std::thread::spawn(move || handle(&sh, request));
                    }
                    // `unblock` from Drop also lands here.
                    Err(_) if sh.stopped.load(Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
        });
        Sts { shared, server, acceptor: Some(acceptor), base_url: format!("{scheme}://127.0.0.1:{port}") }
    }

    /// The token endpoint: `http://127.0.0.1:PORT/token`.
    pub fn url(&self) -> String {
        format!("{}/token", self.base_url)
    }
    pub fn base_url(&self) -> String {
        self.base_url.clone()
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
        self.shared.options().oidc_request_token.clone()
    }
    pub fn issuer(&self) -> String {
        self.shared.options().issuer.clone()
    }
    pub fn access_token_algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
    /// Verifies access tokens this server issues (ES256).
    pub fn access_token_decoding_key(&self) -> DecodingKey {
        self.shared.sts.decoding.clone()
    }
    /// The same key as SPKI PEM.
    pub fn access_token_public_key_pem(&self) -> String {
        self.shared.sts.public_pem.clone()
    }

    /// A subject token from the built-in IdP, audience = this STS's issuer.
    /// A negative lifetime gives a token that is already expired.
    pub fn mint_subject_token(&self, sub: &str, lifetime_secs: i64) -> String {
        let aud = self.issuer();
        self.shared.mint_subject_token(sub, &aud, lifetime_secs)
    }
    pub fn mint_subject_token_for(&self, sub: &str, aud: &str, lifetime_secs: i64) -> String {
        self.shared.mint_subject_token(sub, aud, lifetime_secs)
    }

    /// POST /token requests so far, failed ones included.
    pub fn requests(&self) -> usize {
        self.shared.token_requests.load(Ordering::SeqCst)
    }
    pub fn oidc_requests(&self) -> usize {
        self.shared.oidc_requests.load(Ordering::SeqCst)
    }
    /// Recorded requests to one path, any method.
    pub fn requests_to(&self, path: &str) -> usize {
        lock(&self.shared.recorded).iter().filter(|r| r.path == path).count()
    }
    /// The last POST /token request.
    pub fn last_request(&self) -> Option<Recorded> {
        let recorded = lock(&self.shared.recorded);
        recorded.iter().rev().find(|r| r.path == "/token").cloned()
    }
    /// Every request, in arrival order (`/stats` excepted).
    pub fn all_requests(&self) -> Vec<Recorded> {
        lock(&self.shared.recorded).clone()
    }
    pub fn reset_counts(&self) {
        self.shared.token_requests.store(0, Ordering::SeqCst);
        self.shared.oidc_requests.store(0, Ordering::SeqCst);
        lock(&self.shared.recorded).clear();
    }

    /// Applies to every following POST /token until changed.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = (fault, None);
    }
    /// Applies to the next `times` POST /token requests, then back to normal.
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        *lock(&self.shared.fault) = (fault, Some(times));
    }
    pub fn set_lifetime(&self, secs: i64) {
        self.shared.options().lifetime_secs = secs;
    }
    /// Changes any option while running.
    pub fn update_options(&self, change: impl FnOnce(&mut StsOptions)) {
        change(&mut self.shared.options());
    }
}

impl Drop for Sts {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not wedge the server for the others.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn options(&self) -> MutexGuard<'_, StsOptions> {
        lock(&self.options)
    }

    fn mint_subject_token(&self, sub: &str, aud: &str, lifetime_secs: i64) -> String {
        let now = now_secs();
        let claims =
            json!({"iss": IDP_ISSUER, "sub": sub, "aud": aud, "iat": now, "exp": now + lifetime_secs});
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.idp.encoding).unwrap()
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

type Reply = tiny_http::Response<Box<dyn Read + Send>>;

fn reply(status: u16, content_type: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> Reply {
    let len = body.len();
    let mut headers = vec![header("Content-Type", content_type)];
    headers.extend(extra.iter().map(|(k, v)| header(k, v)));
    tiny_http::Response::new(
        tiny_http::StatusCode(status),
        headers,
        Box::new(Cursor::new(body)),
        Some(len),
        None,
    )
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    // Values are ours or test-chosen; an unencodable one degrades to empty.
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|()| tiny_http::Header::from_bytes(name.as_bytes(), &b""[..]).unwrap())
}

fn json_reply(status: u16, body: &Value, extra: &[(&str, &str)]) -> Reply {
    reply(status, "application/json", body.to_string().into_bytes(), extra)
}

/// Returns an RFC 6749 error from the enclosing function.
macro_rules! reject {
    ($code:expr, $($arg:tt)*) => {
        return Err(oauth_error($code, format!($($arg)*)))
    };
}

/// An RFC 6749 section 5.2 error.
struct OAuthError {
    code: &'static str,
    description: String,
}

fn oauth_error(code: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError { code, description: description.into() }
}

impl OAuthError {
    fn reply(&self) -> Reply {
        let body = json!({"error": self.code, "error_description": self.description});
        if self.code == "invalid_client" {
            json_reply(401, &body, &[("WWW-Authenticate", "Basic realm=\"local-sts\"")])
        } else {
            json_reply(400, &body, &[])
        }
    }
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let method = request.method().as_str().to_string();
    let (path, query) = split_url(request.url());
    let headers = request.headers().iter().map(|h| (h.field.to_string(), h.value.to_string())).collect();
    let mut body = Vec::new();
    let read = request.as_reader().take(MAX_BODY + 1).read_to_end(&mut body);
    let mut rec = Recorded {
        method,
        path,
        query: parse_urlencoded(&query).unwrap_or_default(),
        headers,
        form: Vec::new(),
    };
    // An unreadable or oversized body still counts as a request.
    let body = (read.is_ok() && body.len() as u64 <= MAX_BODY).then_some(body.as_slice());
    let response = route(shared, &mut rec, body);
    let _ = request.respond(response);
}

fn route(shared: &Shared, rec: &mut Recorded, body: Option<&[u8]>) -> Reply {
    match rec.path.as_str() {
        "/token" => {
            shared.token_requests.fetch_add(1, Ordering::SeqCst);
            let form = form_body(rec, body);
            if let Ok(pairs) = &form {
                rec.form = pairs.clone();
            }
            lock(&shared.recorded).push(rec.clone());
            if rec.method != "POST" {
                return json_reply(405, &json!({"error": "invalid_request"}), &[("Allow", "POST")]);
            }
            token_endpoint(shared, rec, form)
        }
        "/github-oidc" => {
            shared.oidc_requests.fetch_add(1, Ordering::SeqCst);
            lock(&shared.recorded).push(rec.clone());
            github_oidc(shared, rec)
        }
        "/stats" => json_reply(
            200,
            &json!({
                "requests": shared.token_requests.load(Ordering::SeqCst),
                "oidc_requests": shared.oidc_requests.load(Ordering::SeqCst),
            }),
            &[],
        ),
        _ => {
            lock(&shared.recorded).push(rec.clone());
            json_reply(404, &json!({"error": "not_found"}), &[])
        }
    }
}

fn form_body(rec: &Recorded, body: Option<&[u8]>) -> Result<Vec<(String, String)>, OAuthError> {
    let body = body.ok_or_else(|| oauth_error("invalid_request", "request body unreadable or over 1 MiB"))?;
    let content_type = rec.header("Content-Type").unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        reject!(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded, got {content_type:?}"
        );
    }
    let text = std::str::from_utf8(body).map_err(|_| oauth_error("invalid_request", "body is not UTF-8"))?;
    parse_urlencoded(text).ok_or_else(|| oauth_error("invalid_request", "malformed form body"))
}

fn token_endpoint(shared: &Shared, rec: &Recorded, form: Result<Vec<(String, String)>, OAuthError>) -> Reply {
    match shared.take_fault() {
        Fault::None => {}
        Fault::Status500 => {
            return json_reply(
                500,
                &json!({"error": "server_error", "error_description": "injected 500"}),
                &[],
            );
        }
        Fault::TooMany { retry_after_secs } => {
            let body = json!({"error": "temporarily_unavailable", "error_description": "injected 429"});
            return json_reply(429, &body, &[("Retry-After", &retry_after_secs.to_string())]);
        }
        Fault::Hang { secs } => shared.sleep(Duration::from_secs(secs)),
        Fault::Delay { millis } => shared.sleep(Duration::from_millis(millis)),
        Fault::MalformedJson => {
            return reply(200, "application/json", b"<html>this is not JSON".to_vec(), &[]);
        }
        Fault::InvalidGrant => {
            return oauth_error("invalid_grant", "injected invalid_grant").reply();
        }
        Fault::InvalidTarget => {
            return oauth_error("invalid_target", "injected invalid_target").reply();
        }
        Fault::Redirect { location } => {
            return reply(307, "text/plain", b"moved".to_vec(), &[("Location", &location)]);
        }
        Fault::HugeBody { bytes } => {
            let body: Box<dyn Read + Send> = Box::new(std::io::repeat(b' ').take(bytes));
            let len = usize::try_from(bytes).ok();
            let headers = vec![header("Content-Type", "application/json")];
            let response = tiny_http::Response::new(tiny_http::StatusCode(200), headers, body, len, None);
            // Declare Content-Length so a client can refuse before reading.
            return response.with_chunked_threshold(usize::MAX);
        }
        Fault::HugeChunkedBody { bytes } => {
            // No length up front: the client must count while reading.
            let body: Box<dyn Read + Send> = Box::new(std::io::repeat(b' ').take(bytes));
            let headers = vec![header("Content-Type", "application/json")];
            return tiny_http::Response::new(tiny_http::StatusCode(200), headers, body, None, None);
        }
    }
    let result = form.and_then(|form| exchange(shared, rec, &form));
    match result {
        Ok(body) => json_reply(200, &body, &[("Cache-Control", "no-store")]),
        Err(e) => e.reply(),
    }
}

fn exchange(shared: &Shared, rec: &Recorded, form: &[(String, String)]) -> Result<Value, OAuthError> {
    let opts = shared.options().clone();
    for key in SINGLE_VALUED {
        if values(form, key).len() > 1 {
            reject!("invalid_request", "parameter {key} repeated");
        }
    }
    let single = |key: &str| values(form, key).into_iter().next().filter(|v| !v.is_empty());
    match single("grant_type") {
        None => reject!("invalid_request", "missing grant_type"),
        Some(GRANT_TYPE_TOKEN_EXCHANGE) => {}
        Some(other) => {
            reject!("unsupported_grant_type", "grant_type {other} is not supported");
        }
    }
    authenticate_client(&opts, rec, form)?;
    let subject_token =
        single("subject_token").ok_or_else(|| oauth_error("invalid_request", "missing subject_token"))?;
    match single("subject_token_type") {
        None => reject!("invalid_request", "missing subject_token_type"),
        Some(t) if t == opts.subject_token_type => {}
        Some(t) => {
            reject!("invalid_request", "unsupported subject_token_type {t}");
        }
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.leeway = 0;
    validation.validate_aud = false; // GitHub-style tokens carry any audience.
    validation.set_issuer(&[IDP_ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let subject = jsonwebtoken::decode::<Value>(subject_token, &shared.idp.decoding, &validation)
        .map_err(|e| oauth_error("invalid_grant", format!("subject token rejected: {e}")))?;
    let sub = subject.claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_string();

    let requested_type = single("requested_token_type").unwrap_or(TOKEN_TYPE_ACCESS_TOKEN);
    if requested_type != TOKEN_TYPE_ACCESS_TOKEN && requested_type != TOKEN_TYPE_JWT {
        reject!("invalid_request", "cannot issue requested_token_type {requested_type}");
    }
    let audiences = values(form, "audience");
    let allowed = opts.allowed_audiences.as_deref();
    if let Some(bad) = audiences.iter().find(|a| allowed.is_some_and(|ok| !ok.iter().any(|x| x == *a))) {
        reject!("invalid_target", "audience {bad} is not served here");
    }
    let resources = values(form, "resource");
    if let Some(bad) = resources.iter().find(|r| !r.contains("://")) {
        reject!("invalid_target", "resource {bad} is not an absolute URI");
    }
    let scope = single("scope");

    let now = now_secs();
    let jti = unique_id();
    let mut claims = json!({
        "iss": opts.issuer, "sub": sub, "iat": now, "jti": jti,
        "exp": now + opts.jwt_lifetime_secs.unwrap_or(opts.lifetime_secs),
    });
    let aud: Option<Value> = match (opts.audience_claim, audiences.as_slice()) {
        (_, []) => opts.default_audience.clone().map(Value::from),
        (AudienceClaim::Auto, [one]) | (AudienceClaim::String, [one, ..]) => Some(json!(one)),
        (_, many) => Some(json!(many)),
    };
    if let Some(aud) = aud {
        claims["aud"] = aud;
    }
    if let Some(scope) = scope {
        claims["scope"] = json!(scope);
    }
    match resources.as_slice() {
        [] => {}
        [one] => claims["resource"] = json!(one),
        many => claims["resource"] = json!(many),
    }
    let access_token = if opts.opaque_tokens {
        format!("opaque.{jti}")
    } else {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("local-sts".to_string());
        jsonwebtoken::encode(&header, &claims, &shared.sts.encoding)
            .map_err(|e| oauth_error("invalid_request", format!("signing failed: {e}")))?
    };
    let mut response = json!({
        "access_token": access_token,
        "issued_token_type": requested_type,
        "token_type": opts.token_type,
    });
    if opts.send_expires_in {
        response["expires_in"] = json!(opts.lifetime_secs);
    }
    if let Some(scope) = scope {
        response["scope"] = json!(scope);
    }
    Ok(response)
}

fn authenticate_client(
    opts: &StsOptions,
    rec: &Recorded,
    form: &[(String, String)],
) -> Result<(), OAuthError> {
    let Some(client) = &opts.client else {
        return Ok(());
    };
    let basic = rec.header("Authorization").and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim().to_string())
    });
    let post_secret = values(form, "client_secret").into_iter().next();
    let (id, secret, method) = match (basic, post_secret) {
        (Some(_), Some(_)) => {
            return Err(oauth_error("invalid_request", "more than one client authentication method"));
        }
        (Some(b64), None) => {
            // RFC 6749 2.3.1: id and secret are form-urlencoded, then joined.
            let decoded = base64_decode(&b64).and_then(|b| String::from_utf8(b).ok());
            let pair = decoded.as_deref().and_then(|s| s.split_once(':'));
            let pair = pair.and_then(|(i, s)| Some((form_decode(i)?, form_decode(s)?)));
            let (id, secret) =
                pair.ok_or_else(|| oauth_error("invalid_client", "malformed Basic credentials"))?;
            (id, secret, ClientAuthMethod::Basic)
        }
        (None, Some(secret)) => {
            let id = values(form, "client_id").into_iter().next().unwrap_or_default();
            (id.to_string(), secret.to_string(), ClientAuthMethod::Post)
        }
        (None, None) => {
            return Err(oauth_error("invalid_client", "client authentication required"));
        }
    };
    if client.method != ClientAuthMethod::Either && client.method != method {
        reject!("invalid_client", "client authentication by {method:?} is not accepted");
    }
    if id != client.id || secret != client.secret {
        return Err(oauth_error("invalid_client", "unknown client or wrong secret"));
    }
    Ok(())
}

fn github_oidc(shared: &Shared, rec: &Recorded) -> Reply {
    let opts = shared.options().clone();
    let expected = format!("Bearer {}", opts.oidc_request_token);
    if rec.method != "GET" {
        return json_reply(405, &json!({"message": "use GET"}), &[("Allow", "GET")]);
    }
    if rec.header("Authorization") != Some(expected.as_str()) {
        return json_reply(401, &json!({"message": "bad or missing bearer token"}), &[]);
    }
    if rec.header("User-Agent") != Some(GITHUB_OIDC_USER_AGENT) {
        return json_reply(403, &json!({"message": "User-Agent must be actions/oidc-client"}), &[]);
    }
    let audience = values(&rec.query, "audience").into_iter().next().unwrap_or("https://github.com/octo");
    let token = shared.mint_subject_token(&opts.oidc_subject, audience, 300);
    json_reply(200, &json!({"count": 1, "value": token}), &[])
}

fn values<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

fn split_url(url: &str) -> (String, String) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    (path.to_string(), query.to_string())
}

/// `application/x-www-form-urlencoded` pairs, in order; `None` if malformed.
pub(crate) fn parse_urlencoded(text: &str) -> Option<Vec<(String, String)>> {
    let pairs = text.split('&').filter(|p| !p.is_empty());
    pairs
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

pub(crate) fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// Standard base64, padding optional; `None` on any other character.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = ((acc << 6) | u32::from(v)) & 0xff_ffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub(crate) fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{nanos:x}-{:x}-{:x}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}
