//! The realm's one endpoint, `/auth`: Docker's Basic flow (`GET`) and the
//! OAuth flow for identity tokens (`POST`), both ending in [`issue`].

use std::io::Read;
use std::sync::atomic::Ordering;

use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Value, json};

use super::{Access, Grant, Shared};
use crate::codec::{base64_decode, now_secs, parse_urlencoded, rfc3339, unique_id};
use crate::serve::{Reply, header, json_reply, lock, request_header, split_target};

const MAX_BODY: u64 = 1024 * 1024;

/// A refusal: the status, and the message in distribution's error shape,
/// which the Docker CLI prints as "unauthorized: <message>".
struct Refusal(u16, String);

impl Refusal {
    fn reply(&self) -> Reply {
        let code = if self.0 == 401 { "UNAUTHORIZED" } else { "DENIED" };
        let body = json!({"errors": [{"code": code, "message": self.1, "detail": null}]});
        let mut response = json_reply(self.0, &body, &[]);
        if self.0 == 401 {
            response.add_header(header("WWW-Authenticate", "Basic realm=\"local-realm\""));
        }
        response
    }
}

pub(super) fn handle(shared: &Shared, mut request: tiny_http::Request) {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let method = request.method().as_str().to_string();
    let (path, query) = split_target(request.url());
    let authorization = request_header(&request, "Authorization");
    let content_type = request_header(&request, "Content-Type").unwrap_or_default();
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
        parse_urlencoded(&query)
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
) -> Result<Reply, Refusal> {
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
    let body =
        json!({"token": token, "access_token": token, "expires_in": expires_in, "issued_at": rfc3339(now)});
    Ok(json_reply(200, &body, &[]))
}

/// The OAuth flow Docker uses for identity tokens (username `<token>`).
fn token_post(shared: &Shared, form: &[(String, String)], grant: &mut Grant) -> Result<Reply, Refusal> {
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
    Ok(json_reply(200, &body, &[]))
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
