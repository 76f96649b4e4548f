//! `doctor`'s checks of the config and of each exchange registry: its
//! entry, its subject token (present, unexpired), its client secret, its
//! endpoint (reachable, with a clock that agrees), optionally one real
//! exchange, and the last failure of a `get`.

use std::time::Duration;

use super::Checks;
use crate::cache::Freshness;
use crate::config::{Config, RegistryConfig, SourceSpec};
use crate::deadline::Deadline;
use crate::helper::{GetOptions, Helper};
use crate::server_url::ServerUrl;
use crate::subject::{self, Context, Probe};

/// A local clock further off than this from the endpoint's is a problem:
/// tokens look expired early or not yet valid.
const MAX_SKEW_SECS: i64 = 60;
/// Each network check may take this long.
const CHECK_TIME: Duration = Duration::from_secs(10);

pub(super) fn config(checks: &mut Checks, helper: &Helper) -> anyhow::Result<()> {
    let path = helper.config_path().display().to_string();
    let config = match helper.config() {
        Ok(c) => c,
        Err(e) => {
            return checks.problem(
                "config",
                e.to_string(),
                "fix the file; plain credentials keep working meanwhile, exchange registries do not",
            );
        }
    };
    if !helper.config_path().exists() {
        return checks
            .ok("config", format!("no file at {path} (no exchange registries; a plain credential store)"));
    }
    let mut bad = 0;
    for id in config.ids() {
        if let Err(e) = config.registry(id) {
            bad += 1;
            checks.problem(
                "config",
                e.to_string(),
                "fix that entry; the other registries are not affected",
            )?;
        }
    }
    let n = config.ids().count();
    if bad == 0 {
        checks.ok(
            "config",
            format!("{path} is valid ({n} exchange registr{})", if n == 1 { "y" } else { "ies" }),
        )?;
    }
    Ok(())
}

/// Each valid exchange entry: subject, client secret, endpoint and clock,
/// and with `exchange` one real exchange.
pub(super) fn registries(checks: &mut Checks, helper: &Helper, exchange: bool) -> anyhow::Result<()> {
    let Ok(config) = helper.config() else { return Ok(()) };
    let mut endpoints_seen: Vec<String> = Vec::new();
    for id in config.ids() {
        let Ok(reg) = config.registry(id) else { continue };
        let key = config.key(id);
        subject_token(checks, helper, key, reg)?;
        client_secret(checks, key, reg)?;
        if !endpoints_seen.contains(&reg.token_endpoint) {
            endpoints_seen.push(reg.token_endpoint.clone());
            endpoint(checks, key, reg)?;
        }
        if exchange {
            prove(checks, helper, config, key)?;
        }
    }
    Ok(())
}

fn subject_token(
    checks: &mut Checks,
    helper: &Helper,
    key: &ServerUrl,
    reg: &RegistryConfig,
) -> anyhow::Result<()> {
    let deadline = Deadline::after(CHECK_TIME);
    let source = crate::cli::status::subject_location(helper, &reg.subject_token);
    let token = match &reg.subject_token {
        SourceSpec::Keyring => match helper
            .store()
            .map_err(|e| e.to_string())
            .and_then(|s| s.get(key).map_err(|e| e.to_string()))
        {
            Ok(cred) => cred.map(|c| c.secret).filter(|s| !s.is_empty()),
            Err(e) => {
                return checks.problem(
                    "login",
                    format!("{key}: cannot read the login token: {e}"),
                    "see the store check above",
                );
            }
        },
        SourceSpec::GithubActions { .. } => {
            let cx = Context { deadline: &deadline, kubelet_token: None };
            return match subject::probe(&reg.subject_token, cx) {
                Ok(Probe::Absent) => checks.problem(
                    "login",
                    format!(
                        "{key}: its subject token comes from GitHub Actions, but {} is not set here",
                        subject::GHA_URL_ENV
                    ),
                    "run inside a GitHub Actions job whose workflow has `permissions: id-token: write`",
                ),
                _ => checks
                    .ok("login", format!("{key}: the GitHub Actions OIDC token is available to this job")),
            };
        }
        SourceSpec::Kubelet => {
            return checks.ok(
                "login",
                format!("{key}: the kubelet passes the service account token with each request"),
            );
        }
        spec => match subject::peek(spec, &deadline) {
            Ok(token) => token,
            Err(e) => {
                return checks.problem(
                    "login",
                    format!("{key}: {e}"),
                    format!("fix the subject_token source ({source})"),
                );
            }
        },
    };
    let Some(token) = token else {
        let fix = match &reg.subject_token {
            SourceSpec::Keyring => format!("run `docker-credential-exchange login {key}`"),
            SourceSpec::Env { var } => format!("set {var} to the login token (in CI, the job's OIDC token)"),
            SourceSpec::File { path } => {
                format!("make {} hold the token (check whatever writes it)", path.display())
            }
            _ => format!("make {source} produce the token"),
        };
        return checks.problem(
            "login",
            format!("{key}: no login token from {source}; a pull would get no credentials"),
            fix,
        );
    };
    match crate::jwt::expiry(token.expose()) {
        Some(exp) if exp <= crate::time::now() => checks.problem(
            "login",
            format!("{key}: the login token from {source} expired at {}", crate::time::rfc3339_signed(exp)),
            match &reg.subject_token {
                SourceSpec::Keyring => {
                    format!("run `docker-credential-exchange login {key}` with a fresh token")
                }
                _ => format!("make {source} provide a fresh token"),
            },
        ),
        Some(exp) => checks.ok(
            "login",
            format!(
                "{key}: login token from {source} valid for {}",
                crate::time::human_duration(exp - crate::time::now())
            ),
        ),
        None => {
            checks.ok("login", format!("{key}: login token from {source} present ({})", token.fingerprint()))
        }
    }
}

fn client_secret(checks: &mut Checks, key: &ServerUrl, reg: &RegistryConfig) -> anyhow::Result<()> {
    let Some(spec) = &reg.client_secret else { return Ok(()) };
    let deadline = Deadline::after(CHECK_TIME);
    match subject::read_secret(spec, Context { deadline: &deadline, kubelet_token: None }) {
        Ok(Some(_)) => {
            checks.ok("client", format!("{key}: the client secret ({}) is available", spec.describe()))
        }
        Ok(None) => checks.problem(
            "client",
            format!(
                "{key}: the client secret ({}) is not available; every exchange would fail",
                spec.describe()
            ),
            match spec {
                SourceSpec::Env { var } => format!("set {var}"),
                _ => format!("make {} provide it", spec.describe()),
            },
        ),
        Err(e) => checks.problem(
            "client",
            format!("{key}: the client secret: {e}"),
            "fix client_secret in the config",
        ),
    }
}

fn endpoint(checks: &mut Checks, key: &ServerUrl, reg: &RegistryConfig) -> anyhow::Result<()> {
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
    let (status, headers) = match http.probe(&url, &Deadline::after(CHECK_TIME)) {
        Ok(answer) => answer,
        Err(e) => {
            return checks.problem(
                "endpoint",
                format!("{endpoint} ({key}) is not reachable: {e}"),
                "check the URL, that the STS is running, DNS, proxy variables (HTTPS_PROXY, NO_PROXY), firewalls, and ca_file for a private CA",
            );
        }
    };
    let local = crate::time::now();
    if (300..400).contains(&status) {
        checks.warn(
            "endpoint",
            format!("{endpoint} ({key}) answers with a redirect (HTTP {status})"),
            "the helper never follows redirects (the token must not be re-sent elsewhere); configure the final URL",
        )?;
    } else {
        checks.ok("endpoint", format!("{endpoint} ({key}) is reachable (HTTP {status})"))?;
    }
    let date = headers
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

/// One real exchange, as `token --refresh` would make.
fn prove(checks: &mut Checks, helper: &Helper, config: &Config, key: &ServerUrl) -> anyhow::Result<()> {
    let _ = config;
    match helper.get(key, GetOptions { force_refresh: true }) {
        Ok(answer) => {
            let left = answer.schedule.map_or_else(String::new, |s| {
                format!(", valid for {}", crate::time::human_duration(s.expires_at - crate::time::now()))
            });
            checks
                .ok("exchange", format!("{key}: exchanged for a token {}{left}", answer.secret.fingerprint()))
        }
        Err(e) => checks.problem(
            "exchange",
            format!("{key}: {e}"),
            "the message says what failed; see also the checks above",
        ),
    }
}

/// The last failure of each request, unless a token obtained since shows
/// that a `get` succeeded after it.
pub(super) fn failures(checks: &mut Checks, helper: &Helper) -> anyhow::Result<()> {
    let cache = helper.cache();
    let entries = cache.entries();
    let remembered = cache.remembered(helper.deadline());
    let now = crate::time::now();
    for failure in cache.failures() {
        let superseded = entries.iter().any(|e| {
            e.request == failure.request
                && e.obtained_at.saturating_mul(1000) > failure.at_ms
                && e.schedule().freshness(now) != Freshness::Expired
        });
        if superseded {
            continue;
        }
        let until = remembered.iter().find(|r| r.request == failure.request).map(|r| r.until());
        checks.warn(
            "last get",
            format!(
                "{} failed {} ago ({}): {}{}",
                failure.request,
                crate::time::human_duration(now.saturating_sub(failure.at())),
                crate::time::rfc3339_signed(failure.at()),
                failure.message,
                until.map_or_else(String::new, |u| format!(
                    "; remembered until {}: get answers it at once",
                    crate::time::rfc3339_signed(u)
                ))
            ),
            match until {
                Some(_) => {
                    format!("retry now with `docker-credential-exchange token {} --refresh`", failure.request)
                }
                None => format!(
                    "retry with `docker-credential-exchange token {}` to see whether it still fails",
                    failure.request
                ),
            },
        )?;
    }
    Ok(())
}
