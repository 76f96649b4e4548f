//! `status`: every configured or stored registry, who `get` answers as,
//! where its login token comes from and when it expires, the life left in
//! its cached tokens, and the last failure of a `get` for it (Docker shows
//! only "no basic auth credentials"; the reason is kept beside the cache).
//!
//! A table for people (fitted to 80 columns, details below it); `--json`
//! for scripts. The JSON document is stable (fields are only ever added):
//!
#![doc = concat!("```text\n", include_str!("schema.txt"), "```")]
//! Secrets never appear: tokens are shown only as fingerprints.

mod report;
mod table;

use std::process::ExitCode;

use crate::cache::{CachedToken, ExchangeFailure, Failure};
use crate::config::{Config, ConfigError, RegistryConfig, SourceSpec};
use crate::helper::Helper;
use crate::paths::ConfigOrigin;
use crate::server_url::ServerUrl;
use crate::store::{EntryKind, ListedCredential, StoreKind};
use crate::time::rfc3339_signed;
use report::{CachedStatus, FailureStatus, Kind, LoginState, LoginToken, RegistryStatus, Report};

/// `status`'s arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print stable JSON instead of a table (documented in `docker-credential-exchange status --help`).
    #[arg(long, long_help = JSON_HELP)]
    pub json: bool,
}

/// `--json`'s long help: the document's schema, the one the module's doc
/// shows too.
const JSON_HELP: &str = concat!(
    "Print stable JSON instead of a table. Fields are only ever added; times are Unix seconds; tokens appear \
     only as fingerprints, never secrets:\n\n",
    include_str!("schema.txt")
);

pub(super) fn status(args: StatusArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    let report = collect(helper)?;
    if args.json {
        super::output::line(&serde_json::to_string_pretty(&report)?)?;
    } else {
        super::output::print(&table::table(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Gathers the report: the config, the store's index, the cache and the
/// failure records, and the login tokens of the sources that are cheap to
/// read (the keyring, a variable, a file).
pub(super) fn collect(helper: &Helper) -> anyhow::Result<Report> {
    let now = crate::time::now();
    let store = helper.store()?;
    let stored = store.list().unwrap_or_else(|e| {
        crate::log::warn!("cannot list stored credentials: {e}");
        Default::default()
    });
    let cache = helper.cache();
    let cached = if cache.tokens_enabled() { cache.entries() } else { Vec::new() };
    let config = helper.config().ok();
    let mut rows = Vec::new();
    if let Some(config) = config {
        for (id, entry) in config.registries() {
            let listed = stored.get(config.key(id).as_str());
            rows.push(exchange_row(helper, config.key(id), entry, listed, &cached, now));
        }
    }
    for (key, listed) in &stored {
        if rows.iter().any(|r: &RegistryStatus| &r.registry == key) {
            continue;
        }
        rows.push(RegistryStatus {
            registry: key.clone(),
            kind: if listed.kind == Some(EntryKind::LoginToken) { Kind::Unknown } else { Kind::Plain },
            stored: true,
            username: Some(listed.username.clone()).filter(|u| !u.is_empty()),
            subject_source: None,
            token_endpoint: None,
            entry_error: (listed.kind == Some(EntryKind::LoginToken)).then(|| {
                "a login token is stored, but the registry is not configured for exchange".to_owned()
            }),
            login_token: None,
            cached_tokens: Vec::new(),
            last_failure: None,
            subject_where: None,
        });
    }
    attach_failures(&mut rows, cache.failures(), &helper.remembered(), config, &cached);
    rows.sort_by(|a, b| a.registry.cmp(&b.registry));
    Ok(Report {
        now,
        config_file: Some(helper.config_path()).filter(|p| p.exists()).map(|p| p.display().to_string()),
        config_path: helper.config_path().display().to_string(),
        config_source: ConfigOrigin::current(),
        config_error: helper.config().err().map(|e| e.to_string()),
        store: store.describe(),
        cache_dir: cache.tokens_enabled().then(|| cache.dir().display().to_string()),
        registries: rows,
    })
}

fn store_kind(helper: &Helper) -> Option<StoreKind> {
    helper.config().ok()?.store_kind().ok()
}

fn exchange_row(
    helper: &Helper,
    key: &ServerUrl,
    entry: Result<&RegistryConfig, ConfigError>,
    listed: Option<&ListedCredential>,
    cached: &[CachedToken],
    now: i64,
) -> RegistryStatus {
    let login_username = listed.map(|l| l.username.as_str());
    let (reg, entry_error) = match entry {
        Ok(reg) => (Some(reg), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let subject_where = reg.map(|r| crate::source::location(&r.subject_token, store_kind(helper)));
    RegistryStatus {
        registry: key.to_string(),
        kind: Kind::Exchange,
        stored: listed.is_some(),
        username: reg.map(|r| r.username_for(login_username)),
        subject_source: reg.map(|r| r.subject_token.describe()),
        token_endpoint: reg.map(|r| r.token_endpoint.clone()),
        entry_error,
        login_token: reg.map(|r| login_token(helper, key, r, now)),
        cached_tokens: cached
            .iter()
            .filter(|c| c.registry == key.as_str())
            .map(|c| CachedStatus::of(c, now))
            .collect(),
        last_failure: None,
        subject_where,
    }
}

/// Puts each failure on the row its request belongs to (the longest
/// configured prefix, else the stored entry, else a row of its own),
/// unless a token obtained since shows that a `get` succeeded after it.
fn attach_failures(
    rows: &mut Vec<RegistryStatus>,
    failures: Vec<Failure>,
    remembered: &[ExchangeFailure],
    config: Option<&Config>,
    cached: &[CachedToken],
) {
    for failure in failures {
        let succeeded_since = cached
            .iter()
            .any(|c| c.request == failure.request && c.obtained_at.saturating_mul(1000) > failure.at_ms);
        if succeeded_since {
            continue;
        }
        let request = ServerUrl::parse(&failure.request).ok();
        let owner = request
            .as_ref()
            .and_then(|url| config.and_then(|c| c.lookup(url).map(|id| c.key(id).to_string())))
            .or_else(|| request.as_ref().map(|u| u.to_string()))
            .unwrap_or_else(|| failure.request.clone());
        let status = FailureStatus {
            request: failure.request.clone(),
            at: failure.at(),
            at_rfc3339: rfc3339_signed(failure.at()),
            message: failure.message.clone(),
            remembered_until: remembered
                .iter()
                .find(|r| r.request == failure.request)
                .map(ExchangeFailure::until),
        };
        match rows.iter_mut().find(|r| r.registry == owner) {
            // Newest first: the first failure found for a row is its last.
            Some(row) if row.last_failure.is_none() => row.last_failure = Some(status),
            Some(_) => {}
            None => rows.push(RegistryStatus {
                registry: owner,
                kind: Kind::Unknown,
                stored: false,
                username: None,
                subject_source: None,
                token_endpoint: None,
                entry_error: None,
                login_token: None,
                cached_tokens: Vec::new(),
                last_failure: Some(status),
                subject_where: None,
            }),
        }
    }
}

/// The login token's state, read only from sources that are cheap and
/// side-effect free: the keyring, a variable, a file. Commands and the
/// GitHub Actions endpoint are not run just to report on them.
fn login_token(helper: &Helper, key: &ServerUrl, reg: &RegistryConfig, now: i64) -> LoginToken {
    let token = match &reg.subject_token {
        SourceSpec::Keyring => helper.store().map_err(|e| e.to_string()).and_then(|s| {
            s.get(key).map(|c| c.map(|c| c.secret).filter(|s| !s.is_empty())).map_err(|e| e.to_string())
        }),
        spec @ (SourceSpec::Env { .. } | SourceSpec::File { .. }) => {
            crate::source::read(spec, helper.deadline()).map_err(|e| e.to_string())
        }
        SourceSpec::Command { .. } => {
            return LoginToken::without_token(
                LoginState::NotChecked,
                Some("status does not run commands".into()),
            );
        }
        SourceSpec::GithubActions { .. } => {
            return LoginToken::without_token(
                LoginState::NotChecked,
                Some("fetched from the GitHub Actions job when needed".into()),
            );
        }
        SourceSpec::Kubelet => {
            return LoginToken::without_token(
                LoginState::NotChecked,
                Some("passed by the kubelet with each request".into()),
            );
        }
    };
    match token {
        Ok(Some(t)) => LoginToken::of(&t, now),
        Ok(None) => LoginToken::without_token(LoginState::Absent, None),
        Err(e) => LoginToken::without_token(LoginState::Error, Some(e)),
    }
}
