//! `configure-docker --remove`: take this helper out of Docker's config
//! and put back what `configure-docker` replaced (see [`super::record`]):
//! the `credsStore` and `credHelpers` values, and the stored credentials
//! it had moved out of `auths`, each into the entry it came from, for the
//! registries Docker no longer sends to this helper.
//!
//! Nothing is lost on the way: a credential is read from the store and
//! written into its file before the store's copy (one `configure-docker`
//! made) is erased, and only if the store still holds exactly it. What
//! stays in the store that Docker no longer asks for is said plainly,
//! with the command that copies it to the helper Docker asks now.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::moves::entry_name;
use super::{ConfigureDockerArgs, HELPER_NAME, PROGRAM, hosts, read, say, write};
use crate::docker_config::record::{self, Moved, Record};
use crate::docker_config::{self, ConfigFile, Credential, Document};
use crate::helper::Helper;
use crate::server_url::ServerUrl;
use crate::store::EntryKind;

pub(super) fn remove(args: &ConfigureDockerArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    let hosts = hosts(args, helper)?;
    let path = docker_config::docker_config_path()?;
    let keys: Vec<String> = hosts.iter().flat_map(|h| docker_config::helper_keys(h)).collect();
    let mut file = read(&path)?;
    let config = record::config_name(&file.path);
    let mut record = record::load(&config).context("nothing was changed")?;
    let nothing_recorded = record.is_empty();
    let before = file.doc.clone();

    let mut changes =
        file.doc.remove_cred_helpers((!keys.is_empty()).then_some(keys.as_slice()), &record.cred_helpers)?;
    if args.registries.is_empty() {
        changes.extend(file.doc.unset_creds_store(record.creds_store.as_deref())?);
    }
    // What is no longer this helper's in the file needs no restoring.
    record.cred_helpers.retain(|key, _| file.doc.cred_helper(key).as_deref() == Some(HELPER_NAME));
    if file.doc.creds_store().as_deref() != Some(HELPER_NAME) {
        record.creds_store = None;
    }

    let back = MovesBack::plan(helper, &mut record, &config, &mut file, &mut changes)?;
    // A read-only file is refused before anything is written.
    if !changes.is_empty() {
        file.ensure_writable()?;
    }
    for other in back.files.values().filter(|o| !o.changes.is_empty()) {
        other.file.ensure_writable()?;
    }
    write(&file, &changes, true, helper.deadline())?;
    for other in back.files.values() {
        write(&other.file, &other.changes, false, helper.deadline())?;
    }
    back.erase_copies(helper);
    record::save(&record, helper.deadline())?;
    still_held(helper, &before, &file.doc, &back.restored);
    if nothing_recorded && !changes.is_empty() {
        moved_away(&config);
    }
    Ok(ExitCode::SUCCESS)
}

/// Says what `configure-docker` recorded for Docker configs that are no
/// longer where they were: when this config had no record of its own, it
/// may be one of them moved (`mv ~/.docker-work ~/.docker-old`), whose
/// replaced values `--remove` could not put back here.
fn moved_away(config: &Path) {
    for orphan in record::orphans() {
        say(&format!(
            "note: {} had no record of what configure-docker replaced in it, but {}, which no longer exists, has \
             one: {}. If this file is that one moved, put those back by hand (the credentials are in \
             {PROGRAM}'s store: echo REGISTRY | {PROGRAM} get)",
            record::shown(config),
            record::shown(&orphan.config),
            orphan.describe()
        ));
    }
}

/// Another file (an `auth.json`) that credentials go back into.
struct OtherFile {
    file: ConfigFile,
    changes: Vec<String>,
}

/// The credentials to put back, and the store's copies to erase after.
struct MovesBack {
    files: BTreeMap<PathBuf, OtherFile>,
    /// Registries whose store copy `configure-docker` made and which are
    /// back in their files: (registry, the credential put back).
    to_erase: Vec<(ServerUrl, Credential)>,
    /// Registries whose credentials are all back in their files.
    restored: BTreeSet<String>,
}

impl MovesBack {
    /// Puts each moved credential of a registry Docker no longer sends
    /// here back into its entry (in `docker`'s document or another file's),
    /// dropping from `record` what needs nothing more. Writes nothing.
    ///
    /// # Errors
    /// The store cannot be read.
    fn plan(
        helper: &Helper,
        record: &mut Record,
        config: &Path,
        docker: &mut ConfigFile,
        changes: &mut Vec<String>,
    ) -> anyhow::Result<MovesBack> {
        let mut back = MovesBack { files: BTreeMap::new(), to_erase: Vec::new(), restored: BTreeSet::new() };
        let mut pending: Vec<Moved> = Vec::new();
        let mut done: BTreeMap<String, (bool, Option<Credential>)> = BTreeMap::new();
        for moved in std::mem::take(&mut record.moved) {
            let Ok(registry) = ServerUrl::parse(&moved.registry) else { continue };
            if docker.doc.docker_helper_for(registry.registry()).as_deref() == Some(HELPER_NAME) {
                pending.push(moved); // still served here
                continue;
            }
            let stored = helper
                .store()
                .map_err(anyhow::Error::from)
                .and_then(|s| Ok(s.get(&registry)?))
                .with_context(|| {
                    format!(
                        "cannot read {PROGRAM}'s store to put {} back; nothing was changed",
                        entry_name(&moved.key)
                    )
                })?;
            let entry = entry_name(&moved.key);
            let credential = match stored {
                None => {
                    say(&format!(
                        "nothing to put back in {entry} of {}: {PROGRAM}'s store no longer holds a credential for \
                         {registry}",
                        moved.file.display()
                    ));
                    continue;
                }
                Some(s) if s.kind == Some(EntryKind::LoginToken) => {
                    say(&format!(
                        "{registry} is an exchange registry now: its login token stays in {PROGRAM}'s store, and \
                         {entry} of {} is not put back",
                        moved.file.display()
                    ));
                    continue;
                }
                Some(s) => Credential { username: s.username, secret: s.secret },
            };
            let (doc, file_changes) = if moved.file == config {
                (&mut docker.doc, &mut *changes)
            } else {
                match back.other(&moved.file) {
                    Some(other) => (&mut other.file.doc, &mut other.changes),
                    None => {
                        pending.push(moved);
                        continue;
                    }
                }
            };
            let put_back = match doc.auths_credential(&moved.key) {
                Some(Ok(there)) if there == credential => true,
                Some(_) => {
                    say(&format!(
                        "{entry} of {} holds another credential now; {PROGRAM}'s store keeps the one it had moved \
                         (user {})",
                        moved.file.display(),
                        credential.username
                    ));
                    false
                }
                None => {
                    doc.put_auths_credential(&moved.key, &credential)?;
                    file_changes.push(format!(
                        "put the credential of {entry} (user {}) back, from {PROGRAM}'s store",
                        credential.username
                    ));
                    true
                }
            };
            let state = done.entry(moved.registry.clone()).or_insert((true, None));
            state.0 &= put_back;
            if moved.copied && put_back {
                state.1 = Some(credential);
            }
        }
        // A copy is erased once every entry it came from has it back.
        for (registry, (all_back, copy)) in done {
            if !all_back || pending.iter().any(|m| m.registry == registry) {
                continue;
            }
            if let (Some(credential), Ok(url)) = (copy, ServerUrl::parse(&registry)) {
                back.to_erase.push((url, credential));
            }
            back.restored.insert(registry);
        }
        record.moved = pending;
        Ok(back)
    }

    /// The other file at `path`, read once; `None` (and a word why) if it
    /// cannot be read, in which case its entries wait for a later run.
    fn other(&mut self, path: &Path) -> Option<&mut OtherFile> {
        if !self.files.contains_key(path) {
            match ConfigFile::read(path) {
                Ok(file) => {
                    self.files.insert(path.to_owned(), OtherFile { file, changes: Vec::new() });
                }
                Err(e) => {
                    crate::log::warn!(
                        "cannot put credentials back into {}: {}; {PROGRAM}'s store keeps them",
                        path.display(),
                        crate::redact::chain(e.chain())
                    );
                    return None;
                }
            }
        }
        self.files.get_mut(path)
    }

    /// Erases the store's copies of credentials that are back in their
    /// files, each only if the store still holds exactly what was put back.
    fn erase_copies(&self, helper: &Helper) {
        for (registry, credential) in &self.to_erase {
            match crate::docker_config::already_held(helper, registry, credential) {
                Ok(true) => {}
                _ => continue, // changed since (a new login): it stays
            }
            match helper.erase(registry) {
                Ok(_) => {
                    say(&format!(
                        "removed {registry} from {PROGRAM}'s store: its credential is back where it was"
                    ));
                }
                Err(e) => crate::log::warn!(
                    "cannot remove {registry} from {PROGRAM}'s store ({}); it is back in its file too",
                    crate::redact::chain(anyhow::Error::from(e).chain())
                ),
            }
        }
    }
}

/// Says which credentials stay in this helper's store although Docker no
/// longer asks it for them (`docker login` stored them through it), and
/// how to copy each where Docker asks now; those put back in their files
/// (`restored`) are where Docker looks already.
fn still_held(helper: &Helper, before: &Document, after: &Document, restored: &BTreeSet<String>) {
    let Ok(listed) = helper.store().map_err(anyhow::Error::from).and_then(|s| Ok(s.list()?)) else { return };
    let mut plain: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    let mut logins = Vec::new();
    for (key, entry) in &listed {
        let Ok(url) = ServerUrl::parse(key) else { continue };
        let host = url.registry();
        let ours = |doc: &Document| doc.docker_helper_for(host).as_deref() == Some(HELPER_NAME);
        if !ours(before) || ours(after) || restored.contains(key) {
            continue;
        }
        if entry.kind == Some(EntryKind::LoginToken) {
            logins.push(key.clone());
        } else {
            plain.entry(after.docker_helper_for(host)).or_default().push(entry.server_url.clone());
        }
    }
    for (now, servers) in plain {
        let first = &servers[0];
        let how = match now {
            Some(other) => format!(
                "Docker asks docker-credential-{other} for them now; to copy one there: echo {first} | {PROGRAM} get | \
                 docker-credential-{other} store"
            ),
            None => format!(
                "Docker reads its config's auths for them now; log in again with `docker login {first}`, or keep \
                 them here with `{PROGRAM} configure-docker {first}`"
            ),
        };
        say(&format!(
            "note: {PROGRAM}'s store still holds the credentials of {}, which Docker no longer asks it for; {how}",
            servers.join(", ")
        ));
    }
    if !logins.is_empty() {
        say(&format!(
            "note: {PROGRAM}'s store still holds the login tokens of {}; `{PROGRAM} logout REGISTRY` removes one",
            logins.join(", ")
        ));
    }
}
