//! `doctor`'s checks of the clients' configs: Docker's `config.json` must
//! send this helper's registries to it under the names the helper knows
//! them by, and no stored `auth` in Docker's config or in containers'
//! `auth.json` (which skopeo, podman and buildah read first) may shadow
//! them: the classic cause of a stale token. The fix named is one that
//! keeps the helper's login, unlike `docker logout`, which would also
//! erase it.
//!
//! Docker's config is read once, first ([`DockerSide::read`]), because the
//! other checks need to know what Docker sends here: a host entry that
//! needs `{repository}` is broken only for a host Docker sends, and a name
//! misspelt on one side should be named as such on both.

use std::collections::BTreeSet;
use std::path::Path;

use super::Checks;
use crate::docker_config::{self, ConfigFile, Document, HELPER_NAME, helper_keys};
use crate::helper::Helper;
use crate::server_url::ServerUrl;

/// How alike two registry names must be (normalized Damerau-Levenshtein)
/// to be taken for one name misspelt: `127.0.0.1:1500` and
/// `127.0.0.1:15000` are (0.93), `ghcr.io` and `quay.io` are not (0.43).
const SAME_NAME: f64 = 0.8;

/// Which helper Docker's config sends each registry to.
#[derive(Debug, Default)]
pub(super) struct Routing {
    creds_store: Option<String>,
    cred_helpers: Vec<(String, String)>,
}

impl Routing {
    fn of(doc: &Document) -> Routing {
        Routing { creds_store: doc.creds_store(), cred_helpers: doc.cred_helpers() }
    }

    /// The `credHelpers` entry Docker uses for `host`: (key, helper).
    fn cred_helper(&self, host: &str) -> Option<(&str, &str)> {
        let key = &helper_keys(host)[0];
        self.cred_helpers.iter().find(|(k, _)| k == key).map(|(k, h)| (k.as_str(), h.as_str()))
    }

    /// Whether Docker sends `host` to this helper: its `credHelpers` entry
    /// names it, or it has none and `credsStore` does.
    pub(super) fn sends_here(&self, host: &str) -> bool {
        match self.cred_helper(host) {
            Some((_, helper)) => helper == HELPER_NAME,
            None => self.creds_store.as_deref() == Some(HELPER_NAME),
        }
    }

    /// The hosts of the `credHelpers` entries that name this helper.
    fn hosts_sent_here(&self) -> impl Iterator<Item = String> + '_ {
        self.cred_helpers
            .iter()
            .filter(|(_, helper)| helper == HELPER_NAME)
            .filter_map(|(key, _)| Some(ServerUrl::parse(key).ok()?.registry().to_owned()))
    }
}

/// A registry name that Docker sends here but the helper does not know,
/// and the configured name it is most likely a misspelling of.
#[derive(Debug)]
pub(super) struct Misspelt {
    /// What Docker's `credHelpers` says.
    pub docker: String,
    /// The exchange registry's host in the helper's config.
    pub configured: String,
}

/// Docker's config as `doctor` reads it once.
pub(super) struct DockerSide {
    /// The file, or why it cannot be read.
    file: Result<ConfigFile, (String, &'static str)>,
    /// Where Docker sends each registry (nothing, if the file is unusable).
    pub routing: Routing,
    /// Hosts this helper answers for: exchange registries and stored ones.
    known: BTreeSet<String>,
    /// The exchange registries' hosts.
    exchange_hosts: BTreeSet<String>,
}

impl DockerSide {
    /// Reads Docker's config and what the helper knows.
    pub(super) fn read(helper: &Helper) -> DockerSide {
        let file = match docker_config::docker_config_path() {
            Err(e) => Err((crate::redact::chain(e.chain()), "set HOME or DOCKER_CONFIG")),
            Ok(path) => ConfigFile::read(&path)
                .map_err(|e| (crate::redact::chain(e.chain()), "fix the file; Docker cannot read it either")),
        };
        let routing = file.as_ref().map(|f| Routing::of(&f.doc)).unwrap_or_default();
        let exchange_hosts: BTreeSet<String> =
            helper.config().iter().flat_map(|c| c.ids().map(|id| c.key(id).registry().to_owned())).collect();
        let mut known = exchange_hosts.clone();
        if let Some(list) = helper.store().ok().and_then(|s| s.list().ok()) {
            known.extend(
                list.keys().filter_map(|k| ServerUrl::parse(k).ok()).map(|u| u.registry().to_owned()),
            );
        }
        DockerSide { file, routing, known, exchange_hosts }
    }

    /// Names Docker sends here that the helper does not know, each with the
    /// exchange registry it is likely a misspelling of, if any.
    fn strays(&self) -> Vec<(String, Option<String>)> {
        let mut seen = BTreeSet::new();
        self.routing
            .hosts_sent_here()
            .filter(|host| !self.known.contains(host) && seen.insert(host.clone()))
            .map(|host| {
                let closest = self
                    .exchange_hosts
                    .iter()
                    .filter(|c| !self.routing.sends_here(c))
                    .map(|c| (strsim::normalized_damerau_levenshtein(c, &host), c))
                    .filter(|(similarity, _)| *similarity >= SAME_NAME)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, c)| c.clone());
                (host, closest)
            })
            .collect()
    }

    /// The misspelling that involves the exchange registry `host`, if any.
    pub(super) fn misspelt(&self, host: &str) -> Option<Misspelt> {
        self.strays().into_iter().find_map(|(docker, configured)| {
            (configured.as_deref() == Some(host)).then(|| Misspelt { docker, configured: host.to_owned() })
        })
    }

    /// Hosts this helper answers for that `routes` sends here.
    fn served(&self, routes: &[&Routing]) -> BTreeSet<String> {
        self.known.iter().filter(|h| routes.iter().any(|r| r.sends_here(h))).cloned().collect()
    }
}

pub(super) fn docker_config(checks: &mut Checks, helper: &Helper, docker: &DockerSide) -> anyhow::Result<()> {
    let file = match &docker.file {
        Ok(f) => f,
        Err((e, fix)) => return checks.problem("docker", e.clone(), *fix),
    };
    let path = file.path.display();
    if file.original.is_none() {
        return checks.warn(
            "docker",
            format!("{path} does not exist; Docker will not run this helper"),
            "run `docker-credential-exchange configure-docker`",
        );
    }
    let strays = docker.strays();
    for host in &docker.exchange_hosts {
        let fix = format!("run `docker-credential-exchange configure-docker {host}`");
        let key = &helper_keys(host)[0];
        if docker.routing.sends_here(host) {
            let how = if docker.routing.cred_helper(host).is_some() { "credHelpers" } else { "credsStore" };
            checks.ok("docker", format!("{path} sends {host} to this helper ({how})"))?;
        } else if strays.iter().any(|(_, c)| c.as_deref() == Some(host)) {
            // Said once, below, as the misspelling it probably is.
        } else if let Some((_, other)) = docker.routing.cred_helper(host) {
            checks.problem(
                "docker",
                format!("{path} sends {host} to docker-credential-{other} (credHelpers \"{key}\"), not to this helper"),
                fix,
            )?;
        } else if let Some(other) = &docker.routing.creds_store {
            checks.problem(
                "docker",
                format!("{path} sends {host} to docker-credential-{other} (credsStore), not to this helper"),
                fix,
            )?;
        } else {
            checks.warn("docker", format!("{path} does not name this helper for {host}"), fix)?;
        }
    }
    for (stray, closest) in strays {
        match closest {
            Some(configured) => misspelt(checks, helper, &file.path, &stray, &configured)?,
            None => checks.warn(
                "docker",
                format!(
                    "{path} sends {stray} to this helper (credHelpers), but {stray} is neither configured for \
                     exchange nor stored here; pulls from it get no credentials"
                ),
                format!(
                    "log in to it (`docker-credential-exchange login {stray}` if it is an exchange registry, \
                     `docker login {stray}` if not), or remove credHelpers \"{stray}\" from {path}"
                ),
            )?,
        }
    }
    let served = docker.served(&[&docker.routing]);
    shadowing(
        checks,
        &file.path,
        &file.doc,
        &served,
        "tools that read auths first send this stored credential instead of the helper's token",
    )
}

/// One name, spelt two ways: Docker sends `stray` here, the config has
/// `configured`. Which is right cannot be known, so the fix names both.
fn misspelt(
    checks: &mut Checks,
    helper: &Helper,
    docker_path: &Path,
    stray: &str,
    configured: &str,
) -> anyhow::Result<()> {
    let docker_path = docker_path.display();
    let config_path = helper.config_path().display();
    checks.problem(
        "docker",
        format!(
            "Docker sends {stray} here ({docker_path}, credHelpers), but the config names {configured}, not \
             {stray}: one registry spelt two ways?"
        ),
        format!(
            "if the registry is {stray} (what `docker pull` names), rename \"{configured}\" to \"{stray}\" in \
             {config_path} and log in to {stray}; if it is {configured}, run `docker-credential-exchange \
             configure-docker {configured}` and remove credHelpers \"{stray}\" from {docker_path}"
        ),
    )
}

pub(super) fn containers_auth(checks: &mut Checks, docker: &DockerSide) -> anyhow::Result<()> {
    for path in docker_config::containers_auth_paths() {
        match ConfigFile::read(&path) {
            Ok(file) if file.original.is_some() => {
                // containers/image takes this file's own credHelpers first,
                // then Docker's; either may send a registry here.
                let own = Routing::of(&file.doc);
                let served = docker.served(&[&own, &docker.routing]);
                shadowing(
                    checks,
                    &file.path,
                    &file.doc,
                    &served,
                    "skopeo, podman and buildah read this file before Docker's config",
                )?;
            }
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

/// Flags `auths` entries with a stored credential for a registry that is
/// sent to this helper: only there does it stand in the helper's way.
fn shadowing(
    checks: &mut Checks,
    path: &Path,
    doc: &docker_config::Document,
    served: &BTreeSet<String>,
    why: &str,
) -> anyhow::Result<()> {
    let stored = doc.stored_auths(served);
    if stored.is_empty() {
        return checks.ok(
            "shadowing",
            format!("no stored auth in {} for the registries sent to this helper", path.display()),
        );
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
