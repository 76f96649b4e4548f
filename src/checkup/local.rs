//! `doctor`'s checks of this machine: the store and its entries, the cache
//! directory, and the binary Docker will run.

use std::path::Path;

use super::Checks;
use crate::config::SourceSpec;
use crate::fsutil::FsError;
use crate::helper::Helper;
use crate::program::PROGRAM;
use crate::server_url::ServerUrl;
use crate::store::{StoreError, StoreKind};

pub(super) fn store(checks: &mut Checks, helper: &Helper) -> anyhow::Result<()> {
    let store = match helper.store() {
        Ok(s) => s,
        Err(e) => {
            return checks.problem("store", e.to_string(), "unset the variable or give it a valid value");
        }
    };
    // The store actually opened, whether the config or the variable chose
    // it, and even when the config is too broken to say more.
    if matches!(helper.store_kind(), Ok(StoreKind::File)) {
        checks.ok("store", format!("{} (the file store was chosen)", store.describe()))?;
    } else {
        // Reachable, trusted and unlocked, asked without unlocking anything
        // or touching any real entry: a locked keyring passes a mere
        // connection, then fails every read behind a prompt nobody sees.
        if let Err(e) = store.check_ready() {
            let needs_keyring = helper.config().is_ok_and(|c| {
                c.registries().any(|(_, r)| r.is_ok_and(|r| matches!(r.subject_token, SourceSpec::Keyring)))
            }) || store.list().is_ok_and(|l| !l.is_empty());
            // A locked keyring's ways out go in the fix, once.
            let (text, fix) = match &e {
                StoreError::KeyringLocked(why) => (
                    format!("the OS keyring is locked ({why})"),
                    format!(
                        "unlock it: {}; or choose the file store (\"store\": \"file\" in the config or \
                         DOCKER_CREDENTIAL_EXCHANGE_STORE=file), or give exchange registries a non-keyring \
                         subject_token source",
                        crate::store::how_to_unlock()
                    ),
                ),
                _ => (
                    e.to_string(),
                    "on a machine without a desktop session, the file store is the usual choice".to_owned(),
                ),
            };
            return if needs_keyring {
                checks.problem("store", text, fix)
            } else {
                checks.warn("store", format!("{text} (nothing here needs it yet)"), fix)
            };
        }
        checks.ok("store", format!("the OS keyring is reachable ({})", store.describe()))?;
    }
    entries(checks, helper)
}

/// Every entry the store lists must still hold its secret: another tool
/// (seahorse, secret-tool) may have deleted a keyring item behind the
/// index's back, leaving a registry that is listed but never answers.
fn entries(checks: &mut Checks, helper: &Helper) -> anyhow::Result<()> {
    let Ok(store) = helper.store() else { return Ok(()) };
    let listed = match store.list() {
        Ok(l) => l,
        Err(e) => {
            return checks.problem(
                "store",
                format!("cannot list stored credentials: {e}"),
                "fix or remove the file it names",
            );
        }
    };
    let mut missing = 0;
    for key in listed.keys() {
        let Ok(url) = ServerUrl::parse(key) else { continue };
        if let Ok(None) = store.get(&url) {
            missing += 1;
            checks.problem(
                "store",
                format!(
                    "{key} is listed, but its secret is gone from the keyring (deleted by another tool?)"
                ),
                format!(
                    "log in again, or run `docker-credential-exchange logout {key}` to drop it from the list"
                ),
            )?;
        }
    }
    if missing == 0 && !listed.is_empty() {
        checks.ok("store", format!("all {} stored entries hold their secret", listed.len()))?;
    }
    Ok(())
}

pub(super) fn cache(checks: &mut Checks, helper: &Helper) -> anyhow::Result<()> {
    let cache = helper.cache();
    if !cache.tokens_enabled() {
        return checks.warn(
            "cache",
            "disabled by DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE; every get exchanges",
            "unset DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE unless you are debugging",
        );
    }
    let dir = cache.dir();
    // The same check the helper makes before every cache write.
    match crate::fsutil::inspect_private_dir(dir) {
        Ok(None) => checks.ok("cache", format!("{} is private ({})", dir.display(), crate::fsutil::PRIVATE_DIR)),
        Ok(Some(exposure)) if exposure.exposes_secrets() => {
            checks.problem("cache", format!("{} {}", dir.display(), exposure.describe()), exposure.fix(dir))
        }
        Ok(Some(exposure)) => {
            checks.warn("cache", format!("{} {}", dir.display(), exposure.describe()), exposure.fix(dir))
        }
        Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            checks.ok("cache", format!("{} does not exist yet (created 0700 on first use)", dir.display()))
        }
        Err(e @ FsError::Io { .. }) => checks.problem("cache", e.to_string(), "check its permissions"),
        Err(e) => checks.problem(
            "cache",
            e.to_string(),
            "point DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR at a directory of yours, or remove this one if it is only a cache",
        ),
    }
}

pub(super) fn path(checks: &mut Checks) -> anyhow::Result<()> {
    let name = format!("{PROGRAM}{}", std::env::consts::EXE_SUFFIX);
    let found = std::env::var_os("PATH").and_then(|p| crate::command::find_in_path(&p, &name));
    let Some(path) = found else {
        return checks.problem(
            "PATH",
            format!("no {name} on PATH; Docker runs `{name}` and cannot find it"),
            "install it with install/install.sh (into ~/.local/bin) and put that directory on PATH",
        );
    };
    let this = std::env::current_exe().ok().and_then(|p| p.canonicalize().ok());
    let that = path.canonicalize().ok();
    if this.is_some() && that.is_some() && this != that {
        checks.warn(
            "PATH",
            format!(
                "Docker will run {}, which is not this binary ({})",
                path.display(),
                this.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default()
            ),
            "make sure they are the same version, or put this one first on PATH",
        )
    } else {
        checks.ok("PATH", format!("Docker will run {}", path.display()))
    }
}
