//! `doctor`'s checks of a token endpoint: that it is a token endpoint (a
//! probe that any token endpoint refuses with an OAuth error, where a wrong
//! path answers 404), that this machine's clock agrees with it, and with
//! `--exchange` one real exchange. Each failure gets the fix for what it
//! is (an unknown client, a refused login token, an audience the STS does
//! not serve, a certificate it cannot trust, a timeout), not a pointer
//! back at the message.

use std::time::Duration;

use super::Checks;
use crate::config::{ClientAuth, RegistryConfig, SourceSpec};
use crate::deadline::Deadline;
use crate::exchange::ExchangeError;
use crate::helper::{GetOptions, Helper, HelperError};
use crate::http::{HttpError, ProbeAnswer};
use crate::server_url::ServerUrl;

/// A local clock further off than this from the endpoint's is a problem:
/// tokens look expired early or not yet valid.
const MAX_SKEW_SECS: i64 = 60;
/// Each network check may take this long, or the invocation's limit if
/// that is shorter.
const CHECK_TIME: Duration = Duration::from_secs(10);

/// Where to look up a token endpoint's real URL.
const DISCOVERY_HINT: &str = "the STS's documentation names it, and so does the token_endpoint field of its \
     /.well-known/openid-configuration (or /.well-known/oauth-authorization-server)";

/// The endpoint of one registry entry: it answers as a token endpoint, and
/// its clock agrees with this machine's.
pub(super) fn endpoint(
    checks: &mut Checks,
    helper: &Helper,
    key: &ServerUrl,
    reg: &RegistryConfig,
) -> anyhow::Result<()> {
    let endpoint = &reg.token_endpoint;
    let Ok(url) = url::Url::parse(endpoint) else { return Ok(()) };
    let http = match crate::http::Http::new(&url, reg.ca_file.as_deref()) {
        Ok(h) => h,
        Err(e) => {
            return checks.problem(
                "endpoint",
                format!("{endpoint} ({key}): {e}"),
                "fix ca_file in the config",
            );
        }
    };
    let deadline = Deadline::after(CHECK_TIME.min(helper.deadline().limit()));
    let answer = match http.probe(&url, &[("grant_type", crate::exchange::GRANT_TYPE)], &deadline) {
        Ok(answer) => answer,
        Err(e) => {
            return checks.problem(
                "endpoint",
                format!("{endpoint} ({key}) is not reachable: {e}"),
                unreachable_fix(&e),
            );
        }
    };
    let local = crate::time::now();
    judge_answer(checks, key, reg, &answer)?;
    clock(checks, endpoint, &answer, local)
}

/// What the probe's answer says about the endpoint.
fn judge_answer(
    checks: &mut Checks,
    key: &ServerUrl,
    reg: &RegistryConfig,
    answer: &ProbeAnswer,
) -> anyhow::Result<()> {
    let endpoint = &reg.token_endpoint;
    let status = answer.status;
    let oauth_error = crate::json::from_object_slice::<crate::exchange::ErrorResponse>(&answer.body)
        .ok()
        .map(|e| crate::redact::bounded(&e.error, 40));
    match (status, oauth_error) {
        (404 | 405, _) => checks.problem(
            "endpoint",
            format!(
                "{endpoint} ({key}) answers HTTP {status} to a token request: something is there, but not a token \
                 endpoint; is the path right?"
            ),
            format!("set token_endpoint to the STS's token endpoint; {DISCOVERY_HINT}"),
        ),
        (300..=399, _) => {
            let location = answer
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| "(no Location)".to_owned(), |l| crate::redact::bounded(l, 80));
            checks.problem(
                "endpoint",
                format!("{endpoint} ({key}) answers with a redirect (HTTP {status}) to {location}"),
                "the helper never follows redirects (the token must not be re-sent elsewhere); set token_endpoint \
                 to the final URL",
            )
        }
        (500..=599, _) => checks.problem(
            "endpoint",
            format!("{endpoint} ({key}) answers HTTP {status}: the STS is failing"),
            "check the STS's health and logs; exchanges fail until it recovers",
        ),
        (401, None) if reg.client_id.is_none() => checks.warn(
            "endpoint",
            format!(
                "{endpoint} ({key}) answers HTTP 401 without an OAuth error: it wants authentication, and the \
                 entry has no client"
            ),
            "if the STS needs client authentication, set client_id and client_secret in the entry; if a gateway \
             in front of it answers, it must let token requests through",
        ),
        (400 | 401, Some(error)) => checks.ok(
            "endpoint",
            format!("{endpoint} ({key}) is a token endpoint (it refuses an empty request: HTTP {status} {error})"),
        ),
        (401, None) => checks.ok(
            "endpoint",
            format!("{endpoint} ({key}) is reachable and wants client authentication (HTTP 401)"),
        ),
        (_, error) => checks.warn(
            "endpoint",
            format!(
                "{endpoint} ({key}) answers HTTP {status}{} to an empty token request, which a token endpoint \
                 refuses with an OAuth error; is it the token endpoint?",
                if error.is_none() { " without an OAuth error" } else { "" }
            ),
            format!("check token_endpoint ({DISCOVERY_HINT}); `doctor --exchange` tries a real exchange"),
        ),
    }
}

/// This machine's clock against the endpoint's `Date`.
fn clock(checks: &mut Checks, endpoint: &str, answer: &ProbeAnswer, local: i64) -> anyhow::Result<()> {
    let date = answer
        .headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::time::parse_http_date);
    match date {
        None => checks.warn(
            "clock",
            format!("{endpoint} sent no usable Date header; the clock was not checked"),
            "make sure the clock is synchronized (e.g. timedatectl set-ntp true)",
        ),
        Some(remote) => {
            let skew = local.saturating_sub(remote);
            if skew.saturating_abs() > MAX_SKEW_SECS {
                let direction = if skew > 0 { "ahead of" } else { "behind" };
                checks.problem(
                    "clock",
                    format!(
                        "this machine's clock is {} {direction} {endpoint}'s; tokens will look expired early or not yet valid",
                        crate::time::human_duration(skew.saturating_abs())
                    ),
                    "synchronize the clock (e.g. timedatectl set-ntp true)",
                )
            } else {
                checks.ok("clock", format!("within {}s of {endpoint}", skew.saturating_abs()))
            }
        }
    }
}

/// The fix for an endpoint that could not be asked at all.
fn unreachable_fix(e: &HttpError) -> String {
    match e {
        HttpError::Connect(cause) => connect_fix(cause),
        HttpError::TimedOut { .. } => timeout_fix(),
        _ => "check the URL, that the STS is running, and proxies (HTTPS_PROXY, NO_PROXY)".to_owned(),
    }
}

/// The fix for a connection that failed, by the system's words for why.
fn connect_fix(cause: &str) -> String {
    let cause = cause.to_ascii_lowercase();
    if ["certificate", "tls", "handshake", "unknownissuer", "ssl"].iter().any(|w| cause.contains(w)) {
        "the endpoint's TLS certificate is not trusted here: if the STS uses a private CA, set ca_file in the \
         entry to that CA's PEM; otherwise its certificate chain or name is wrong (check it with \
         `openssl s_client -connect HOST:443`)"
            .to_owned()
    } else if cause.contains("refused") {
        "nothing listens at that address: is the STS running, and are the host and port right?".to_owned()
    } else if ["dns", "lookup", "resolve", "name or service"].iter().any(|w| cause.contains(w)) {
        "the host name does not resolve here: check its spelling, DNS, and whether it needs a VPN".to_owned()
    } else {
        "check the URL, that the STS is running, DNS, proxy variables (HTTPS_PROXY, NO_PROXY), firewalls, and \
         ca_file for a private CA"
            .to_owned()
    }
}

fn timeout_fix() -> String {
    format!(
        "nothing answered in time: a firewall that drops packets, a proxy (HTTPS_PROXY, NO_PROXY) or an STS that \
         hangs; if it is only slow, raise {}",
        crate::deadline::TIMEOUT_ENV
    )
}

/// One real exchange, as `token --refresh` would make, with the fix for
/// the way it failed.
pub(super) fn prove(
    checks: &mut Checks,
    helper: &Helper,
    key: &ServerUrl,
    reg: &RegistryConfig,
) -> anyhow::Result<()> {
    match helper.get(key, GetOptions { force_refresh: true }) {
        Ok(answer) => {
            let left = answer.schedule.map_or_else(String::new, |s| {
                format!(", valid for {}", crate::time::human_duration(s.expires_at - crate::time::now()))
            });
            checks
                .ok("exchange", format!("{key}: exchanged for a token {}{left}", answer.secret.fingerprint()))
        }
        // The reason, not Docker's "not found": a person is reading.
        Err(e) => checks.problem("exchange", format!("{key}: {}", e.reason()), exchange_fix(&e, key, reg)),
    }
}

/// What to do about a failed exchange, by what failed.
fn exchange_fix(e: &HelperError, key: &ServerUrl, reg: &RegistryConfig) -> String {
    match e {
        HelperError::Exchange(ExchangeError::Refused { error, .. }) => refused_fix(error, key, reg),
        HelperError::Exchange(ExchangeError::Unreachable { cause, .. }) => connect_fix(cause),
        HelperError::Exchange(ExchangeError::Failed { reason, .. }) => failed_fix(reason, reg),
        HelperError::Exchange(ExchangeError::Unavailable { retry_after, .. }) => format!(
            "the STS says it is overloaded or down for now and asks to be tried again in {retry_after} s; run \
             `docker-credential-exchange doctor --exchange` again after that, and ask its operators if it lasts"
        ),
        HelperError::Exchange(ExchangeError::Local { .. }) => {
            "this machine's side failed before anything was sent: fix the client_secret source or ca_file it names"
                .to_owned()
        }
        HelperError::Subject(crate::subject::SubjectError::Expired { .. }) => login_again(key, reg),
        HelperError::Plan(_) => "fix the entry as the message says (see also the scope check above)".to_owned(),
        HelperError::NotFound { .. } => {
            "there is no login token to exchange; see the login check above".to_owned()
        }
        _ => "see the checks above".to_owned(),
    }
}

/// The fix for an RFC 6749 error code.
fn refused_fix(error: &str, key: &ServerUrl, reg: &RegistryConfig) -> String {
    let listed = |values: Option<&crate::config::OneOrMany>| {
        values.map_or_else(|| "none".to_owned(), |v| format!("\"{}\"", v.values().join("\", \"")))
    };
    match error {
        "invalid_client" => match reg.client_auth {
            ClientAuth::Basic | ClientAuth::Post => format!(
                "the STS does not accept this client: check client_id ({}), client_secret and client_auth \
                 (\"basic\" or \"post\", whichever the STS expects) in the entry",
                reg.client_id.as_deref().unwrap_or("none")
            ),
            ClientAuth::PrivateKeyJwt => format!(
                "the STS does not accept this client's assertion: check client_id ({}), that the STS holds the \
                 public half of client_key (and looks it up by client_key_id, if set), and \
                 client_assertion_audience if the STS wants its issuer as the audience",
                reg.client_id.as_deref().unwrap_or("none")
            ),
            _ => format!(
                "the STS does not accept this client's certificate: check client_id ({}) and that the STS has \
                 client_certificate registered for it (or trusts its issuer)",
                reg.client_id.as_deref().unwrap_or("none")
            ),
        },
        "unauthorized_client" => format!(
            "the STS knows client {} but does not let it exchange tokens: ask the STS's administrator to allow \
             the grant type {} for it",
            reg.client_id.as_deref().unwrap_or("(none)"),
            crate::exchange::GRANT_TYPE
        ),
        "invalid_grant" => match &reg.subject_token {
            SourceSpec::Keyring => format!(
                "the STS refused the login token (expired, revoked, or issued for another audience or issuer): {}",
                login_again(key, reg)
            ),
            other => other.when_rejected().to_owned(),
        },
        "invalid_target" => format!(
            "the STS does not serve what the entry asks for: check audience ({}) and resource ({}) against the \
             audiences the STS accepts",
            listed(reg.audience.as_ref()),
            listed(reg.resource.as_ref())
        ),
        "invalid_scope" => format!(
            "the STS refuses the scope asked for ({}): check scope against what the STS grants",
            reg.scope.as_deref().map_or_else(|| "none".to_owned(), |s| format!("\"{s}\""))
        ),
        "unsupported_grant_type" => format!(
            "this endpoint does not do RFC 8693 token exchange: set token_endpoint to the STS's exchange \
             endpoint; {DISCOVERY_HINT}"
        ),
        "invalid_request" => format!(
            "the STS found the request malformed: check subject_token_type ({}) and requested_token_type ({}) \
             against what it accepts; its words above say which field",
            reg.subject_token_type(),
            reg.requested_token_type.as_deref().unwrap_or("not set")
        ),
        "server_error" | "temporarily_unavailable" => {
            "the STS is failing: try again later, or check its health and logs".to_owned()
        }
        _ => "the STS's own words above say what it refused; compare the entry with its documentation"
            .to_owned(),
    }
}

/// The fix for an endpoint that answered without a usable token or error.
fn failed_fix(reason: &str, reg: &RegistryConfig) -> String {
    let status = reason.strip_prefix("HTTP ").and_then(|r| r.get(..3)).and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(401) => format!(
            "the endpoint wants authentication and said no more (no OAuth error body): {}; a gateway in front of \
             the STS may also answer this",
            if reg.client_id.is_some() {
                "check client_id, client_secret and client_auth in the entry"
            } else {
                "if the STS needs client authentication, set client_id and client_secret in the entry"
            }
        ),
        Some(404 | 405) => {
            format!("the token endpoint's path is wrong: fix token_endpoint; {DISCOVERY_HINT}")
        }
        Some(403) => {
            "the endpoint forbids the request: a gateway, firewall or IP allow-list in front of the STS \
                      may be refusing this machine"
                .to_owned()
        }
        _ if reason.starts_with("timed out") => timeout_fix(),
        _ if reason.contains("redirect") => {
            "set token_endpoint to the final URL; redirects are never followed".to_owned()
        }
        _ => "the endpoint's answer was not a token response: is token_endpoint the STS's token endpoint?"
            .to_owned(),
    }
}

/// How to get the STS a fresh login token, by where it comes from.
fn login_again(key: &ServerUrl, reg: &RegistryConfig) -> String {
    match &reg.subject_token {
        SourceSpec::Keyring => {
            format!(
                "run `docker-credential-exchange login {key}` with a fresh token from your identity provider"
            )
        }
        other => format!("make {} provide a fresh token", other.describe()),
    }
}
