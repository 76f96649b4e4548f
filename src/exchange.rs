//! The RFC 8693 token exchange: one form POST to the registry's token
//! endpoint, and the answer turned into a token with an expiry.
//!
//! The wire is modelled with types: [`ExchangeRequest`] holds every field
//! the spec defines that the config can set, [`TokenResponse`] and
//! [`ErrorResponse`] the two shapes an endpoint may answer with (RFC 8693
//! section 2.2, RFC 6749 section 5.2).

use std::path::Path;

use crate::client_auth::KeySettings;
use crate::config::{ClientAuth, SourceSpec};
use crate::deadline::Deadline;
use crate::http::{Http, HttpError};
use crate::secret::Secret;

/// RFC 8693's grant type.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// One exchange, resolved against its registry entry (templates filled);
/// the client secret is read when the exchange runs.
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
    /// Where the client's secret comes from, if it has one.
    pub client_secret: Option<&'a SourceSpec>,
    /// How the client authenticates.
    pub client_auth: ClientAuth,
    /// The key, for `private_key_jwt` and mutual TLS.
    pub client_key: Option<KeySettings<'a>>,
    /// RFC 8693 delegation: the actor token and its type.
    pub actor: Option<(&'a Secret, &'a str)>,
    /// Extra trust roots for the endpoint.
    pub ca_file: Option<&'a Path>,
    /// What to do if the STS rejects the subject token (see
    /// [`SourceSpec::when_rejected`](crate::config::SourceSpec::when_rejected)).
    pub subject_rejected: &'static str,
}

impl std::fmt::Debug for ExchangeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeRequest")
            .field("registry", &self.registry)
            .field("endpoint", &self.endpoint)
            .field("subject_token", &self.subject_token.fingerprint())
            .field("actor_token", &self.actor.map(|(t, _)| t.fingerprint()))
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
    pub fn form<'s>(&'s self, client_secret: Option<&'s Secret>) -> Vec<(&'static str, &'s str)> {
        let mut form = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", self.subject_token.expose()),
            ("subject_token_type", self.subject_token_type),
        ];
        if let Some((token, token_type)) = self.actor {
            form.push(("actor_token", token.expose()));
            form.push(("actor_token_type", token_type));
        }
        form.extend(self.audience.iter().map(|a| ("audience", a.as_str())));
        form.extend(self.resource.iter().map(|r| ("resource", r.as_str())));
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        if let Some(t) = self.requested_token_type {
            form.push(("requested_token_type", t));
        }
        match (self.client_auth, self.client_id, client_secret) {
            (ClientAuth::Post, Some(id), secret) => {
                form.push(("client_id", id));
                if let Some(s) = secret {
                    form.push(("client_secret", s.expose()));
                }
            }
            // A public client identifies itself in the body (RFC 6749 2.3.1).
            (ClientAuth::Basic, Some(id), None) => form.push(("client_id", id)),
            // RFC 8705 section 2 requires client_id with mutual TLS; RFC 7523
            // makes it optional beside an assertion, and providers' own
            // examples (Okta, Keycloak) send it.
            (
                ClientAuth::PrivateKeyJwt | ClientAuth::TlsClientAuth | ClientAuth::SelfSignedTlsClientAuth,
                Some(id),
                _,
            ) => form.push(("client_id", id)),
            _ => {}
        }
        form
    }

    /// What the request asks for, as `key=value` words for the debug log:
    /// the subject as its fingerprint, lists comma-separated, and unset
    /// fields left out.
    fn log_fields(&self) -> String {
        let mut fields = vec![
            format!("subject={}", self.subject_token.fingerprint()),
            format!("subject_token_type={}", self.subject_token_type),
        ];
        if let Some((token, token_type)) = self.actor {
            fields.push(format!("actor={}", token.fingerprint()));
            fields.push(format!("actor_token_type={token_type}"));
        }
        let lists = [("audience", &self.audience), ("resource", &self.resource)];
        fields
            .extend(lists.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", v.join(","))));
        let optional = [
            ("scope", self.scope.as_deref()),
            ("requested_token_type", self.requested_token_type),
            ("client_id", self.client_id),
        ];
        // Quoted: a scope holds spaces.
        fields.extend(optional.iter().filter_map(|(k, v)| v.map(|v| format!("{k}=\"{v}\""))));
        if self.client_id.is_some() {
            fields.push(format!("client_auth={}", self.client_auth.name()));
        }
        fields.join(" ")
    }

    /// `Authorization: Basic` for `client_secret_basic`: id and secret are
    /// form-urlencoded before base64, as RFC 6749 section 2.3.1 requires.
    fn basic_auth(&self, client_secret: Option<&Secret>) -> Option<(String, String)> {
        match (self.client_auth, self.client_id, client_secret) {
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
    /// Lifetime in seconds; zero or negative means the token has already
    /// expired, which is never a success.
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub expires_in: Option<i64>,
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

/// Some servers send `expires_in` as a string; accept a number either way,
/// in any form JSON allows (`300`, `-5.5`, `3e2`), and ignore anything
/// else (`null`, `"soon"`, `"NaN"`) rather than fail. The sign is kept: a
/// negative lifetime is the server saying the token has expired, not a
/// lifetime it forgot to send, whichever way it is spelt.
fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().and_then(whole_seconds)),
        Some(serde_json::Value::String(s)) => {
            let s = s.trim();
            s.parse().ok().or_else(|| s.parse::<f64>().ok().and_then(whole_seconds))
        }
        _ => None,
    })
}

/// Whole seconds of a lifetime given with a fraction or an exponent. `as`
/// truncates toward zero and saturates: 1e30 becomes i64::MAX, which the
/// cache caps, and -1e30 i64::MIN, long expired. Not a number at all is no
/// lifetime.
fn whole_seconds(f: f64) -> Option<i64> {
    (!f.is_nan()).then_some(f as i64)
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

/// Why an exchange failed. Messages name the registry and the endpoint
/// once, carry the server's words, never a token, and say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The endpoint refused, with an RFC 6749 error body.
    #[error("the token endpoint {endpoint} refused the exchange for {registry}: {error}{} (HTTP {status}){}",
        description.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
        advice(error, rejected, *client_auth))]
    Refused {
        /// The registry's config key.
        registry: String,
        /// The token endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The RFC 6749 error code, e.g. `invalid_grant`.
        error: String,
        /// The server's description.
        description: Option<String>,
        /// What to do about `invalid_grant`, which depends on where the
        /// subject token came from.
        rejected: &'static str,
        /// How the client authenticated, for what to do about
        /// `invalid_client`.
        client_auth: ClientAuth,
    },
    /// No connection could be made.
    #[error(
        "cannot reach the token endpoint {endpoint} for {registry} ({cause}); is it running and reachable from \
         here? try `docker-credential-exchange doctor`"
    )]
    Unreachable {
        /// The registry's config key.
        registry: String,
        /// The token endpoint.
        endpoint: String,
        /// Why, as the system said it ("connection refused").
        cause: String,
    },
    /// The endpoint's side: the deadline, a broken connection, a status
    /// without an error body, a malformed answer.
    #[error("token exchange for {registry} at {endpoint} failed: {reason}")]
    Failed {
        /// The registry's config key.
        registry: String,
        /// The token endpoint.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The endpoint is overloaded or down (429 or 5xx) and said in
    /// `Retry-After` when to come back, still so after the retries. Shared
    /// like the others, and remembered no longer than it said.
    #[error(
        "the token endpoint {endpoint} could not take the exchange for {registry} (HTTP {status}{}) and asks to be \
         retried in {retry_after}s",
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    Unavailable {
        /// The registry's config key.
        registry: String,
        /// The token endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The RFC 6749 error and description, if the body had them.
        detail: Option<String>,
        /// Its `Retry-After`, in seconds.
        retry_after: u64,
    },
    /// This process's side, before anything was sent: a client secret it
    /// cannot read, a `ca_file` it cannot use.
    #[error("token exchange for {registry} at {endpoint} failed: {reason}")]
    Local {
        /// The registry's config key.
        registry: String,
        /// The token endpoint.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
}

impl ExchangeError {
    /// Whether the failure came from the endpoint, so that helpers waiting
    /// for the same exchange would meet it too and may reuse it; one that
    /// came from this process's environment is its own.
    pub fn is_shared(&self) -> bool {
        !matches!(self, ExchangeError::Local { .. })
    }

    /// When the endpoint said a retry may fare better, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ExchangeError::Unavailable { retry_after, .. } => {
                Some(std::time::Duration::from_secs(*retry_after))
            }
            _ => None,
        }
    }
}

/// What a person does about an RFC 6749 error code.
fn advice(error: &str, rejected: &str, client_auth: ClientAuth) -> String {
    match (error, client_auth) {
        ("invalid_grant", _) => format!("; {rejected}"),
        ("invalid_client" | "unauthorized_client", ClientAuth::Basic | ClientAuth::Post) => {
            "; check client_id and client_secret in the config".into()
        }
        ("invalid_client" | "unauthorized_client", ClientAuth::PrivateKeyJwt) => {
            "; check client_id and client_key in the config, and that the STS holds the key's public half \
             (and client_key_id, if it looks keys up by kid)"
                .into()
        }
        ("invalid_client" | "unauthorized_client", _) => {
            "; check client_id in the config, and that the STS trusts client_certificate for it".into()
        }
        ("invalid_target" | "invalid_scope", _) => {
            "; check audience, resource and scope in the config".into()
        }
        _ => String::new(),
    }
}

/// Performs the exchange: reads the client secret, builds the HTTP client
/// for the endpoint, sends the form and reads the answer, all by `deadline`.
///
/// # Errors
/// See [`ExchangeError`].
pub fn exchange(req: &ExchangeRequest<'_>, deadline: &Deadline) -> Result<TokenResponse, ExchangeError> {
    let failed = |reason: String| ExchangeError::Failed {
        registry: req.registry.to_owned(),
        endpoint: req.endpoint.to_owned(),
        reason,
    };
    let local = |reason: String| ExchangeError::Local {
        registry: req.registry.to_owned(),
        endpoint: req.endpoint.to_owned(),
        reason,
    };
    let client_secret = match req.client_secret {
        Some(spec) => Some(
            crate::source::read(spec, deadline)
                .map_err(|e| local(format!("the client secret cannot be read: {e}")))?
                .ok_or_else(|| local(format!("the client secret ({}) is not available", spec.describe())))?,
        ),
        None => None,
    };
    let mut proof = match &req.client_key {
        Some(settings) => {
            crate::client_auth::prove(settings, req.endpoint, deadline).map_err(|e| local(e.to_string()))?
        }
        None => crate::client_auth::Proof::default(),
    };
    let url = url::Url::parse(req.endpoint).map_err(|e| local(format!("the endpoint is not a URL ({e})")))?;
    let http =
        Http::with_identity(&url, req.ca_file, proof.identity.take()).map_err(|e| local(e.to_string()))?;
    let form = req.form(client_secret.as_ref());
    let basic = req.basic_auth(client_secret.as_ref());
    if let Some((id, secret)) = &basic {
        // What the `Authorization` header carries, so that an endpoint
        // echoing the header does not get it into a message.
        use base64::Engine as _;
        crate::redact::remember(&base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")));
    }
    crate::log::debug!("exchanging for {} at {}: {}", req.registry, req.endpoint, req.log_fields());
    let attempts = std::cell::Cell::new(0u32);
    let resp = http
        .send(deadline, |client| {
            attempts.set(attempts.get() + 1);
            let rb = client.post(url.clone()).header(reqwest::header::ACCEPT, "application/json");
            let mut rb = proof.with_form(rb, &form, attempts.get());
            if let Some((id, secret)) = &basic {
                rb = rb.basic_auth(id, Some(secret));
            }
            rb
        })
        .map_err(|e| match e {
            HttpError::Connect(cause) => ExchangeError::Unreachable {
                registry: req.registry.to_owned(),
                endpoint: req.endpoint.to_owned(),
                cause,
            },
            other => {
                let reason = other.to_string();
                let hint = crate::client_auth::tls_alert_hint(&reason, req.client_auth);
                failed(format!("{reason}{}", hint.map(|h| format!("; {h}")).unwrap_or_default()))
            }
        })?;
    crate::log::debug!(
        "exchange for {} answered HTTP {} after {} attempt(s)",
        req.registry,
        resp.status,
        resp.attempts
    );
    if resp.status == 200 {
        let parsed: TokenResponse = crate::json::from_object_slice(&resp.body)
            .map_err(|e| failed(format!("the answer is not a token response ({})", e.reason)))?;
        let token = parsed.access_token.expose();
        if token.trim().is_empty() || token.trim() != token || token.chars().any(char::is_control) {
            return Err(failed(
                "the answer's access_token is not a token (empty, or with surrounding spaces or control characters)"
                    .into(),
            ));
        }
        return Ok(parsed);
    }
    let oauth_error = crate::json::from_object_slice::<ErrorResponse>(&resp.body);
    if let Some(wait) = resp.retry_after {
        return Err(ExchangeError::Unavailable {
            registry: req.registry.to_owned(),
            endpoint: req.endpoint.to_owned(),
            status: resp.status,
            detail: oauth_error.ok().map(|err| {
                let description =
                    err.error_description.map(|d| format!(": {}", crate::redact::bounded(&d, 300)));
                format!("{}{}", crate::redact::bounded(&err.error, 80), description.unwrap_or_default())
            }),
            retry_after: wait.as_secs(),
        });
    }
    match oauth_error {
        Ok(err) => Err(ExchangeError::Refused {
            registry: req.registry.to_owned(),
            endpoint: req.endpoint.to_owned(),
            status: resp.status,
            error: crate::redact::bounded(&err.error, 80),
            description: err.error_description.map(|d| crate::redact::bounded(&d, 300)),
            rejected: req.subject_rejected,
            client_auth: req.client_auth,
        }),
        Err(_) => Err(failed(format!("HTTP {} without an OAuth error body", resp.status))),
    }
}

#[cfg(test)]
mod tests;
