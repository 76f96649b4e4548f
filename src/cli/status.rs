//! `status`: every configured or stored registry, where its login token
//! comes from and when it expires, and the life left in its cached tokens.
//!
//! A table for people; `--json` for scripts. The JSON document is stable
//! (fields are only ever added) and carries everything the table shows plus
//! the raw numbers:
//!
//! ```text
//! {
//!   "now": 1760000000,                        Unix seconds the report was made at
//!   "config_file": "/…/config.json" | null,   the helper's config, if one exists
//!   "store": "file store /…",                 where stored credentials live
//!   "cache_dir": "/…" | null,                 null when the cache is disabled
//!   "registries": [{
//!     "registry": "registry.example.com",     normalized key (config or store)
//!     "kind": "exchange" | "plain",
//!     "stored": true,                         something is in the keyring/file store
//!     "username": "alice" | null,
//!     "subject_source": "keyring" | "env:VAR" | "file:/p" | "command:prog" | "github-actions" | null,
//!     "token_endpoint": "https://…" | null,
//!     "login_token": null | {                 null for plain registries
//!       "state": "valid" | "expired" | "no-expiry" | "absent" | "not-checked" | "error",
//!       "fingerprint": "sha256:…" | null,
//!       "expires_at": 1760003600 | null,      the JWT's exp
//!       "expires_at_rfc3339": "…Z" | null,
//!       "remaining_seconds": 3600 | null,     negative once expired
//!       "remaining": "1h 0m" | null,
//!       "detail": "…" | null                  why not checked, or the error
//!     },
//!     "cached_tokens": [{
//!       "request": "registry.example.com/team/app",
//!       "username": "alice",
//!       "fingerprint": "sha256:…",
//!       "obtained_at": …, "refresh_at": …, "expires_at": …, "expires_at_rfc3339": "…Z",
//!       "remaining_seconds": 2472,            until expiry; negative once expired
//!       "remaining": "41m 12s",
//!       "state": "fresh" | "refresh-due" | "expired"
//!     }]
//!   }]
//! }
//! ```
//! Secrets never appear: tokens are shown only as fingerprints.

use std::process::ExitCode;

use serde::Serialize;

use crate::cache::CachedToken;
use crate::config::{RegistryConfig, SourceSpec};
use crate::helper::Helper;
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::subject::{self, Probe};
use crate::time::{human_duration, rfc3339_signed};

/// `status`'s arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print stable JSON instead of a table.
    ///
    /// Per registry: registry, kind (exchange/plain), stored, username, subject_source,
    /// token_endpoint, login_token {state, fingerprint, expires_at, expires_at_rfc3339,
    /// remaining_seconds, remaining, detail} and cached_tokens [{request, username,
    /// fingerprint, obtained_at, refresh_at, expires_at, expires_at_rfc3339,
    /// remaining_seconds, remaining, state}]. Times are Unix seconds. Never secrets.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    now: i64,
    config_file: Option<String>,
    store: String,
    cache_dir: Option<String>,
    registries: Vec<RegistryStatus>,
}

#[derive(Debug, Serialize)]
struct RegistryStatus {
    registry: String,
    kind: &'static str,
    stored: bool,
    username: Option<String>,
    subject_source: Option<String>,
    token_endpoint: Option<String>,
    login_token: Option<LoginToken>,
    cached_tokens: Vec<CachedStatus>,
}

#[derive(Debug, Serialize)]
struct LoginToken {
    state: &'static str,
    fingerprint: Option<String>,
    expires_at: Option<i64>,
    expires_at_rfc3339: Option<String>,
    remaining_seconds: Option<i64>,
    remaining: Option<String>,
    detail: Option<String>,
}

impl LoginToken {
    fn without_token(state: &'static str, detail: Option<String>) -> LoginToken {
        LoginToken {
            state,
            fingerprint: None,
            expires_at: None,
            expires_at_rfc3339: None,
            remaining_seconds: None,
            remaining: None,
            detail,
        }
    }

    fn of(token: &Secret, now: i64) -> LoginToken {
        let exp = crate::jwt::expiry(token.expose());
        let remaining = exp.map(|e| e.saturating_sub(now));
        LoginToken {
            state: match remaining {
                None => "no-expiry",
                Some(r) if r > 0 => "valid",
                Some(_) => "expired",
            },
            fingerprint: Some(token.fingerprint()),
            expires_at: exp,
            expires_at_rfc3339: exp.map(rfc3339_signed),
            remaining_seconds: remaining,
            remaining: remaining.map(human_duration),
            detail: None,
        }
    }

    fn summary(&self) -> String {
        match (self.state, &self.remaining, &self.expires_at_rfc3339) {
            ("valid", Some(r), Some(at)) => format!("valid, {r} left ({at})"),
            ("expired", Some(r), _) => r.clone(),
            ("no-expiry", ..) => "present (not a JWT with exp)".into(),
            ("absent", ..) => "absent".into(),
            ("not-checked", ..) => {
                format!("not checked ({})", self.detail.as_deref().unwrap_or("not read by status"))
            }
            // The error can be long (the keyring's names every way out); it
            // goes under the table rather than stretching a column.
            (state, ..) => format!("{state} (see below)"),
        }
    }
}

#[derive(Debug, Serialize)]
struct CachedStatus {
    request: String,
    username: String,
    fingerprint: String,
    obtained_at: i64,
    refresh_at: i64,
    expires_at: i64,
    expires_at_rfc3339: String,
    remaining_seconds: i64,
    remaining: String,
    state: &'static str,
}

impl CachedStatus {
    fn of(entry: &CachedToken, now: i64) -> CachedStatus {
        let remaining = entry.expires_at.saturating_sub(now);
        CachedStatus {
            request: entry.request.clone(),
            username: entry.username.clone(),
            fingerprint: entry.token.fingerprint(),
            obtained_at: entry.obtained_at,
            refresh_at: entry.refresh_at,
            expires_at: entry.expires_at,
            expires_at_rfc3339: rfc3339_signed(entry.expires_at),
            remaining_seconds: remaining,
            remaining: human_duration(remaining),
            state: if now < entry.refresh_at {
                "fresh"
            } else if now < entry.expires_at {
                "refresh-due"
            } else {
                "expired"
            },
        }
    }
}

pub(super) fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let helper = Helper::from_env()?;
    let report = collect(&helper)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn collect(helper: &Helper) -> anyhow::Result<Report> {
    let now = crate::time::now();
    let store = helper.store()?;
    let stored = match store.list() {
        Ok(list) => list,
        Err(e) => {
            crate::warn!("cannot list stored credentials: {e}");
            Default::default()
        }
    };
    let cached = helper.cache().map(crate::cache::Cache::entries).unwrap_or_default();
    let mut rows = Vec::new();
    for (key, reg) in &helper.config().registries {
        let listed = stored.get(key.as_str());
        let username =
            reg.username.clone().or_else(|| listed.map(|l| l.username.clone()).filter(|u| !u.is_empty()));
        rows.push(RegistryStatus {
            registry: key.to_string(),
            kind: "exchange",
            stored: listed.is_some(),
            username,
            subject_source: Some(reg.subject_token.describe()),
            token_endpoint: Some(reg.token_endpoint.clone()),
            login_token: Some(login_token(helper, key, reg, now)),
            cached_tokens: cached
                .iter()
                .filter(|c| c.registry == key.as_str())
                .map(|c| CachedStatus::of(c, now))
                .collect(),
        });
    }
    for (key, listed) in &stored {
        if rows.iter().any(|r| &r.registry == key) {
            continue;
        }
        rows.push(RegistryStatus {
            registry: key.clone(),
            kind: "plain",
            stored: true,
            username: Some(listed.username.clone()).filter(|u| !u.is_empty()),
            subject_source: None,
            token_endpoint: None,
            login_token: None,
            cached_tokens: Vec::new(),
        });
    }
    rows.sort_by(|a, b| a.registry.cmp(&b.registry));
    Ok(Report {
        now,
        config_file: helper.config().path.as_ref().filter(|p| p.exists()).map(|p| p.display().to_string()),
        store: store.describe(),
        cache_dir: helper.cache().map(|c| c.dir().display().to_string()),
        registries: rows,
    })
}

/// The login token's expiry, read only from sources that are cheap and
/// side-effect free: the keyring, a variable, a file. Commands and the
/// GitHub Actions endpoint are not run just to report on them.
fn login_token(helper: &Helper, key: &ServerUrl, reg: &RegistryConfig, now: i64) -> LoginToken {
    let token = match &reg.subject_token {
        SourceSpec::Keyring => helper.store().map_err(|e| e.to_string()).and_then(|s| {
            s.get(key).map(|c| c.map(|c| c.secret).filter(|s| !s.is_empty())).map_err(|e| e.to_string())
        }),
        spec @ (SourceSpec::Env { .. } | SourceSpec::File { .. }) => match subject::probe(spec) {
            Ok(Probe::Loaded(s)) => Ok(Some(s.token)),
            Ok(_) => Ok(None),
            Err(e) => Err(e.to_string()),
        },
        SourceSpec::Command { .. } => {
            return LoginToken::without_token("not-checked", Some("status does not run commands".into()));
        }
        SourceSpec::GithubActions { .. } => {
            return LoginToken::without_token(
                "not-checked",
                Some("fetched from the GitHub Actions job when needed".into()),
            );
        }
    };
    match token {
        Ok(Some(t)) => LoginToken::of(&t, now),
        Ok(None) => LoginToken::without_token("absent", None),
        Err(e) => LoginToken::without_token("error", Some(e)),
    }
}

fn table(report: &Report) -> String {
    if report.registries.is_empty() {
        return format!(
            "no registries: none configured{} and none stored in the {}\n",
            report.config_file.as_deref().map(|p| format!(" in {p}")).unwrap_or_default(),
            report.store
        );
    }
    let header = ["REGISTRY", "KIND", "SUBJECT", "LOGIN TOKEN", "CACHED TOKEN"];
    let mut rows: Vec<[String; 5]> = Vec::new();
    for r in &report.registries {
        let login = r.login_token.as_ref().map_or_else(|| "-".to_owned(), LoginToken::summary);
        let first = [
            r.registry.clone(),
            r.kind.to_owned(),
            r.subject_source.clone().unwrap_or_else(|| "-".into()),
            login,
            String::new(),
        ];
        let cached: Vec<String> = r
            .cached_tokens
            .iter()
            .map(|c| {
                let life = if c.remaining_seconds > 0 {
                    format!("{} left", c.remaining)
                } else {
                    c.remaining.clone()
                };
                let scope =
                    if c.request == r.registry { String::new() } else { format!(" for {}", c.request) };
                let due = if c.state == "refresh-due" { ", refresh due" } else { "" };
                format!("{life}{due}, {}{scope}", c.fingerprint)
            })
            .collect();
        let mut row = first;
        row[4] = match (r.kind, cached.first()) {
            (_, Some(c)) => c.clone(),
            ("exchange", None) => "none".into(),
            _ => "-".into(),
        };
        rows.push(row);
        for c in cached.iter().skip(1) {
            rows.push([String::new(), String::new(), String::new(), String::new(), c.clone()]);
        }
    }
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header.map(str::to_owned));
    for row in &rows {
        out.push_str(&line(row));
    }
    for r in &report.registries {
        if let Some(LoginToken { state: "error", detail: Some(detail), .. }) = &r.login_token {
            out.push_str(&format!("\n{}: cannot read the login token: {detail}\n", r.registry));
        }
    }
    out
}
