//! `doctor`: check everything a failing pull could be blamed on, one line
//! each (`✓` fine, `!` worth a look, `✗` broken) with a hint that says
//! what to do. Exits 1 if anything is broken.
//!
//! The checks: the config parses; the store is reachable (a harmless read
//! of an item that does not exist); the cache directory is private; every
//! token endpoint answers (any HTTP status will do) and its `Date` agrees
//! with the local clock; the binary is on PATH under the name Docker runs;
//! Docker's config sends our registries to this helper; and no stored
//! `auth` in Docker's config or in containers' `auth.json` shadows them.

mod clients;

use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, RegistryConfig, SourceSpec};
use crate::fsutil::FsError;
use crate::helper::Helper;
use crate::server_url::ServerUrl;
use crate::store::StoreKind;

/// Local clocks further off than this from the endpoint's are flagged.
const MAX_SKEW_SECS: i64 = 60;
const BINARY: &str = "docker-credential-exchange";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Default)]
struct Checks {
    failures: usize,
    warnings: usize,
}

impl Checks {
    fn report(&mut self, level: Level, text: impl AsRef<str>, hint: Option<String>) {
        let mark = match level {
            Level::Ok => "✓",
            Level::Warn => {
                self.warnings += 1;
                "!"
            }
            Level::Fail => {
                self.failures += 1;
                "✗"
            }
        };
        println!("{mark} {}", text.as_ref());
        if let Some(hint) = hint {
            println!("    hint: {hint}");
        }
    }

    fn ok(&mut self, text: impl AsRef<str>) {
        self.report(Level::Ok, text, None);
    }

    fn warn(&mut self, text: impl AsRef<str>, hint: impl Into<String>) {
        self.report(Level::Warn, text, Some(hint.into()));
    }

    fn fail(&mut self, text: impl AsRef<str>, hint: impl Into<String>) {
        self.report(Level::Fail, text, Some(hint.into()));
    }
}

pub(super) fn doctor() -> anyhow::Result<ExitCode> {
    let mut checks = Checks::default();
    let helper = check_config(&mut checks);
    let config = helper.as_ref().map(|h| h.config().clone()).unwrap_or_default();
    if let Some(helper) = &helper {
        check_store(&mut checks, helper);
    }
    check_cache(&mut checks);
    check_endpoints(&mut checks, &config);
    check_path(&mut checks);
    let served = clients::served_hosts(helper.as_ref(), &config);
    clients::check_docker_config(&mut checks, &config, &served);
    clients::check_containers_auth(&mut checks, &served);
    match (checks.failures, checks.warnings) {
        (0, 0) => println!("\nno problems found"),
        (f, w) => println!("\n{f} problem(s), {w} warning(s)"),
    }
    Ok(if checks.failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn check_config(checks: &mut Checks) -> Option<Helper> {
    let path = match crate::paths::config_file() {
        Ok(p) => p,
        Err(e) => {
            checks.fail(format!("config: {e}"), "set HOME, or DOCKER_CREDENTIAL_EXCHANGE_CONFIG");
            return None;
        }
    };
    match Helper::from_env() {
        Ok(helper) => {
            let n = helper.config().registries.len();
            if helper.config().path.is_some() {
                checks.ok(format!(
                    "config: {} is valid ({n} exchange registr{})",
                    path.display(),
                    plural_y(n)
                ));
            } else {
                checks.ok(format!(
                    "config: no file at {} (no exchange registries; a plain credential store)",
                    path.display()
                ));
            }
            Some(helper)
        }
        Err(e) => {
            checks.fail(
                format!("config: {e}"),
                "fix the file (stored credentials are untouched); checks that need it are skipped",
            );
            None
        }
    }
}

fn plural_y(n: usize) -> &'static str {
    if n == 1 { "y" } else { "ies" }
}

fn check_store(checks: &mut Checks, helper: &Helper) {
    let kind = match helper.config().store_kind() {
        Ok(k) => k,
        Err(e) => {
            checks.fail(format!("store: {e}"), "unset the variable or give it a valid value");
            return;
        }
    };
    let store = match helper.store() {
        Ok(s) => s,
        Err(e) => {
            checks.fail(format!("store: {e}"), "see the message");
            return;
        }
    };
    if kind == StoreKind::File {
        checks.ok(format!("store: {} (the file store was chosen)", store.describe()));
        return;
    }
    // A harmless read: an item that cannot exist. It connects to the
    // keyring (and may unlock it) without touching any real entry.
    let probe = ServerUrl::parse("docker-credential-exchange-doctor.invalid");
    let result = match probe {
        Ok(url) => store.get(&url).map(|_| ()),
        Err(_) => Ok(()),
    };
    match result {
        Ok(()) => checks.ok(format!("store: the OS keyring is reachable ({})", store.describe())),
        Err(e) => {
            let needs_keyring = helper
                .config()
                .registries
                .iter()
                .any(|(_, r)| matches!(r.subject_token, SourceSpec::Keyring))
                || store.list().is_ok_and(|l| !l.is_empty());
            let text = format!("store: {e}");
            let hint = "on a machine without a desktop session, the file store is the usual choice";
            if needs_keyring {
                checks.fail(text, hint);
            } else {
                checks.warn(format!("{text} (nothing here needs it yet)"), hint);
            }
        }
    }
}

fn check_cache(checks: &mut Checks) {
    if crate::paths::cache_disabled() {
        checks.warn(
            "cache: disabled by DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE; every get exchanges",
            "unset DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE unless you are debugging",
        );
        return;
    }
    let dir = match crate::paths::cache_dir() {
        Ok(d) => d,
        Err(e) => {
            checks.fail(format!("cache: {e}"), "set HOME or DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR");
            return;
        }
    };
    // The same check the helper makes before every cache write, without
    // the repair, so doctor changes nothing.
    match crate::fsutil::inspect_private_dir(&dir) {
        Ok(None) => {}
        Ok(Some(mode)) => {
            checks.warn(
                format!("cache: {} has mode {mode:o}, not 700", dir.display()),
                format!("chmod 700 {} (the helper also repairs it on its next write)", dir.display()),
            );
            return;
        }
        Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            checks.ok(format!("cache: {} does not exist yet (created 0700 on first use)", dir.display()));
            return;
        }
        Err(e @ FsError::Io { .. }) => {
            checks.fail(format!("cache: {e}"), "check its permissions");
            return;
        }
        Err(e) => {
            checks.fail(
                format!("cache: {e}"),
                format!("remove {} (it is only a cache) and retry", dir.display()),
            );
            return;
        }
    }
    checks.ok(format!("cache: {} is private (0700, yours)", dir.display()));
}

fn check_endpoints(checks: &mut Checks, config: &Config) {
    let mut seen: Vec<&str> = Vec::new();
    for (key, reg) in &config.registries {
        if seen.contains(&reg.token_endpoint.as_str()) {
            continue;
        }
        seen.push(&reg.token_endpoint);
        check_endpoint(checks, key, reg);
    }
}

fn check_endpoint(checks: &mut Checks, key: &ServerUrl, reg: &RegistryConfig) {
    let endpoint = &reg.token_endpoint;
    let client = match crate::http::client(reg.ca_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            checks.fail(format!("endpoint {endpoint} ({key}): {e}"), "fix ca_file in the config");
            return;
        }
    };
    // One plain GET, no retries: any HTTP answer proves DNS, TCP and TLS.
    let response = match client.get(endpoint.as_str()).send() {
        Ok(r) => r,
        Err(e) => {
            checks.fail(
                format!("endpoint {endpoint} ({key}) is not reachable: {}", crate::http::error_chain(&e)),
                "check the URL, DNS, proxy variables (HTTPS_PROXY, NO_PROXY), firewalls, and ca_file for a private CA",
            );
            return;
        }
    };
    let local = crate::time::now();
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| "(no Location)".to_owned(), crate::server_url::truncate_for_message);
        checks.warn(
            format!("endpoint {endpoint} ({key}) answers with a redirect (HTTP {}) to {location}", status.as_u16()),
            "the helper never follows redirects (the token must not be re-sent elsewhere); configure the final URL",
        );
    } else {
        checks.ok(format!("endpoint {endpoint} ({key}) is reachable (HTTP {})", status.as_u16()));
    }
    let date =
        response.headers().get(reqwest::header::DATE).and_then(|v| v.to_str().ok()).and_then(parse_http_date);
    match date {
        None => checks.warn(
            format!("clock: {endpoint} sent no usable Date header; the clock was not checked"),
            "make sure the clock is synchronized (e.g. timedatectl set-ntp true)",
        ),
        Some(remote) => {
            let skew = local.saturating_sub(remote);
            if skew.saturating_abs() > MAX_SKEW_SECS {
                let direction = if skew > 0 { "ahead of" } else { "behind" };
                checks.warn(
                    format!(
                        "clock: this machine is {} {direction} {endpoint}",
                        crate::time::human_duration(skew.saturating_abs())
                    ),
                    "tokens will look expired early or not yet valid; synchronize the clock (e.g. timedatectl set-ntp true)",
                );
            } else {
                checks.ok(format!("clock: within {}s of {endpoint}", skew.saturating_abs()));
            }
        }
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) in Unix seconds.
fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, hms, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = i64::try_from(MONTHS.iter().position(|m| m == month)?).ok()? + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut hms = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || !(0..=23).contains(&h) || !(0..=59).contains(&m) || !(0..=60).contains(&s)
    {
        return None;
    }
    if !(1970..=9999).contains(&year) {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

fn check_path(checks: &mut Checks) {
    let name = format!("{BINARY}{}", std::env::consts::EXE_SUFFIX);
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(&name)).find(|p| is_executable(p)))
        .unwrap_or_default();
    match found {
        Some(path) => {
            let this = std::env::current_exe().ok().and_then(|p| p.canonicalize().ok());
            let that = path.canonicalize().ok();
            if this.is_some() && that.is_some() && this != that {
                checks.warn(
                    format!(
                        "PATH: Docker will run {}, which is not this binary ({})",
                        path.display(),
                        this.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default()
                    ),
                    "make sure they are the same version, or put this one first on PATH",
                );
            } else {
                checks.ok(format!("PATH: Docker will run {}", path.display()));
            }
        }
        None => checks.fail(
            format!("PATH: no {name} on PATH; Docker runs `{name}` and cannot find it"),
            "install it with install/install.sh (into ~/.local/bin) and put that directory on PATH",
        ),
    }
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse_to_unix_seconds() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }
}
