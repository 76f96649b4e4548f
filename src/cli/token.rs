//! `token`: run `get` exactly as Docker would and show a person what came
//! back: where from, for whom, until when, its fingerprint and, with
//! `--decode`, its JWT header and claims. The token itself is printed only
//! with `--show-secret`, or alone with `--raw` for scripts. The tool for
//! debugging a failing pull.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

use super::output::{self, Waiting};
use crate::helper::{Answer, GetOptions, Helper, HelperError, Origin};
use crate::server_url::ServerUrl;
use crate::time::{human_duration, rfc3339_signed};

/// `token`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// SERVER or SERVER/REPOSITORY.
    pub server: String,
    /// Exchange anew instead of using the cache.
    #[arg(long)]
    pub refresh: bool,
    /// Decode the token's JWT header and claims.
    #[arg(long)]
    pub decode: bool,
    /// Print the token itself too.
    #[arg(long)]
    pub show_secret: bool,
    /// Print only the token, for scripts (like `gcloud auth print-access-token`).
    #[arg(long, conflicts_with_all = ["decode", "json", "show_secret"])]
    pub raw: bool,
    /// Print JSON: request, entry, endpoint, username, origin, expires_at, refresh_at, repository_scoped, fingerprint, header and claims (with --decode), token (with --show-secret).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct TokenReport {
    request: String,
    entry: Option<String>,
    endpoint: Option<String>,
    username: String,
    origin: &'static str,
    expires_at: Option<i64>,
    expires_at_rfc3339: Option<String>,
    refresh_at: Option<i64>,
    repository_scoped: bool,
    fingerprint: String,
    header: Option<serde_json::Value>,
    claims: Option<serde_json::Value>,
    token: Option<String>,
}

fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Cache => "cache",
        Origin::Exchange => "exchange",
        Origin::Stored => "stored",
        Origin::StaleCache => "stale-cache",
    }
}

pub(super) fn token(args: TokenArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    let url = super::parse_registry(&args.server)?;
    let entry = helper.entry_for(&url);
    let endpoint = entry.as_ref().and_then(|(_, r)| r.as_ref().map(|r| r.token_endpoint.clone()));
    let waiting = endpoint
        .as_ref()
        .map(|e| Waiting::start(format!("the token endpoint {e}"), Duration::from_millis(700)));
    let answer = match helper.get(&url, GetOptions { force_refresh: args.refresh }) {
        Ok(a) => a,
        Err(e @ HelperError::NotFound { reason: None }) => bail!("{e}: {}", not_found_hint(helper, &url)),
        Err(e @ HelperError::NotFound { reason: Some(_) }) => bail!("{e}: {}", e.reason()),
        Err(e) => return Err(e.into()),
    };
    drop(waiting);
    if args.raw {
        output::line(answer.secret.expose())?;
        return Ok(ExitCode::SUCCESS);
    }
    let decoded = args.decode.then(|| crate::jwt::decode_unverified(answer.secret.expose())).flatten();
    let expires_at =
        answer.schedule.map(|s| s.expires_at).or_else(|| crate::jwt::expiry(answer.secret.expose()));
    let report = TokenReport {
        request: url.to_string(),
        entry: entry.as_ref().map(|(k, _)| k.to_string()),
        endpoint,
        username: answer.username.clone(),
        origin: origin_name(answer.origin),
        expires_at,
        expires_at_rfc3339: expires_at.map(rfc3339_signed),
        refresh_at: answer.schedule.map(|s| s.refresh_at),
        repository_scoped: answer.repository_scoped,
        fingerprint: answer.secret.fingerprint(),
        header: decoded.as_ref().map(|d| d.header.clone()),
        claims: decoded.as_ref().map(|d| d.claims.clone()),
        token: args.show_secret.then(|| answer.secret.expose().to_owned()),
    };
    if args.json {
        output::line(&serde_json::to_string_pretty(&report)?)?;
    } else {
        output::print(&human(&report, &answer, args.decode))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a request that is not an exchange registry found nothing (an
/// exchange registry's `get` says why itself: [`HelperError::reason`]).
fn not_found_hint(helper: &Helper, url: &ServerUrl) -> String {
    format!(
        "{url} is neither configured for exchange (in {}) nor stored; run `docker login {}` or add it to the config",
        helper.config_path().display(),
        url.registry()
    )
}

fn human(r: &TokenReport, answer: &Answer, decode: bool) -> String {
    let now = crate::time::now();
    let mut out = String::new();
    let mut field =
        |name: &str, value: String| out.push_str(&format!("{:<12} {value}\n", format!("{name}:")));
    match (&r.entry, &r.endpoint) {
        (Some(key), Some(endpoint)) => {
            field("registry", format!("{} (exchange entry {key}, endpoint {endpoint})", r.request));
        }
        _ => field("registry", format!("{} (stored credentials)", r.request)),
    }
    field("username", r.username.clone());
    field(
        "origin",
        match answer.origin {
            Origin::Cache => "cache".to_owned(),
            Origin::Exchange => "exchange (a new token)".to_owned(),
            Origin::Stored => "stored".to_owned(),
            Origin::StaleCache => {
                "stale cache (the refresh failed; this token is inside its safety margin)".to_owned()
            }
        },
    );
    field(
        "expires",
        match r.expires_at {
            Some(at) => format!("{} ({})", rfc3339_signed(at), relative(at, now)),
            None => "unknown (not an exchanged token, not a JWT with exp)".to_owned(),
        },
    );
    field("fingerprint", r.fingerprint.clone());
    if decode {
        match (&r.header, &r.claims) {
            (Some(header), Some(claims)) => {
                out.push_str("header:\n");
                out.push_str(&indent(&serde_json::to_string_pretty(header).unwrap_or_default()));
                out.push_str("claims (signature not verified):\n");
                out.push_str(&indent(&serde_json::to_string_pretty(claims).unwrap_or_default()));
                for claim in ["exp", "iat", "nbf"] {
                    if let Some(at) = crate::jwt::claim_seconds(claims, claim) {
                        out.push_str(&format!("  {claim}: {} ({})\n", rfc3339_signed(at), relative(at, now)));
                    }
                }
            }
            _ => out.push_str("decode:      the token is not a JWT (opaque); nothing to decode\n"),
        }
    }
    if let Some(token) = &r.token {
        out.push_str(&format!("{:<12} {token}\n", "secret:"));
    }
    out
}

/// When an instant is relative to now: "in 41m 12s", "3s ago".
fn relative(at: i64, now: i64) -> String {
    let secs = at.saturating_sub(now);
    if secs > 0 {
        format!("in {}", human_duration(secs))
    } else {
        format!("{} ago", human_duration(secs.saturating_neg()))
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
