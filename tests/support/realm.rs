//! A token server ("realm") speaking distribution's Token Authentication, for
//! Debian's docker-registry (distribution 2.8). It trusts access tokens issued
//! by the local STS and turns them into registry tokens, granting only the
//! intersection of what the client asks for and what the STS token's `scope`
//! claim allows.
//!
//! Distribution 2.8 verifies a registry token by the certificate chain in the
//! JWS `x5c` header against its `rootcertbundle`, insists on `aud` being a
//! JSON string equal to its `service`, and on `iss` equal to its `issuer`; the
//! shapes below follow from that.
//!
//! Included as `mod realm;` from `tests/support/mod.rs`; refers to no other
//! support module, so it can also be included by `#[path]`.
#![allow(dead_code)]

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use super::sts::{base64_decode, now_secs, parse_urlencoded, unique_id};

const MAX_BODY: u64 = 1024 * 1024;

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

struct Shared {
    options: RealmOptions,
    encoding: EncodingKey,
    decoding: DecodingKey,
    x5c: String,
    grants: Mutex<Vec<Grant>>,
    requests: AtomicUsize,
    stopped: AtomicBool,
}

/// A running realm; stops on drop and removes its certificate file.
pub struct Realm {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    acceptor: Option<JoinHandle<()>>,
    base_url: String,
    cert_pem: String,
    dir: tempfile::TempDir,
}

impl Realm {
    pub fn start(options: RealmOptions) -> Realm {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "local-realm token signer");
        let cert = params.self_signed(&pair).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rootcert.pem"), cert.pem()).unwrap();

        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let shared = Arc::new(Shared {
            options,
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            decoding: DecodingKey::from_ec_der(pair.public_key_raw()),
            x5c: base64_encode(cert.der()),
            grants: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
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
                    Err(_) if sh.stopped.load(Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
        });
        Realm {
            shared,
            server,
            acceptor: Some(acceptor),
            base_url: format!("http://127.0.0.1:{port}"),
            cert_pem: cert.pem(),
            dir,
        }
    }

    /// The realm for distribution's `auth.token.realm`.
    pub fn url(&self) -> String {
        format!("{}/auth", self.base_url)
    }
    pub fn service(&self) -> &str {
        &self.shared.options.service
    }
    pub fn issuer(&self) -> &str {
        &self.shared.options.issuer
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
        self.shared.decoding.clone()
    }
    /// Requests to any path, refused ones included.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
    pub fn grants(&self) -> Vec<Grant> {
        lock(&self.shared.grants).clone()
    }
    pub fn reset_counts(&self) {
        self.shared.requests.store(0, Ordering::SeqCst);
        lock(&self.shared.grants).clear();
    }
}

impl Drop for Realm {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn json_reply(status: u16, body: &Value) -> tiny_http::Response<Cursor<Vec<u8>>> {
    let mut response = tiny_http::Response::from_data(body.to_string().into_bytes()).with_status_code(status);
    response
        .add_header(tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap());
    response
}

/// A refusal: the status, and the message in distribution's error shape,
/// which the Docker CLI prints as "unauthorized: <message>".
struct Refusal(u16, String);

impl Refusal {
    fn reply(&self) -> tiny_http::Response<Cursor<Vec<u8>>> {
        let code = if self.0 == 401 { "UNAUTHORIZED" } else { "DENIED" };
        let body = json!({"errors": [{"code": code, "message": self.1, "detail": null}]});
        let mut response = json_reply(self.0, &body);
        if self.0 == 401 {
            let challenge = &b"Basic realm=\"local-realm\""[..];
            response.add_header(tiny_http::Header::from_bytes(&b"WWW-Authenticate"[..], challenge).unwrap());
        }
        response
    }
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let header = |name: &str| {
        let found = request.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name));
        found.map(|h| h.value.to_string())
    };
    let authorization = header("Authorization");
    let content_type = header("Content-Type").unwrap_or_default();
    // tiny_http decodes chunked bodies (skopeo sends the POST form chunked).
    let mut body = Vec::new();
    let read = request.as_reader().take(MAX_BODY + 1).read_to_end(&mut body);
    let mut grant = Grant {
        method: method.clone(),
        grant_type: None,
        subject: None,
        requested: vec![],
        granted: vec![],
        error: None,
    };
    let result = if path != "/auth" {
        Err(Refusal(404, "no such endpoint".to_string()))
    } else if read.is_err() || body.len() as u64 > MAX_BODY {
        Err(Refusal(400, "request body unreadable or over 1 MiB".to_string()))
    } else if method == "GET" {
        parse_urlencoded(query)
            .ok_or_else(|| Refusal(400, "malformed query".to_string()))
            .and_then(|q| token_get(shared, &q, authorization.as_deref(), &mut grant))
    } else if method == "POST" {
        let is_form = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded");
        let form = std::str::from_utf8(&body).ok().filter(|_| is_form).and_then(parse_urlencoded);
        form.ok_or_else(|| Refusal(400, "body must be a urlencoded form".to_string()))
            .and_then(|f| token_post(shared, &f, &mut grant))
    } else {
        Err(Refusal(405, "use GET or POST".to_string()))
    };
    let response = result.unwrap_or_else(|refusal| {
        grant.error = Some(refusal.1.clone());
        refusal.reply()
    });
    lock(&shared.grants).push(grant);
    let _ = request.respond(response);
}

/// Docker's Basic flow: `GET /auth?service=…&scope=…` with the STS token as
/// the Basic password.
fn token_get(
    shared: &Shared,
    query: &[(String, String)],
    authorization: Option<&str>,
    grant: &mut Grant,
) -> Result<tiny_http::Response<Cursor<Vec<u8>>>, Refusal> {
    check_service(shared, query)?;
    let credentials = authorization.and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        let decoded = scheme.eq_ignore_ascii_case("basic").then(|| base64_decode(rest.trim()))??;
        let text = String::from_utf8(decoded).ok()?;
        text.split_once(':').map(|(_, password)| password.to_string())
    });
    let password = credentials.ok_or_else(|| Refusal(401, "Basic credentials required".to_string()))?;
    let token = issue(shared, &password, query, grant)?;
    let (now, expires_in) = (now_secs(), shared.options.lifetime_secs);
    Ok(json_reply(
        200,
        &json!({"token": token, "access_token": token, "expires_in": expires_in, "issued_at": rfc3339(now)}),
    ))
}

/// The OAuth flow Docker uses for identity tokens (username `<token>`).
fn token_post(
    shared: &Shared,
    form: &[(String, String)],
    grant: &mut Grant,
) -> Result<tiny_http::Response<Cursor<Vec<u8>>>, Refusal> {
    check_service(shared, form)?;
    let grant_type = first(form, "grant_type").unwrap_or_default();
    grant.grant_type = Some(grant_type.to_string());
    let secret = match grant_type {
        "refresh_token" => first(form, "refresh_token"),
        "password" => first(form, "password"),
        other => return Err(Refusal(400, format!("unsupported grant_type {other:?}"))),
    };
    let secret = secret.ok_or_else(|| Refusal(400, format!("{grant_type} grant without its credential")))?;
    let token = issue(shared, secret, form, grant)?;
    let scope: Vec<String> = grant.granted.iter().map(Access::to_scope).collect();
    let body = json!({"access_token": token, "expires_in": shared.options.lifetime_secs, "issued_at": rfc3339(now_secs()), "scope": scope.join(" ")});
    Ok(json_reply(200, &body))
}

fn check_service(shared: &Shared, params: &[(String, String)]) -> Result<(), Refusal> {
    match first(params, "service") {
        Some(s) if s != shared.options.service => Err(Refusal(400, format!("unknown service {s:?}"))),
        _ => Ok(()),
    }
}

/// Verifies the STS token, intersects scopes, signs the registry token.
fn issue(
    shared: &Shared,
    sts_token: &str,
    params: &[(String, String)],
    grant: &mut Grant,
) -> Result<String, Refusal> {
    let opts = &shared.options;
    for scope in params.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split_whitespace()) {
        grant
            .requested
            .push(Access::parse(scope).ok_or_else(|| Refusal(400, format!("invalid scope {scope:?}")))?);
    }
    let mut validation = Validation::new(opts.sts_algorithm);
    validation.leeway = 0;
    validation.set_issuer(&[&opts.sts_issuer]);
    validation.set_audience(&[&opts.sts_audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let claims = jsonwebtoken::decode::<Value>(sts_token, &opts.sts_decoding_key, &validation)
        .map_err(|e| Refusal(401, format!("STS token rejected: {e}")))?
        .claims;
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_string();
    let allowed: Vec<Access> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split_whitespace()
        .filter_map(Access::parse)
        .collect();
    grant.subject = Some(sub.clone());
    grant.granted = grant.requested.iter().filter_map(|r| intersect(r, &allowed)).collect();

    let now = now_secs();
    let access: Vec<Value> =
        grant.granted.iter().map(|a| json!({"type": a.kind, "name": a.name, "actions": a.actions})).collect();
    let claims = json!({
        "iss": opts.issuer, "sub": sub, "aud": opts.service,
        "exp": now + opts.lifetime_secs, "nbf": now - 5, "iat": now,
        "jti": unique_id(), "access": access,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.x5c = Some(vec![shared.x5c.clone()]);
    jsonwebtoken::encode(&header, &claims, &shared.encoding)
        .map_err(|e| Refusal(500, format!("signing failed: {e}")))
}

/// The requested actions that some allowed entry of the same type covers; an
/// allowed name or action `*` covers everything.
fn intersect(requested: &Access, allowed: &[Access]) -> Option<Access> {
    let covering: Vec<&Access> = allowed
        .iter()
        .filter(|a| a.kind == requested.kind && (a.name == requested.name || a.name == "*"))
        .collect();
    let actions: Vec<String> = requested
        .actions
        .iter()
        .filter(|action| covering.iter().any(|a| a.actions.iter().any(|x| x == *action || x == "*")))
        .cloned()
        .collect();
    (!actions.is_empty()).then(|| Access { actions, ..requested.clone() })
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard, padded: what distribution expects in `x5c`.
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            let pad = i > chunk.len();
            out.push(if pad { '=' } else { B64[(n >> (18 - 6 * i)) as usize & 63] as char });
        }
    }
    out
}

/// UTC seconds as RFC 3339, by the civil-from-days algorithm (no chrono).
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
