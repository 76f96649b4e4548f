//! What `configure-docker` tells the person before and after the change,
//! when the change alone would mislead: another helper's credentials that
//! Docker stops seeing, a registry name this helper knows nothing of (a
//! typo, often), and what podman and skopeo see once credentials moved.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::moves::Moves;
use super::{HELPER_NAME, PROGRAM, say};
use crate::helper::Helper;
use crate::server_url::ServerUrl;

/// How long the old helper's `list` may take.
const OLD_HELPER_LIST: Duration = Duration::from_secs(10);

/// Before `credsStore` changes from `old` to this helper: warns when `old`
/// holds credentials this helper does not, which Docker stops seeing. A
/// credential this helper holds already (after `import`, say) and an
/// exchange registry (served here by exchange) are not lost, so they are
/// not counted.
pub(super) fn old_creds_store(old: &str, helper: &Helper) {
    let program = format!("docker-credential-{old}");
    let deadline = helper.deadline().within(OLD_HELPER_LIST);
    let listed = crate::command::run(&[program.clone(), "list".into()], Some(b""), &deadline)
        .ok()
        .filter(|done| done.status.success())
        .and_then(|done| {
            crate::json::from_object_slice::<serde_json::Map<String, serde_json::Value>>(&done.stdout).ok()
        });
    let Some(list) = listed else {
        crate::log::warn!(
            "cannot ask {program} which credentials it holds (it did not run, failed, or took over {}s); if it \
             holds any, Docker will no longer see them once credsStore is \"{HELPER_NAME}\": copy them with \
             `{PROGRAM} import --from {old}`",
            OLD_HELPER_LIST.as_secs()
        );
        return;
    };
    let held = helper.store().map_err(anyhow::Error::from).and_then(|s| Ok(s.list()?));
    // One registry, however many ways the old helper spells it.
    let mut missing: BTreeMap<ServerUrl, &str> = BTreeMap::new();
    for server in list.keys() {
        let Ok(url) = ServerUrl::parse(server) else { continue };
        if helper.is_exchange_registry(&url) {
            continue;
        }
        let key = helper.storage_key(&url);
        if held.as_ref().is_ok_and(|held| held.contains_key(key.as_str())) {
            continue;
        }
        missing.entry(key).or_insert(server);
    }
    if missing.is_empty() {
        return;
    }
    let names: Vec<&str> = missing.values().copied().collect();
    let unsure = match &held {
        Ok(_) => String::new(),
        Err(e) => format!(
            " (whether {PROGRAM} holds them already cannot be told: {})",
            crate::redact::chain(e.chain())
        ),
    };
    crate::log::warn!(
        "{program} holds credentials for {} {} that {PROGRAM} does not ({}){unsure}; once credsStore is \
         \"{HELPER_NAME}\" (set now), Docker no longer sees them: copy them with `{PROGRAM} import --from {old}`, \
         or put credsStore \"{old}\" back with `{PROGRAM} configure-docker --remove`",
        names.len(),
        if names.len() == 1 { "registry" } else { "registries" },
        names.join(", ")
    );
}

/// Warns about each named registry that this helper can give Docker
/// nothing for: not configured for exchange, nothing stored, nothing being
/// moved in. Often a typo; the closest configured name is offered.
pub(super) fn unknown_registries(hosts: &std::collections::BTreeSet<String>, helper: &Helper, moves: &Moves) {
    let Ok(config) = helper.config() else { return };
    let configured: Vec<&str> = config.ids().map(|id| config.key(id).registry()).collect();
    for host in hosts {
        let Ok(url) = ServerUrl::parse(host) else { continue };
        let key = helper.storage_key(&url);
        if configured.contains(&host.as_str()) || moves.held.contains_key(&key) {
            continue;
        }
        // A store that cannot be read says nothing either way.
        match helper.store().map_err(anyhow::Error::from).and_then(|s| Ok(s.username(&key)?)) {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => continue,
        }
        let guess = closest(&configured, host)
            .map(|c| format!("; did you mean {c}, which the config has?"))
            .unwrap_or_default();
        crate::log::warn!(
            "{host} is not configured for exchange (in {}) and {PROGRAM}'s store holds nothing for it: Docker will \
             get no credentials for it until you log in (`docker login {host}` stores them through {PROGRAM}){guess}",
            helper.config_path().display()
        );
    }
}

/// The configured name closest to `name`, if close enough to be a typo.
fn closest<'a>(configured: &[&'a str], name: &str) -> Option<&'a str> {
    configured
        .iter()
        .map(|c| (strsim::levenshtein(c, name), *c))
        .filter(|(d, c)| *d > 0 && *d <= c.len() / 3 + 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Says what podman, skopeo and buildah see of the credentials moved out
/// of Docker's config `path`. They read the same file but not as Docker:
/// no `credsStore` at all, and a key with a path as one namespace's only
/// (see [`crate::docker_config::StoredAuth::containers_namespace`]).
pub(super) fn what_containers_see(path: &Path, moves: &Moves, creds_store: bool) {
    let from_here: Vec<(&ServerUrl, &str)> = moves
        .held
        .iter()
        .flat_map(|(key, held)| {
            held.from.iter().filter(|(p, _)| p == path).map(move |(_, k)| (key, k.as_str()))
        })
        .collect();
    if from_here.is_empty() {
        return;
    }
    if creds_store {
        let mut hosts: Vec<&str> = from_here.iter().map(|(key, _)| key.as_str()).collect();
        hosts.dedup();
        crate::log::warn!(
            "podman, skopeo and buildah do not read credsStore: they found the credentials of {} in {} and no \
             longer do; `{PROGRAM} configure-docker {}` adds the credHelpers entries they read",
            hosts.join(", "),
            path.display(),
            hosts.join(" ")
        );
        return;
    }
    for (key, entry) in from_here {
        let Ok(url) = ServerUrl::parse(entry) else { continue };
        let has_scheme = entry.contains("://");
        if let (false, Some(_)) = (has_scheme, url.repository()) {
            say(&format!(
                "note: podman, skopeo and buildah read auths \"{entry}\" as a credential for {url}/… only; they now \
                 ask {PROGRAM} for {key} (credHelpers) and get it for all of {key}, as Docker did"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_near_miss_is_offered_and_a_far_name_is_not() {
        let configured = ["127.0.0.1:1500", "registry.example.com"];
        assert_eq!(closest(&configured, "127.0.0.1:15000"), Some("127.0.0.1:1500"));
        assert_eq!(closest(&configured, "registry.exmaple.com"), Some("registry.example.com"));
        assert_eq!(closest(&configured, "ghcr.io"), None);
        assert_eq!(closest(&configured, "registry.example.com"), None, "the same name is no typo");
    }
}
