//! What this helper's store already holds for a registry, set against a
//! credential found elsewhere (an `auths` entry `configure-docker` moves,
//! another helper's credential `import` copies): the same one is nothing
//! to do, and anything else is never silently replaced.

use anyhow::{Context, bail};

use super::Credential;
use crate::helper::Helper;
use crate::program::PROGRAM;
use crate::server_url::ServerUrl;
use crate::store::EntryKind;

/// Whether the store holds `credential` for `key` already (`false`: it
/// holds nothing for it).
///
/// # Errors
/// The store holds something else for `key` (another credential, or a
/// login token), or cannot be read.
pub(crate) fn already_held(
    helper: &Helper,
    key: &ServerUrl,
    credential: &Credential,
) -> anyhow::Result<bool> {
    let existing = helper
        .store()
        .and_then(|s| Ok(s.get(key)?))
        .with_context(|| format!("cannot read {PROGRAM}'s store"))?;
    let Some(existing) = existing else { return Ok(false) };
    if existing.kind == Some(EntryKind::LoginToken) {
        bail!(
            "{PROGRAM}'s store holds a login token for {key}; run `{PROGRAM} logout {key}` first if it is not needed"
        );
    }
    let existing = Credential { username: existing.username, secret: existing.secret };
    if existing != *credential {
        bail!(
            "{PROGRAM}'s store holds a different credential for {key} ({}); keep one: to keep the other, erase \
             this helper's with `echo {key} | {PROGRAM} erase`, then run again",
            difference(credential, &existing)
        );
    }
    Ok(true)
}

/// Whether the store now holds exactly `credential` for `key`: read back
/// after a write, before anything that held the only other copy is
/// changed.
///
/// # Errors
/// It does not, or the store cannot be read.
pub(crate) fn check_stored(helper: &Helper, key: &ServerUrl, credential: &Credential) -> anyhow::Result<()> {
    if already_held(helper, key, credential)? {
        Ok(())
    } else {
        bail!("{PROGRAM}'s store reported success but holds nothing for {key}")
    }
}

/// How two credentials for one registry differ, without their secrets.
pub(crate) fn difference(a: &Credential, b: &Credential) -> String {
    let name =
        |c: &Credential| if c.username.is_empty() { "(no username)".to_owned() } else { c.username.clone() };
    if a.username == b.username {
        format!("both for user {}, with different secrets", name(a))
    } else {
        format!("users {} and {}", name(a), name(b))
    }
}
