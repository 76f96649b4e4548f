//! The one HTTP client the helper uses, for token exchanges and for the
//! GitHub Actions ID-token endpoint, built only when a request is needed
//! (a cache hit never pays for TLS set-up).
//!
//! Policy from DESIGN.md section 3: 10 s to connect, 30 s in all, bodies
//! over 1 MiB refused, redirects never followed (the subject token must not
//! be re-sent elsewhere), and at most 3 retries with exponential back-off
//! and jitter for connection errors, 429 and 5xx, honouring `Retry-After`
//! up to 10 s.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::HeaderMap;

/// Response bodies larger than this are refused.
pub const MAX_BODY: u64 = 1024 * 1024;
/// Retries after the first attempt.
pub const MAX_RETRIES: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TOTAL_TIMEOUT_SECS: u64 = 30;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Overrides the 30 s total timeout (for tests and slow networks).
pub const TIMEOUT_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS";

/// Why a request failed, without any secret in the text.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The client could not be built (bad `ca_file`).
    #[error("{0}")]
    Setup(String),
    /// No response: connection refused, DNS, TLS, timeout.
    #[error("{0}")]
    Transport(String),
    /// The endpoint answered with a redirect, which is never followed.
    #[error(
        "the endpoint answered with a redirect (HTTP {status}) to {location}; redirects are not followed so the token is never re-sent elsewhere; configure the final URL"
    )]
    Redirect { status: u16, location: String },
    /// The body is larger than [`MAX_BODY`].
    #[error("the response is larger than {MAX_BODY} bytes; refusing it")]
    TooLarge,
}

/// A response whose body was read in full (within the limit).
#[derive(Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// How many attempts it took.
    pub attempts: u32,
}

/// Builds the client: timeouts, no redirects, the platform's and webpki's
/// trust roots plus `ca_file`, proxies from the environment.
///
/// # Errors
/// `ca_file` cannot be read or holds no certificate.
pub fn client(ca_file: Option<&Path>) -> Result<Client, HttpError> {
    let total = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(TOTAL_TIMEOUT_SECS);
    let mut builder = Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(Duration::from_secs(total)))
        .timeout(Duration::from_secs(total))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("docker-credential-exchange/", env!("CARGO_PKG_VERSION")))
        .https_only(false);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| HttpError::Setup(format!("cannot read ca_file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            HttpError::Setup(format!("ca_file {} is not PEM certificates: {e}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(HttpError::Setup(format!("ca_file {} holds no certificate", path.display())));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| HttpError::Setup(format!("cannot set up HTTPS: {}", error_chain(&e))))
}

/// Sends the request made by `make` with the retry policy; `make` is called
/// once per attempt. Statuses other than 429 and 5xx come back as they are
/// for the caller to interpret.
///
/// # Errors
/// Transport failure after the retries, a redirect, or an oversized body.
pub fn send(make: impl Fn() -> RequestBuilder) -> Result<Response, HttpError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = make().send();
        let retryable_wait = match &outcome {
            Err(e) if e.is_connect() => Some(backoff(attempt, None)),
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                Some(backoff(attempt, retry_after(r.headers())))
            }
            _ => None,
        };
        if let Some(wait) = retryable_wait
            && attempt <= MAX_RETRIES
        {
            crate::debug!("attempt {attempt} failed ({}); retrying in {wait:?}", describe(&outcome));
            std::thread::sleep(wait);
            continue;
        }
        let resp = outcome.map_err(|e| HttpError::Transport(error_chain(&e)))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| "(no Location)".to_owned(), crate::server_url::truncate_for_message);
            return Err(HttpError::Redirect { status, location });
        }
        let headers = resp.headers().clone();
        if resp.content_length().is_some_and(|n| n > MAX_BODY) {
            return Err(HttpError::TooLarge);
        }
        let mut body = Vec::new();
        resp.take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| HttpError::Transport(format!("reading the response failed: {e}")))?;
        if body.len() as u64 > MAX_BODY {
            return Err(HttpError::TooLarge);
        }
        return Ok(Response { status, headers, body, attempts: attempt });
    }
}

fn describe(outcome: &Result<reqwest::blocking::Response, reqwest::Error>) -> String {
    match outcome {
        Ok(r) => format!("HTTP {}", r.status().as_u16()),
        Err(e) => error_chain(e),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is treated as absent).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// 250 ms, 500 ms, 1 s, … plus up to 50% jitter, or the server's
/// `Retry-After` when it gave one.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait;
    }
    let base = Duration::from_millis(250) * 2u32.saturating_pow(attempt.saturating_sub(1));
    base + base.mul_f64(jitter_fraction() * 0.5)
}

/// A number in [0, 1) that differs between processes and instants, so that
/// many helpers retrying at once do not retry in lockstep.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() % 10_000) as f64 / 10_000.0
}

/// reqwest's error and its sources on one line. URLs in reqwest errors
/// carry no secrets here: the helper never puts credentials in a URL.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_within_jitter() {
        for attempt in 1..=3 {
            let base = Duration::from_millis(250) * 2u32.pow(attempt - 1);
            let d = backoff(attempt, None);
            assert!(d >= base && d <= base * 3 / 2, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_ten_seconds() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(backoff(1, retry_after(&h)), Duration::from_secs(2));
        h.insert(reqwest::header::RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(10)));
    }

    #[test]
    fn retry_after_date_form_falls_back_to_backoff() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
