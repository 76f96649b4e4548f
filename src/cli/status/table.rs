//! The table `status` prints for people, with the notes below it.

use super::report::{CacheState, Kind, LoginState, LoginToken, Report};
use crate::time::{human_duration, rfc3339_signed};

pub(super) fn table(report: &Report) -> String {
    let mut out = String::new();
    if let Some(e) = &report.config_error {
        out.push_str(&format!(
            "config: {e}\n  (plain credentials still work; exchange registries do not)\n\n"
        ));
    }
    if report.registries.is_empty() {
        out.push_str(&format!(
            "no registries: none configured in {} and none stored in the {}\n",
            config_file(report),
            report.store
        ));
        return out;
    }
    let header = ["REGISTRY", "KIND", "USERNAME", "LOGIN TOKEN", "CACHED TOKEN"];
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for r in &report.registries {
        let cached = match (r.kind, r.cached_tokens.iter().max_by_key(|c| c.expires_at)) {
            (_, Some(c)) if c.remaining_seconds > 0 => {
                let more = r.cached_tokens.len() - 1;
                let due = if c.state == CacheState::RefreshDue { ", due" } else { "" };
                let more = if more > 0 { format!(" (+{more})") } else { String::new() };
                format!("{} left{due}{more}", c.remaining)
            }
            (_, Some(_)) => "expired".into(),
            (Kind::Exchange, None) => "none".into(),
            _ => "-".into(),
        };
        // The state first: where the token lives is what a narrow
        // terminal cuts.
        let login = match (&r.login_token, &r.subject_where) {
            (Some(l), Some(w)) => format!("{} ({w})", login_cell(l)),
            (Some(l), None) => login_cell(l),
            (None, _) => "-".into(),
        };
        let kind = match r.kind {
            Kind::Exchange => "exchange",
            Kind::Plain => "plain",
            Kind::Unknown => "?",
        };
        rows.push(vec![
            r.registry.clone(),
            kind.into(),
            r.username.clone().unwrap_or_else(|| "-".into()),
            login,
            cached,
        ]);
        if let Some(e) = &r.entry_error {
            notes.push(format!("{}: {e}", r.registry));
        }
        if let Some(LoginToken { state: LoginState::Error, detail: Some(d), .. }) = &r.login_token {
            notes.push(format!("{}: cannot read the login token: {d}", r.registry));
        }
        if let Some(LoginToken { state: LoginState::Expired, expires_at_rfc3339: Some(at), .. }) =
            &r.login_token
        {
            notes.push(format!("{}: the login token expired at {at}; log in again", r.registry));
        }
        if let Some(f) = &r.last_failure {
            let ago = human_duration(report.now.saturating_sub(f.at));
            notes.push(format!(
                "{}: the last get failed {ago} ago ({}): {}",
                r.registry, f.at_rfc3339, f.message
            ));
            if let Some(until) = f.remembered_until {
                notes.push(format!(
                    "{}: remembered until {}: get answers this failure at once; `docker-credential-exchange token {} \
                     --refresh` retries now",
                    r.registry,
                    rfc3339_signed(until),
                    f.request
                ));
            }
        }
    }
    // Fitted to a terminal; whole in a pipe or a file.
    let width = crate::cli::output::width().unwrap_or(usize::MAX);
    out.push_str(&crate::cli::output::table(&header, &rows, &[&[2, 3], &[0]], width));
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&note);
            out.push('\n');
        }
    }
    out.push_str(&format!("\nconfig: {}\n", config_file(report)));
    out
}

/// The config file read and why that one: "/…/config.json (the default on
/// Linux)", and whether it exists.
fn config_file(report: &Report) -> String {
    let missing = if report.config_file.is_none() { "; it does not exist" } else { "" };
    format!("{} ({}{missing})", report.config_path, report.config_source.describe())
}

/// A short cell for the login token's state.
fn login_cell(token: &LoginToken) -> String {
    match (token.state, &token.remaining) {
        (LoginState::Valid, Some(r)) => format!("valid {r}"),
        (LoginState::Expired, _) => "EXPIRED".into(),
        (LoginState::NoExpiry, _) => "present".into(),
        (LoginState::Absent, _) => "ABSENT".into(),
        (LoginState::NotChecked, _) => "not checked".into(),
        _ => "ERROR".into(),
    }
}
