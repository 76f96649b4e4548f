//! `doctor`'s checks of the clients' configs: Docker's `config.json` must
//! send this helper's registries to it, and no stored `auth` in Docker's
//! config or in containers' `auth.json` (which skopeo, podman and buildah
//! read first) may shadow them: the classic cause of a stale token. The fix
//! named is one that keeps the helper's login, unlike `docker logout`,
//! which would also erase it.

use std::collections::BTreeSet;
use std::path::Path;

use super::Checks;
use crate::cli::docker_config::{self, ConfigFile, HELPER_NAME, helper_keys};
use crate::helper::Helper;
use crate::server_url::ServerUrl;

/// Registry hosts this helper answers for: exchange registries and stored ones.
pub(super) fn served_hosts(helper: &Helper) -> BTreeSet<String> {
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    if let Ok(config) = helper.config() {
        hosts.extend(config.ids().map(|id| config.key(id).registry().to_owned()));
    }
    if let Some(list) = helper.store().ok().and_then(|s| s.list().ok()) {
        hosts.extend(list.keys().filter_map(|k| ServerUrl::parse(k).ok()).map(|u| u.registry().to_owned()));
    }
    hosts
}

pub(super) fn docker_config(
    checks: &mut Checks,
    helper: &Helper,
    served: &BTreeSet<String>,
) -> anyhow::Result<()> {
    let path = match docker_config::docker_config_path() {
        Ok(p) => p,
        Err(e) => {
            return checks.problem("docker", crate::redact::chain(e.chain()), "set HOME or DOCKER_CONFIG");
        }
    };
    let file = match ConfigFile::read(&path) {
        Ok(f) => f,
        Err(e) => {
            return checks.problem(
                "docker",
                crate::redact::chain(e.chain()),
                "fix the file; Docker cannot read it either",
            );
        }
    };
    if file.original.is_none() {
        return checks.warn(
            "docker",
            format!("{} does not exist; Docker will not run this helper", path.display()),
            "run `docker-credential-exchange configure-docker`",
        );
    }
    let exchange_hosts: BTreeSet<&str> =
        helper.config().iter().flat_map(|c| c.ids().map(|id| c.key(id).registry())).collect();
    let store = file.doc.creds_store();
    for host in exchange_hosts {
        let fix = format!("run `docker-credential-exchange configure-docker {host}`");
        let key = &helper_keys(host)[0];
        match (file.doc.cred_helper(key), &store) {
            (Some(h), _) if h == HELPER_NAME => {
                checks.ok("docker", format!("{} sends {host} to this helper (credHelpers)", path.display()))?;
            }
            (Some(other), _) => checks.problem(
                "docker",
                format!(
                    "{} sends {host} to docker-credential-{other} (credHelpers \"{key}\"), not to this helper",
                    path.display()
                ),
                fix,
            )?,
            (None, Some(s)) if s == HELPER_NAME => {
                checks.ok("docker", format!("{} sends {host} to this helper (credsStore)", path.display()))?;
            }
            (None, Some(other)) => checks.problem(
                "docker",
                format!("{} sends {host} to docker-credential-{other} (credsStore), not to this helper", path.display()),
                fix,
            )?,
            (None, None) => checks.warn("docker", format!("{} does not name this helper for {host}", path.display()), fix)?,
        }
    }
    shadowing(
        checks,
        &file.path,
        &file.doc,
        served,
        "tools that read auths first send this stored credential instead of the helper's token",
    )
}

pub(super) fn containers_auth(checks: &mut Checks, served: &BTreeSet<String>) -> anyhow::Result<()> {
    for path in docker_config::containers_auth_paths() {
        match ConfigFile::read(&path) {
            Ok(file) if file.original.is_some() => shadowing(
                checks,
                &file.path,
                &file.doc,
                served,
                "skopeo, podman and buildah read this file before Docker's config",
            )?,
            Ok(_) => {}
            Err(e) => checks.warn(
                "containers",
                crate::redact::chain(e.chain()),
                "podman and skopeo cannot read it either; fix it",
            )?,
        }
    }
    Ok(())
}

/// Flags `auths` entries with a stored credential for a registry we serve.
fn shadowing(
    checks: &mut Checks,
    path: &Path,
    doc: &docker_config::Document,
    served: &BTreeSet<String>,
    why: &str,
) -> anyhow::Result<()> {
    let stored = doc.stored_auths(served);
    if stored.is_empty() {
        return checks
            .ok("shadowing", format!("no stored auth in {} for this helper's registries", path.display()));
    }
    for (key, field) in stored {
        let host = ServerUrl::parse(&key).map(|u| u.registry().to_owned()).unwrap_or(key.clone());
        checks.problem(
            "shadowing",
            format!("{} has a stored \"{field}\" in auths.\"{key}\", which this helper serves; {why}", path.display()),
            format!(
                "run `docker-credential-exchange configure-docker {host}`, which moves that credential into this \
                 helper's store before it removes the entry (an exchange registry's is only removed) and keeps a \
                 backup; not `docker logout`, which would also erase this helper's login"
            ),
        )?;
    }
    Ok(())
}
