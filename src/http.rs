//! The one HTTP client the helper uses, for token exchanges and for the
//! GitHub Actions ID-token endpoint, built only when a request is needed (a
//! cache hit never pays for TLS set-up).
//!
//! Policy from DESIGN.md section 3: the invocation's one [`Deadline`] bounds
//! everything (connects, slow bodies, retries, back-off and `Retry-After`),
//! because the whole exchange runs under a single `timeout_at` on a
//! current-thread runtime; at most 10 s to connect; bodies over 1 MiB
//! refused while they arrive; redirects never followed (the subject token
//! must not be re-sent elsewhere); at most 3 retries with exponential
//! back-off and jitter for connection errors, 429 and 5xx, honouring
//! `Retry-After` up to 10 s. A loopback endpoint is always reached directly:
//! a proxy from the environment would carry a plain-http subject token off
//! the machine.
//!
//! A connection error is one where no answer began: no connection could be
//! made, or the connection was reset or closed before a response arrived (a
//! load balancer dropping a draining backend does this). A token exchange
//! is safe to send again then, though a POST: RFC 8693 gives it no effect
//! beyond issuing a token, the same subject token goes to the same
//! endpoint, and a token issued for a lost answer is simply never used. A
//! failure after the response began (a body cut short) is not retried: the
//! server did answer, and what it said is the error.

use std::path::Path;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder};

use crate::bounded::{Limited, ONE_MIB};
use crate::deadline::{Deadline, TIMEOUT_ENV};

/// Response bodies larger than this are refused.
pub const MAX_BODY: u64 = ONE_MIB;
/// Retries after the first attempt.
pub const MAX_RETRIES: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Why a request failed, in words that carry no secret and do not repeat
/// the URL (the caller names the endpoint once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The client could not be built (a bad `ca_file`).
    #[error("{0}")]
    Setup(String),
    /// No connection: refused, unresolvable, unreachable, TLS refused.
    #[error("cannot connect ({0})")]
    Connect(String),
    /// The connection failed after it was made.
    #[error("{0}")]
    Transport(String),
    /// The invocation's deadline passed.
    #[error(
        "timed out: no answer within {}s, the time limit for the whole request; if the endpoint is just slow, raise it with {TIMEOUT_ENV}",
        limit.as_secs_f64()
    )]
    TimedOut {
        /// The limit that passed.
        limit: Duration,
    },
    /// The endpoint answered with a redirect, which is never followed.
    #[error(
        "the endpoint answered with a redirect (HTTP {status}) to {location}; redirects are not followed so the token is never re-sent elsewhere; configure the final URL"
    )]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// Where it pointed, shortened and redacted.
        location: String,
    },
    /// The body is larger than [`MAX_BODY`].
    #[error("the response is larger than {MAX_BODY} bytes; refusing it")]
    TooLarge,
}

/// A response whose body was read in full (within the limit).
#[derive(Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// How many attempts it took.
    pub attempts: u32,
    /// What a 429 or 5xx answer's `Retry-After` said (as a wait, not
    /// capped): when the endpoint itself says a retry may fare better.
    pub retry_after: Option<Duration>,
}

/// A client for one endpoint, with the runtime that drives it.
pub struct Http {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
}

impl Drop for Http {
    /// Leaves any blocking work behind instead of waiting for it: a DNS
    /// lookup that hangs in `getaddrinfo` (on the runtime's blocking pool)
    /// must not keep the helper past its deadline.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").finish_non_exhaustive()
    }
}

/// Whether `url` names this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl Http {
    /// A client for requests to `url`: no redirects, TLS trust roots only
    /// for `https` (the platform's and webpki's, plus `ca_file`), proxies
    /// from the environment except for loopback.
    ///
    /// # Errors
    /// `ca_file` cannot be read or holds no certificate, or the runtime or
    /// TLS cannot be set up.
    pub fn new(url: &url::Url, ca_file: Option<&Path>) -> Result<Http, HttpError> {
        Http::with_identity(url, ca_file, None)
    }

    /// As [`Http::new`], presenting `identity` (a TLS client certificate
    /// and its key) when the server asks for one: mutual TLS, RFC 8705.
    ///
    /// # Errors
    /// As [`Http::new`].
    pub fn with_identity(
        url: &url::Url,
        ca_file: Option<&Path>,
        identity: Option<reqwest::Identity>,
    ) -> Result<Http, HttpError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HttpError::Setup(format!("cannot start the HTTP runtime: {e}")))?;
        let https = url.scheme() == "https";
        let mut builder = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("docker-credential-exchange/", env!("CARGO_PKG_VERSION")))
            // Loading the platform's roots costs milliseconds; plain-http
            // (loopback) endpoints need none.
            .tls_built_in_root_certs(https);
        if is_loopback(url) {
            builder = builder.no_proxy();
        }
        if let Some(path) = ca_file {
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Setup(format!("cannot set up HTTPS: {}", root_cause(&e))))?;
        Ok(Http { runtime: Some(runtime), client })
    }

    /// Sends the request `make` builds, with the retry policy, all of it by
    /// `deadline`; `make` is called once per attempt. Statuses other than
    /// 429 and 5xx come back as they are for the caller to interpret.
    ///
    /// # Errors
    /// No connection after the retries, the deadline, a redirect, or an
    /// oversized body.
    pub fn send(
        &self,
        deadline: &Deadline,
        make: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        let attempts = async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let outcome = make(&self.client).send().await;
                let wait = match &outcome {
                    Err(e) if is_connection_error(e) => Some(backoff(attempt, None)),
                    Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                        Some(backoff(attempt, retry_after(r.headers())))
                    }
                    _ => None,
                };
                // A retry that cannot start before the deadline is not made:
                // the last answer is better than a timeout.
                if let Some(wait) = wait
                    && attempt <= MAX_RETRIES
                    && wait < deadline.remaining()
                {
                    crate::log::debug!(
                        "attempt {attempt} failed ({}); retrying in {:.2}s",
                        describe(&outcome),
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let resp = outcome.map_err(classify)?;
                return read_response(resp, attempt).await;
            }
        };
        self.within(deadline, attempts)
    }

    /// Runs `work` on the runtime, ended by `deadline`. The timer is made
    /// inside the runtime, which it needs.
    fn within<T>(
        &self,
        deadline: &Deadline,
        work: impl std::future::Future<Output = Result<T, HttpError>>,
    ) -> Result<T, HttpError> {
        let at = tokio::time::Instant::from_std(deadline.instant());
        let Some(runtime) = &self.runtime else {
            return Err(HttpError::Setup("the HTTP runtime is gone".into()));
        };
        runtime
            .block_on(async { tokio::time::timeout_at(at, work).await })
            .unwrap_or(Err(HttpError::TimedOut { limit: deadline.limit() }))
    }
}

/// What a token endpoint answered to [`Http::probe`].
#[derive(Debug)]
pub struct ProbeAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The headers (the `Date`, a redirect's `Location`).
    pub headers: HeaderMap,
    /// The start of the body (at most [`PROBE_BODY`] bytes): an RFC 6749
    /// error body says that a token endpoint is listening.
    pub body: Vec<u8>,
}

/// How much of a probe's answer is read.
pub const PROBE_BODY: usize = 4096;

impl Http {
    /// One token-exchange POST with no subject token, without retries, for
    /// `doctor`. It carries nothing secret, and it tells a token endpoint
    /// from anything else at that URL: a token endpoint refuses it with an
    /// RFC 6749 error (400 `invalid_request`, or 401 when it wants client
    /// authentication), where a wrong path answers 404 or 405. (A GET
    /// cannot tell them apart: a token endpoint answers a GET with 405.)
    ///
    /// `form` is the caller's (the exchange's `grant_type` alone), so that
    /// this transport knows nothing of the token exchange above it.
    ///
    /// # Errors
    /// No answer by `deadline`.
    pub fn probe(
        &self,
        url: &url::Url,
        form: &[(&str, &str)],
        deadline: &Deadline,
    ) -> Result<ProbeAnswer, HttpError> {
        let request = async {
            let mut resp = self
                .client
                .post(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .form(form)
                .send()
                .await
                .map_err(classify)?;
            let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
            let mut body = Vec::new();
            // A body that fails halfway still leaves the status to judge by.
            while body.len() < PROBE_BODY {
                match resp.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            body.truncate(PROBE_BODY);
            Ok(ProbeAnswer { status, headers, body })
        };
        self.within(deadline, request)
    }
}

async fn read_response(mut resp: reqwest::Response, attempts: u32) -> Result<Response, HttpError> {
    let status = resp.status().as_u16();
    let busy = status == 429 || resp.status().is_server_error();
    let retry_after = busy.then(|| retry_after_header(resp.headers())).flatten();
    if resp.status().is_redirection() {
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| "(no Location)".to_owned(), |l| crate::redact::bounded(l, 80));
        return Err(HttpError::Redirect { status, location });
    }
    if resp.content_length().is_some_and(|n| n > MAX_BODY) {
        return Err(HttpError::TooLarge);
    }
    let mut body = Limited::new(MAX_BODY);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| HttpError::Transport(format!("reading the response failed: {}", root_cause(&e))))?
    {
        body.extend(&chunk).map_err(|_| HttpError::TooLarge)?;
    }
    Ok(Response { status, body: body.into_inner(), attempts, retry_after })
}

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let pem = crate::fsutil::read_regular_file(path, MAX_BODY)
        .map_err(|e| HttpError::Setup(format!("cannot read ca_file: {e}")))?
        .ok_or_else(|| HttpError::Setup(format!("ca_file {} does not exist", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| HttpError::Setup(format!("ca_file {} is not PEM certificates: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(HttpError::Setup(format!("ca_file {} holds no certificate", path.display())));
    }
    Ok(certs)
}

/// Whether a failed send never got a response started: no connection, or
/// one reset or closed before the response (see the module doc for why
/// such a request is sent again).
fn is_connection_error(e: &reqwest::Error) -> bool {
    if e.is_connect() {
        return true;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message) {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
            return matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof);
        }
        cause = error.source();
    }
    false
}

fn classify(e: reqwest::Error) -> HttpError {
    if e.is_connect() { HttpError::Connect(root_cause(&e)) } else { HttpError::Transport(root_cause(&e)) }
}

fn describe(outcome: &Result<reqwest::Response, reqwest::Error>) -> String {
    match outcome {
        Ok(r) => format!("HTTP {}", r.status().as_u16()),
        Err(e) => root_cause(e),
    }
}

/// The innermost cause of an error, which is what a person can act on
/// ("connection refused"); reqwest's outer layers repeat the URL.
pub fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = cause.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).trim().to_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".to_owned(),
    }
}

/// How long to wait before a retry: `Retry-After`, up to 10 s.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_header(headers).map(|wait| wait.min(MAX_RETRY_AFTER))
}

/// `Retry-After` as a wait: delay-seconds, or an HTTP-date (RFC 9110
/// section 10.2.3), which a server sends as often. A date is read against
/// the answer's own `Date` when it has one, so that a server whose clock
/// is off still means the wait it asked for; a date already past is no
/// wait. Treating the date as absent would remember the failure for the
/// whole window, past the moment the server named.
fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let value = text(reqwest::header::RETRY_AFTER)?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = crate::time::parse_http_date(value)?;
    let now =
        text(reqwest::header::DATE).and_then(crate::time::parse_http_date).unwrap_or_else(crate::time::now);
    Some(Duration::from_secs(u64::try_from(at.saturating_sub(now)).unwrap_or(0)))
}

/// 250 ms, 500 ms, 1 s, … plus up to 50% jitter, or the server's
/// `Retry-After` when it gave one.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait;
    }
    let base = Duration::from_millis(250) * 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
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

#[cfg(test)]
mod tests;
