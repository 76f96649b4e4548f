//! `doctor`'s checks of the clients' configs: whether Docker's
//! `config.json` sends this helper's registries to it, and whether a stored
//! `auth` in Docker's config or in containers' `auth.json` (which skopeo,
//! podman and buildah read first) shadows them: the classic cause of a
//! stale token.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Checks;
use crate::cli::configure_docker::{HELPER_NAME, docker_config_path, home_dir, read_docker_config};
use crate::config::Config;
use crate::helper::Helper;
use crate::server_url::{DOCKER_HUB, DOCKER_HUB_LEGACY_URL, ServerUrl};

/// Registry hosts this helper answers for: exchange registries and stored ones.
pub(super) fn served_hosts(helper: Option<&Helper>, config: &Config) -> BTreeSet<String> {
    let mut hosts: BTreeSet<String> =
        config.registries.iter().map(|(k, _)| k.registry().to_owned()).collect();
    if let Some(list) = helper.and_then(|h| h.store().ok()).and_then(|s| s.list().ok()) {
        hosts.extend(list.keys().filter_map(|k| ServerUrl::parse(k).ok()).map(|u| u.registry().to_owned()));
    }
    hosts
}

pub(super) fn check_docker_config(checks: &mut Checks, config: &Config, served: &BTreeSet<String>) {
    let path = match docker_config_path() {
        Ok(p) => p,
        Err(e) => {
            checks.fail(format!("docker: {e:#}"), "set HOME or DOCKER_CONFIG");
            return;
        }
    };
    let doc = match read_json(&path) {
        Ok(Some(doc)) => doc,
        Ok(None) => {
            checks.warn(
                format!("docker: {} does not exist; Docker will not run this helper", path.display()),
                "run `docker-credential-exchange configure-docker`",
            );
            return;
        }
        Err(e) => {
            checks.fail(format!("docker: {e}"), "fix the file; Docker cannot read it either");
            return;
        }
    };
    let helpers = doc.get("credHelpers").and_then(Value::as_object);
    let store = doc.get("credsStore").and_then(Value::as_str).filter(|s| !s.is_empty());
    let mut hosts: Vec<&str> = config.registries.iter().map(|(k, _)| k.registry()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    for host in hosts {
        let key = if host == DOCKER_HUB { DOCKER_HUB_LEGACY_URL } else { host };
        let fix = format!("run `docker-credential-exchange configure-docker {host}`");
        match (helpers.and_then(|h| h.get(key)).map(|v| v.as_str().unwrap_or("")), store) {
            (Some(HELPER_NAME), _) => checks.ok(format!("docker: {} sends {host} to this helper (credHelpers)", path.display())),
            (Some(other), _) => checks.fail(
                format!(
                    "docker: {} sends {host} to docker-credential-{other} (credHelpers \"{key}\"), not to this helper",
                    path.display()
                ),
                fix,
            ),
            (None, Some(HELPER_NAME)) => {
                checks.ok(format!("docker: {} sends {host} to this helper (credsStore)", path.display()));
            }
            (None, Some(other)) => checks.fail(
                format!(
                    "docker: {} sends {host} to docker-credential-{other} (credsStore), not to this helper",
                    path.display()
                ),
                fix,
            ),
            (None, None) => checks.warn(
                format!("docker: {} does not name this helper for {host}", path.display()),
                fix,
            ),
        }
    }
    check_auths(
        checks,
        &path,
        &doc,
        served,
        |key| format!("run `docker logout {key}`, or remove auths.\"{key}\" from the file"),
        "tools that read auths first send this stored credential instead of the helper's token",
    );
}

pub(super) fn check_containers_auth(checks: &mut Checks, served: &BTreeSet<String>) {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(f));
    } else {
        if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            files.push(PathBuf::from(run).join("containers").join("auth.json"));
        }
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home_dir().ok().map(|h| h.join(".config")));
        if let Some(dir) = config_home {
            files.push(dir.join("containers").join("auth.json"));
        }
    }
    for path in files {
        match read_json(&path) {
            Ok(Some(doc)) => check_auths(
                checks,
                &path,
                &doc,
                served,
                |key| {
                    format!(
                        "run `podman logout {key}` (or `skopeo logout {key}`), or remove auths.\"{key}\" from the file"
                    )
                },
                "skopeo, podman and buildah read this file before Docker's config",
            ),
            Ok(None) => {}
            Err(e) => {
                checks.warn(format!("containers: {e}"), "podman and skopeo cannot read it either; fix it")
            }
        }
    }
}

/// Flags `auths` entries with a stored credential for a registry we serve.
fn check_auths(
    checks: &mut Checks,
    path: &Path,
    doc: &Value,
    served: &BTreeSet<String>,
    fix: impl Fn(&str) -> String,
    why: &str,
) {
    let mut found = false;
    if let Some(auths) = doc.get("auths").and_then(Value::as_object) {
        for (key, entry) in auths {
            let Ok(url) = ServerUrl::parse(key) else { continue };
            if !served.contains(url.registry()) {
                continue;
            }
            let stored = ["auth", "identitytoken", "password"]
                .iter()
                .find(|f| entry.get(**f).and_then(Value::as_str).is_some_and(|s| !s.is_empty()));
            if let Some(field) = stored {
                found = true;
                checks.fail(
                    format!(
                        "shadowed: {} has a stored \"{field}\" in auths.\"{key}\" for {}, which this helper serves; {why}",
                        path.display(),
                        url.registry()
                    ),
                    fix(key),
                );
            }
        }
    }
    if !found {
        checks.ok(format!("shadowing: no stored auth in {} for this helper's registries", path.display()));
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, String> {
    let bytes = match read_docker_config(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("{e:#}")),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Value::Object(Default::default())));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        format!("{} is not valid JSON (line {}, column {})", path.display(), e.line(), e.column())
    })
}
