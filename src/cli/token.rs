//! `token`: run `get` exactly as Docker would and show a person what came
//! back: where from, for whom, until when, its fingerprint and, with
//! `--decode`, its JWT header and claims. The token itself is printed only
//! with `--show-secret`. The tool for debugging a failing pull.

use std::process::ExitCode;

use anyhow::anyhow;

use crate::helper::{GetOptions, Helper, HelperError, Origin};
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
    /// Print the token itself.
    #[arg(long)]
    pub show_secret: bool,
}

pub(super) fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let url = super::parse_registry(&args.server)?;
    let helper = Helper::from_env()?;
    let entry = helper.config().lookup(&url).map(|(k, r)| (k.clone(), r.clone()));
    let answer = match helper.get(&url, GetOptions { force_refresh: args.refresh }) {
        Ok(a) => a,
        Err(HelperError::NotFound) => {
            let hint = match &entry {
                Some((key, reg)) => format!(
                    "{url} is an exchange registry (entry {key}) but there is no login token from {}; {}",
                    reg.subject_token.describe(),
                    match reg.subject_token {
                        crate::config::SourceSpec::Keyring => {
                            format!("run `docker-credential-exchange login {key}`")
                        }
                        _ => "check that the source is available here".to_owned(),
                    }
                ),
                None => format!(
                    "{url} is neither configured for exchange{} nor stored; run `docker login {}` or \
                     add it to the config",
                    helper.config().path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default(),
                    url.registry()
                ),
            };
            return Err(anyhow!("{}: {hint}", HelperError::NotFound));
        }
        Err(e) => return Err(e.into()),
    };
    let now = crate::time::now();
    let mut out = String::new();
    let mut field =
        |name: &str, value: String| out.push_str(&format!("{:<12} {value}\n", format!("{name}:")));
    match &entry {
        Some((key, reg)) => {
            field("registry", format!("{url} (exchange entry {key}, endpoint {})", reg.token_endpoint));
        }
        None => field("registry", format!("{url} (stored credentials)")),
    }
    field("username", answer.username.clone());
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
    let expires_at = answer.expires_at.or_else(|| crate::jwt::expiry(answer.secret.expose()));
    field(
        "expires",
        match expires_at {
            Some(at) => format!("{} ({})", rfc3339_signed(at), remaining(at, now)),
            None => "unknown (not an exchanged token, not a JWT with exp)".to_owned(),
        },
    );
    field("fingerprint", answer.secret.fingerprint());
    if args.decode {
        match crate::jwt::decode_unverified(answer.secret.expose()) {
            Some(decoded) => {
                out.push_str("header:\n");
                out.push_str(&indent(&serde_json::to_string_pretty(&decoded.header)?));
                out.push_str("claims (signature not verified):\n");
                out.push_str(&indent(&serde_json::to_string_pretty(&decoded.claims)?));
                for claim in ["exp", "iat", "nbf"] {
                    if let Some(at) = crate::jwt::claim_seconds(&decoded.claims, claim) {
                        out.push_str(&format!("  {claim}: {} ({})\n", rfc3339_signed(at), relative(at, now)));
                    }
                }
            }
            None => out.push_str("decode:      the token is not a JWT (opaque); nothing to decode\n"),
        }
    }
    if args.show_secret {
        out.push_str(&format!("{:<12} {}\n", "secret:", answer.secret.expose()));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn remaining(at: i64, now: i64) -> String {
    let secs = at.saturating_sub(now);
    if secs >= 0 { format!("in {}", human_duration(secs)) } else { human_duration(secs) }
}

/// When a claim's instant is relative to now: "in 41m 12s", "3s ago".
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
