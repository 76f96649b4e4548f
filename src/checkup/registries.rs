//! `doctor`'s checks of the config and of each exchange registry: the
//! file read (and why that one), each entry, its subject token (present,
//! unexpired), whether Docker can use it as written, its client secret,
//! its endpoint ([`super::endpoint`]), and the last failure of a `get`.

use std::time::Duration;

use super::Checks;
use super::clients::DockerSide;
use crate::cache::Freshness;
use crate::config::{RegistryConfig, SourceSpec};
use crate::deadline::Deadline;
use crate::helper::Helper;
use crate::paths::ConfigOrigin;
use crate::server_url::ServerUrl;
use crate::subject::{self, Context, Probe};

/// Reading a subject token or client secret may take this long.
const CHECK_TIME: Duration = Duration::from_secs(10);

pub(super) fn config(checks: &mut Checks, helper: &Helper) -> anyhow::Result<()> {
    let origin = ConfigOrigin::current();
    let path = format!("{} ({})", helper.config_path().display(), origin.describe());
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
        let text = format!("no file at {path}: no exchange registries, a plain credential store");
        // A variable that names a missing file is a typo, not a choice.
        return match origin {
            ConfigOrigin::Env => checks.warn(
                "config",
                text,
                format!("unset {} or point it at the config file", crate::paths::CONFIG_ENV),
            ),
            _ => checks.ok("config", text),
        };
    }
    let mut bad = 0;
    for (_, entry) in config.registries() {
        if let Err(e) = entry {
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

/// One valid exchange entry and what its checks look at besides it.
#[derive(Clone, Copy)]
struct Entry<'a> {
    helper: &'a Helper,
    docker: &'a DockerSide,
    key: &'a ServerUrl,
    reg: &'a RegistryConfig,
}

/// Each valid exchange entry: subject, what Docker can ask of it, client
/// secret, endpoint and clock, and with `exchange` one real exchange.
pub(super) fn registries(
    checks: &mut Checks,
    helper: &Helper,
    docker: &DockerSide,
    exchange: bool,
) -> anyhow::Result<()> {
    let Ok(config) = helper.config() else { return Ok(()) };
    let mut endpoints_seen: Vec<String> = Vec::new();
    for (id, entry) in config.registries() {
        let Ok(reg) = entry else { continue };
        let key = config.key(id);
        let entry = Entry { helper, docker, key, reg };
        subject_token(checks, &entry)?;
        docker_can_ask(checks, &entry)?;
        client_secret(checks, key, reg)?;
        super::client_auth::check(checks, key, reg)?;
        if !endpoints_seen.contains(&reg.token_endpoint) {
            endpoints_seen.push(reg.token_endpoint.clone());
            super::endpoint::endpoint(checks, helper, key, reg)?;
        }
        if exchange {
            super::endpoint::prove(checks, helper, key, reg)?;
        }
    }
    Ok(())
}

/// Docker (and BuildKit, skopeo, crane) asks for a host with no
/// repository, so a host entry that Docker sends here must not need
/// `{repository}`: every pull from it would fail. A path entry is never
/// matched by Docker's requests, which name only the host.
fn docker_can_ask(checks: &mut Checks, entry: &Entry<'_>) -> anyhow::Result<()> {
    let Entry { helper, docker, key, reg } = *entry;
    let host = key.registry();
    if !docker.routing.sends_here(host) {
        return Ok(());
    }
    if key.repository().is_some() {
        let has_host_entry = helper.config().is_ok_and(|c| c.ids().any(|id| c.key(id).as_str() == host));
        if has_host_entry {
            return Ok(());
        }
        return checks.warn(
            "scope",
            format!(
                "Docker sends {host} here, always without a repository, so the entry \"{key}\" is never used for \
                 its pulls, and no entry \"{host}\" exists: Docker gets no credentials for {host}"
            ),
            format!(
                "add an entry \"{host}\" with a fixed scope naming the repositories Docker pulls, e.g. \
                 \"scope\": \"repository:team/app:pull,push repository:team/lib:pull\""
            ),
        );
    }
    let uses = |v: &str| v.contains("{repository}");
    let field = [
        ("scope", reg.scope.iter().any(|s| uses(s))),
        ("audience", reg.audience.as_ref().is_some_and(|a| a.values().iter().any(|v| uses(v)))),
        ("resource", reg.resource.as_ref().is_some_and(|r| r.values().iter().any(|v| uses(v)))),
    ]
    .into_iter()
    .find_map(|(field, used)| used.then_some(field));
    let Some(field) = field else { return Ok(()) };
    let example = match field {
        "scope" => "\"scope\": \"repository:team/app:pull,push repository:team/lib:pull\"".to_owned(),
        other => format!("\"{other}\": \"https://{host}\""),
    };
    checks.problem(
        "scope",
        format!(
            "{key}: Docker sends {host} here with no repository (Docker, BuildKit and skopeo never name one), but \
             the entry's {field} needs {{repository}}; every pull from {host} fails"
        ),
        format!(
            "give it a fixed {field}, e.g. {example}; keep {{repository}} for an entry \"{host}/REPOSITORY\" \
             (used by `token` and the kubelet, which name the repository)"
        ),
    )
}

fn subject_token(checks: &mut Checks, entry: &Entry<'_>) -> anyhow::Result<()> {
    let Entry { helper, docker, key, reg } = *entry;
    let deadline = Deadline::after(CHECK_TIME);
    let store = helper.config().ok().and_then(|c| c.store_kind().ok());
    let source = crate::source::location(&reg.subject_token, store);
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
                        crate::source::GHA_URL_ENV
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
        spec => match crate::source::read(spec, &deadline) {
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
            SourceSpec::Keyring => {
                let mut fix = format!(
                    "run `docker-credential-exchange login {key}`; not `docker login`, which checks the token \
                     against the registry itself before it would store it, so a login token for the STS fails \
                     there (unauthorized) and never reaches this helper"
                );
                if let Some(m) = docker.misspelt(key.registry()) {
                    fix.push_str(&format!(
                        "; but first settle the name: Docker sends {} here, not {} (see the docker check below)",
                        m.docker, m.configured
                    ));
                }
                fix
            }
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
    match crate::source::read(spec, &deadline) {
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

/// The last failure of each request, unless a token obtained since shows
/// that a `get` succeeded after it, or it is this run's own `--exchange`
/// failing (said above, with its fix): failures since `since_ms` are left
/// out.
pub(super) fn failures(checks: &mut Checks, helper: &Helper, since_ms: i64) -> anyhow::Result<()> {
    let cache = helper.cache();
    let entries = cache.entries();
    let remembered = helper.remembered();
    let now = crate::time::now();
    for failure in cache.failures() {
        let superseded = entries.iter().any(|e| {
            e.request == failure.request
                && e.obtained_at.saturating_mul(1000) > failure.at_ms
                && e.schedule().freshness(now) != Freshness::Expired
        });
        if superseded || failure.at_ms >= since_ms {
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
