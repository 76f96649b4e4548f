//! The RFC 8693 token exchange: one form POST to the registry's token
//! endpoint, and the answer turned into a token with an expiry.
//!
//! The wire is modelled with types: [`ExchangeRequest`] holds every field
//! the spec defines that the config can set, [`TokenResponse`] and
//! [`ErrorResponse`] the two shapes an endpoint may answer with (RFC 8693
//! section 2.2, RFC 6749 section 5.2).

use reqwest::blocking::Client;

use crate::config::ClientAuth;
use crate::secret::Secret;

/// RFC 8693's grant type.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// One exchange, fully resolved (templates filled, secrets read).
pub struct ExchangeRequest<'a> {
    /// The registry, for messages.
    pub registry: &'a str,
    /// The token endpoint.
    pub endpoint: &'a str,
    /// The login token.
    pub subject_token: &'a Secret,
    /// Its type URN.
    pub subject_token_type: &'a str,
    /// Repeated `audience` fields.
    pub audience: Vec<String>,
    /// Repeated `resource` fields.
    pub resource: Vec<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `requested_token_type`.
    pub requested_token_type: Option<&'a str>,
    /// The client's id, if any.
    pub client_id: Option<&'a str>,
    /// The client's secret, if any.
    pub client_secret: Option<&'a Secret>,
    /// How the client authenticates.
    pub client_auth: ClientAuth,
}

impl std::fmt::Debug for ExchangeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeRequest")
            .field("registry", &self.registry)
            .field("endpoint", &self.endpoint)
            .field("subject_token", &self.subject_token.fingerprint())
            .field("audience", &self.audience)
            .field("resource", &self.resource)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ExchangeRequest<'_> {
    /// The form body's fields, in the order they are sent. Lists become
    /// repeated fields, as RFC 8693 section 2.1 says.
    pub fn form(&self) -> Vec<(&'static str, &str)> {
        let mut form = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", self.subject_token.expose()),
            ("subject_token_type", self.subject_token_type),
        ];
        form.extend(self.audience.iter().map(|a| ("audience", a.as_str())));
        form.extend(self.resource.iter().map(|r| ("resource", r.as_str())));
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        if let Some(t) = self.requested_token_type {
            form.push(("requested_token_type", t));
        }
        match (self.client_auth, self.client_id, self.client_secret) {
            (ClientAuth::Post, Some(id), secret) => {
                form.push(("client_id", id));
                if let Some(s) = secret {
                    form.push(("client_secret", s.expose()));
                }
            }
            // A public client identifies itself in the body (RFC 6749 2.3.1).
            (ClientAuth::Basic, Some(id), None) => form.push(("client_id", id)),
            _ => {}
        }
        form
    }

    /// `Authorization: Basic` for `client_secret_basic`: id and secret are
    /// form-urlencoded before base64, as RFC 6749 section 2.3.1 requires.
    fn basic_auth(&self) -> Option<(String, String)> {
        match (self.client_auth, self.client_id, self.client_secret) {
            (ClientAuth::Basic, Some(id), Some(secret)) => {
                Some((form_urlencode(id), form_urlencode(secret.expose())))
            }
            _ => None,
        }
    }
}

fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A successful answer (RFC 8693 section 2.2.1).
#[derive(serde::Deserialize)]
pub struct TokenResponse {
    /// The issued token.
    pub access_token: Secret,
    /// Its type URN.
    #[serde(default)]
    pub issued_token_type: Option<String>,
    /// `Bearer` or `N_A`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Lifetime in seconds.
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub expires_in: Option<u64>,
    /// The granted scope, if it differs from the request.
    #[serde(default)]
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &self.access_token.fingerprint())
            .field("issued_token_type", &self.issued_token_type)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Some servers send `expires_in` as a string; accept a non-negative
/// integer either way and ignore anything else rather than fail.
fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        }
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

use serde::Deserialize as _;

/// An RFC 6749 section 5.2 error body.
#[derive(Debug, serde::Deserialize)]
pub struct ErrorResponse {
    /// The error code, e.g. `invalid_grant`.
    pub error: String,
    /// Human-readable text.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// Why an exchange failed. Messages name the registry and the endpoint and
/// never include a token.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The endpoint refused, with an RFC 6749 error body.
    #[error("token exchange for {registry} at {endpoint} failed: {error}{} (HTTP {status})", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused { registry: String, endpoint: String, status: u16, error: String, description: Option<String> },
    /// Anything else: transport, status without an error body, bad JSON.
    #[error("token exchange for {registry} at {endpoint} failed: {reason}")]
    Failed { registry: String, endpoint: String, reason: String },
}

/// Performs the exchange with `client`.
///
/// # Errors
/// See [`ExchangeError`].
pub fn exchange(client: &Client, req: &ExchangeRequest<'_>) -> Result<TokenResponse, ExchangeError> {
    let failed = |reason: String| ExchangeError::Failed {
        registry: req.registry.to_owned(),
        endpoint: req.endpoint.to_owned(),
        reason: redact(&reason, req),
    };
    let form = req.form();
    let basic = req.basic_auth();
    crate::debug!("exchanging for {}: {:?}", req.registry, req);
    let resp = crate::http::send(|| {
        let mut rb =
            client.post(req.endpoint).header(reqwest::header::ACCEPT, "application/json").form(&form);
        if let Some((id, secret)) = &basic {
            rb = rb.basic_auth(id, Some(secret));
        }
        rb
    })
    .map_err(|e| failed(e.to_string()))?;
    crate::debug!(
        "exchange for {} answered HTTP {} after {} attempt(s)",
        req.registry,
        resp.status,
        resp.attempts
    );
    if resp.status == 200 {
        let parsed: TokenResponse = serde_json::from_slice(&resp.body).map_err(|e| {
            failed(format!("the answer is not a token response ({})", crate::store::describe_json_error(&e)))
        })?;
        if parsed.access_token.is_empty() {
            return Err(failed("the answer's access_token is empty".into()));
        }
        return Ok(parsed);
    }
    match serde_json::from_slice::<ErrorResponse>(&resp.body) {
        Ok(err) => Err(ExchangeError::Refused {
            registry: req.registry.to_owned(),
            endpoint: req.endpoint.to_owned(),
            status: resp.status,
            error: redact(&one_line(&err.error), req),
            description: err.error_description.map(|d| redact(&one_line(&d), req)),
        }),
        Err(_) => Err(failed(format!("HTTP {} without an OAuth error body", resp.status))),
    }
}

/// Server words on one line, bounded, without control characters.
fn one_line(s: &str) -> String {
    let cleaned: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    crate::server_url::truncate_for_message(cleaned.trim()).chars().take(300).collect()
}

/// Servers sometimes echo what they were sent; never let a secret that
/// this request carried come back out in an error.
fn redact(text: &str, req: &ExchangeRequest<'_>) -> String {
    let mut out = text.to_owned();
    let secrets = [Some(req.subject_token), req.client_secret];
    for s in secrets.into_iter().flatten() {
        if s.expose().len() >= 4 {
            out = out.replace(s.expose(), "[REDACTED]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(subject: &'a Secret, secret: Option<&'a Secret>, auth: ClientAuth) -> ExchangeRequest<'a> {
        ExchangeRequest {
            registry: "r.example",
            endpoint: "https://sts.example/token",
            subject_token: subject,
            subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
            audience: vec!["a1".into(), "a2".into()],
            resource: vec!["res".into()],
            scope: Some("repository:team/app:pull".into()),
            requested_token_type: Some("urn:ietf:params:oauth:token-type:access_token"),
            client_id: Some("docker"),
            client_secret: secret,
            client_auth: auth,
        }
    }

    #[test]
    fn form_carries_every_set_parameter_with_repeated_lists() {
        let subject = Secret::new("subj".into());
        let req = request(&subject, None, ClientAuth::Basic);
        let form = req.form();
        let names: Vec<&str> = form.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "grant_type",
                "subject_token",
                "subject_token_type",
                "audience",
                "audience",
                "resource",
                "scope",
                "requested_token_type",
                "client_id"
            ]
        );
        assert_eq!(form[0].1, GRANT_TYPE);
    }

    #[test]
    fn basic_auth_keeps_the_secret_out_of_the_body() {
        let subject = Secret::new("subj".into());
        let cs = Secret::new("c:s%".into());
        let req = request(&subject, Some(&cs), ClientAuth::Basic);
        assert!(req.form().iter().all(|(k, _)| *k != "client_secret" && *k != "client_id"));
        assert_eq!(req.basic_auth(), Some(("docker".into(), "c%3As%25".into())));
    }

    #[test]
    fn post_auth_puts_id_and_secret_in_the_body() {
        let subject = Secret::new("subj".into());
        let cs = Secret::new("cs".into());
        let req = request(&subject, Some(&cs), ClientAuth::Post);
        assert!(req.form().contains(&("client_secret", "cs")));
        assert!(req.basic_auth().is_none());
    }

    #[test]
    fn debug_of_a_request_shows_no_secret() {
        let subject = Secret::new("the-subject-token".into());
        let cs = Secret::new("the-client-secret".into());
        let shown = format!("{:?}", request(&subject, Some(&cs), ClientAuth::Basic));
        assert!(!shown.contains("the-subject-token") && !shown.contains("the-client-secret"));
    }

    #[test]
    fn expires_in_as_string_is_accepted() {
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"t","expires_in":"300"}"#).unwrap();
        assert_eq!(r.expires_in, Some(300));
    }

    #[test]
    fn server_words_echoing_the_subject_are_redacted() {
        let subject = Secret::new("the-subject-token".into());
        let req = request(&subject, None, ClientAuth::Basic);
        assert_eq!(redact("bad token the-subject-token", &req), "bad token [REDACTED]");
    }
}
