//! The STS's routes: the exchange itself (`POST /token`) with its faults and
//! client authentication, GitHub Actions' ID tokens, minting and counts.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};

use super::{
    AudienceClaim, ClientAuthMethod, Fault, GITHUB_OIDC_USER_AGENT, GRANT_TYPE_TOKEN_EXCHANGE, IDP_ISSUER,
    Recorded, Shared, StsOptions, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT, values,
};
use crate::codec::{base64_decode, form_decode, now_secs, parse_urlencoded, unique_id};
use crate::serve::{Reply, header, json_reply, lock, reply, split_target};

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
    "client_assertion",
    "client_assertion_type",
];

/// Returns an RFC 6749 error from the enclosing function.
macro_rules! reject {
    ($code:expr, $($arg:tt)*) => {
        return Err(oauth_error($code, format!($($arg)*)))
    };
}

/// An RFC 6749 section 5.2 error.
pub(super) struct OAuthError {
    code: &'static str,
    description: String,
}

pub(super) fn oauth_error(code: &'static str, description: impl Into<String>) -> OAuthError {
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

pub(super) fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let method = request.method().as_str().to_string();
    let (path, query) = split_target(request.url());
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
        "/mint" => mint(shared, rec),
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

/// `GET /mint?sub=&aud=&lifetime=`: a subject token from the built-in
/// identity provider, for people who drive the server by hand (defaults:
/// `alice`, this STS's issuer, one hour).
fn mint(shared: &Shared, rec: &Recorded) -> Reply {
    if rec.method != "GET" {
        return json_reply(405, &json!({"message": "use GET"}), &[("Allow", "GET")]);
    }
    let query = |key| values(&rec.query, key).into_iter().next();
    let issuer = shared.options().issuer.clone();
    let Ok(lifetime) = query("lifetime").unwrap_or("3600").parse::<i64>() else {
        return json_reply(400, &json!({"message": "lifetime is a whole number of seconds"}), &[]);
    };
    let token =
        shared.mint_subject_token(query("sub").unwrap_or("alice"), query("aud").unwrap_or(&issuer), lifetime);
    reply(200, "text/plain", format!("{token}\n").into_bytes(), &[])
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
    if let Some(shape) = opts.shape {
        super::shapes::check(shape, rec, form)?;
    }
    authenticate_client(shared, &opts, rec, form)?;
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
    let actor = actor(shared, &opts, form, &validation)?;

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
    // RFC 8693 section 4.1: the actor of a delegation.
    if let Some(act) = actor {
        claims["act"] = json!({"sub": act});
    }
    match resources.as_slice() {
        [] => {}
        [one] => claims["resource"] = json!(one),
        many => claims["resource"] = json!(many),
    }
    let access_token = if opts.opaque_tokens {
        format!("opaque.{jti}")
    } else {
        shared
            .sign_access_token(&claims)
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

/// The actor token of a delegation (RFC 8693 section 2.1): a JWT of the
/// built-in IdP with its type, or nothing unless the options demand one.
/// Its `sub` becomes the issued token's `act`.
fn actor(
    shared: &Shared,
    opts: &StsOptions,
    form: &[(String, String)],
    validation: &Validation,
) -> Result<Option<String>, OAuthError> {
    let single = |key: &str| values(form, key).into_iter().next().filter(|v| !v.is_empty());
    match (single("actor_token"), single("actor_token_type")) {
        (None, None) if opts.require_actor => reject!("invalid_request", "an actor_token is required"),
        (None, None) => Ok(None),
        (Some(_), None) => reject!("invalid_request", "actor_token_type is required with actor_token"),
        (None, Some(_)) => reject!("invalid_request", "actor_token_type without actor_token"),
        (Some(token), Some(TOKEN_TYPE_JWT)) => {
            let actor = jsonwebtoken::decode::<Value>(token, &shared.idp.decoding, validation)
                .map_err(|e| oauth_error("invalid_grant", format!("actor token rejected: {e}")))?;
            Ok(actor.claims.get("sub").and_then(Value::as_str).map(str::to_string))
        }
        (Some(_), Some(t)) => reject!("invalid_request", "unsupported actor_token_type {t}"),
    }
}

fn authenticate_client(
    shared: &Shared,
    opts: &StsOptions,
    rec: &Recorded,
    form: &[(String, String)],
) -> Result<(), OAuthError> {
    let basic = rec.header("Authorization").and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim().to_string())
    });
    if let Some(client) = &opts.assertion_client {
        return super::client_auth::verify_assertion(shared, client, basic.is_some(), form);
    }
    if let Some(client) = &opts.tls_client {
        let presented = rec.header(super::client_auth::CLIENT_CERT_HEADER);
        return super::client_auth::verify_tls_client(client, presented, basic.is_some(), form);
    }
    let Some(client) = &opts.client else {
        return Ok(());
    };
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
